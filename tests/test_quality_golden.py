"""Golden comparison, diff heat map, report images, identity back-ends."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from harness.quality import golden as G
from harness.quality import identity
from harness.quality.report_images import safe_name, write_quality_images
from harness.quality.thresholds import DEFAULT_THRESHOLDS


def photo(seed=0, h=200, w=160) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 255, (h // 8, w // 8, 3), dtype=np.uint8), (w, h),
                      interpolation=cv2.INTER_CUBIC)
    return np.clip(base.astype(int) + rng.normal(0, 6, (h, w, 3)), 0, 255).astype(np.uint8)


def jpeg(img, q=95):
    _ok, enc = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
    return cv2.imdecode(enc, cv2.IMREAD_UNCHANGED)


BOX_LANDMARKS = np.array([[50.0, 60.0], [110.0, 140.0]] * 34)   # a face box 50..110 x 60..140


def test_same_frame_after_jpeg_is_not_a_regression():
    img = photo()
    c = G.compare_to_golden(jpeg(img, 90), img, BOX_LANDMARKS)
    assert c.passed, c.message()
    assert c.ssim > 0.95 and c.changed_fraction < 0.002


@pytest.mark.parametrize("change", ["shift", "colour", "background"])
def test_drift_is_a_visual_regression(change):
    img = photo(1)
    out = img.copy()
    if change == "shift":                    # the face content moved by 5 px
        out[60:140, 50:110] = img[60:140, 45:105]
    elif change == "colour":                 # a colour patch over the face
        out[70:130, 60:100, 1] = np.clip(out[70:130, 60:100, 1].astype(int) + 40, 0, 255)
    else:                                    # a corner outside the face touched
        out[0:40, 0:40] = np.clip(out[0:40, 0:40].astype(int) + 30, 0, 255)
    c = G.compare_to_golden(out, img, BOX_LANDMARKS)
    assert not c.passed, c.message()
    assert "VISUAL REGRESSION" in c.message()


def test_compare_rejects_mismatched_frames():
    with pytest.raises(ValueError, match="differ in size"):
        G.compare_to_golden(photo(h=100), photo())
    with pytest.raises(ValueError, match="RGB uint8"):
        G.compare_to_golden(photo().astype(np.float32), photo())


def test_diff_heatmap_and_panel():
    img = photo(2)
    out = img.copy()
    out[10:30, 10:30] = 0
    heat = G.diff_heatmap(out, img)
    assert heat.dtype == np.uint8 and heat.shape[1] == img.shape[1]
    assert heat.shape[0] > img.shape[0]                 # legend strip
    # the changed block is hot (red/yellow), an unchanged area cold (blue)
    hot, cold = heat[20, 20].astype(int), heat[150, 120].astype(int)
    assert hot[0] > hot[2] and cold[2] > cold[0]
    panel = G.side_by_side([("a", img), ("b", None), ("c", heat)], height=100)
    assert panel.shape[0] == 124 and panel.dtype == np.uint8


def test_golden_path_layout():
    p = G.golden_path("small", "grace_hopper.jpg", "astronaut.png")
    assert p.parent.name == "small" and p.name == "grace_hopper__astronaut.jpg"
    assert p.parent.parent == G.GOLDEN_DIR


def test_load_and_save_roundtrip(tmp_path):
    img = photo(3)
    p = G.save_rgb(tmp_path / "a" / "x.png", img)
    assert np.array_equal(G.load_rgb(p), img)
    with pytest.raises(FileNotFoundError, match="no such image"):
        G.load_rgb(tmp_path / "missing.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        G.load_rgb(tmp_path / "bad.png")


def test_write_quality_images(tmp_path):
    src, tgt, out = photo(4), photo(5), photo(6)
    golden = out.copy()
    comparison = G.compare_to_golden(out, golden)
    r = write_quality_images(tmp_path, "dev:1/../x forward", source=src, target=tgt, output=out,
                             golden=golden, comparison=comparison)
    assert set(r["images"]) == {"source", "target", "output", "golden", "diff", "panel"}
    for rel in r["images"].values():
        assert not rel.startswith("/") and ".." not in rel
        assert (tmp_path / rel).is_file()
    assert r["passed"] is True and r["golden"]["passed"] is True
    json.dumps(r)                           # record-ready
    r2 = write_quality_images(tmp_path, "no golden", source=src, target=tgt, output=out)
    assert "golden" not in r2["images"] and "diff" not in r2["images"]
    assert safe_name("../../etc") == "etc"


def test_thresholds_have_golden_keys():
    assert 0 < DEFAULT_THRESHOLDS.golden_ssim_min < 1
    assert DEFAULT_THRESHOLDS.golden_changed_max < 0.01


# --- identity back-ends -------------------------------------------------------------------

def _faces():
    pytest.importorskip("ncnn")
    from harness.inputs import portraits as test_images
    from harness.quality.landmarks import reference_landmarks

    a, g = test_images.base_image("astronaut"), test_images.base_image("grace_hopper")
    return a, reference_landmarks(a), g, reference_landmarks(g)


@pytest.mark.parametrize("prefer", ["dlib-resnet", "hog-texture"])
def test_identity_separates_two_people(prefer):
    if prefer == "dlib-resnet":
        pytest.importorskip("dlib")
    model = identity.get_identity_model(prefer)
    assert model.name == prefer
    a, la, g, lg = _faces()
    ea, eg = model.describe(a, la), model.describe(g, lg)
    # the same face, mirrored, is nearer itself than the other person
    am = np.ascontiguousarray(a[:, ::-1])
    lam = la.copy()
    lam[:, 0] = a.shape[1] - lam[:, 0]
    # mirroring swaps left/right points; re-order to iBUG order
    from harness.quality.identity import MIRROR_68
    lam = lam[MIRROR_68]
    e_am = model.describe(am, lam)
    assert model.distance(e_am, ea) < model.distance(e_am, eg)
    if prefer == "dlib-resnet":
        assert model.distance(ea, eg) > 0.6        # dlib's own different-person cut-off


def test_identity_auto_prefers_the_embedding():
    m = identity.get_identity_model("auto")
    try:
        import dlib  # noqa: F401
        assert m.name == "dlib-resnet"
    except ImportError:
        assert m.name == "hog-texture"
    with pytest.raises(ValueError, match="unknown identity model"):
        identity.get_identity_model("resnet9000")
