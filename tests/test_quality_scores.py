"""Unit tests of the quality scores on small synthetic images (no models needed)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from harness.quality import geometry as geo
from harness.quality import scores as sc
from harness.quality.thresholds import DEFAULT_THRESHOLDS, thresholds_for_profile


def face_landmarks(cx=128.0, cy=128.0, s=1.0) -> np.ndarray:
    """A plausible 68-point face (iBUG order) centred at (cx, cy); IOD about 80*s px."""
    pts = np.zeros((68, 2))
    t = np.linspace(np.pi * 0.05, np.pi * 0.95, 17)
    pts[0:17] = np.c_[-np.cos(t) * 55, np.sin(t) * 60 + 5]          # jaw
    pts[17:22] = np.c_[np.linspace(-45, -10, 5), np.full(5, -35)]     # right brow
    pts[22:27] = np.c_[np.linspace(10, 45, 5), np.full(5, -35)]       # left brow
    pts[27:31] = np.c_[np.zeros(4), np.linspace(-25, 5, 4)]           # nose bridge
    pts[31:36] = np.c_[np.linspace(-12, 12, 5), np.full(5, 12)]       # nostrils
    for base, x0 in ((36, -40), (42, 10)):                            # eyes
        pts[base:base + 6] = np.c_[x0 + np.array([0, 10, 20, 30, 20, 10]),
                                   -20 + np.array([0, -5, -5, 0, 5, 5])]
    a = np.linspace(0, 2 * np.pi, 20, endpoint=False)
    pts[48:68] = np.c_[np.cos(a) * 22, 32 + np.sin(a) * 8]            # mouth
    return pts * s + [cx, cy]


def textured(seed: int, h=256, w=256, base=(150, 120, 100)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.normal(0, 25, (h, w, 3)).astype(np.float32), (0, 0), 2.0)
    return np.clip(np.array(base, np.float32) + noise, 0, 255).astype(np.uint8)


# --- geometry ---------------------------------------------------------------------------

def test_mask_from_landmarks_is_filled_hull():
    pts = face_landmarks()
    m = geo.mask_from_landmarks(pts, (256, 256, 3))
    assert m.dtype == np.uint8 and set(np.unique(m)) == {0, 255}
    assert m[128, 128] == 255 and m[5, 5] == 0
    hull_area = cv2.contourArea(cv2.convexHull(pts.astype(np.float32)))
    assert abs((m > 0).sum() - hull_area) / hull_area < 0.05


def test_landmark_validation_and_iod():
    pts = face_landmarks()
    assert geo.inter_ocular(pts) == pytest.approx(np.linalg.norm(pts[36] - pts[45]))
    with pytest.raises(ValueError, match="68 landmarks"):
        geo.as_landmarks(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="NaN"):
        geo.as_landmarks(np.full((68, 2), np.nan))
    with pytest.raises(ValueError, match="degenerate"):
        geo.inter_ocular(np.zeros((68, 2)))


def test_signed_distance_rings():
    m = np.zeros((64, 64), bool)
    m[16:48, 16:48] = True
    sd = geo.signed_distance(m)
    assert sd[32, 32] > 10 and sd[2, 2] < -10
    inner = geo.ring(sd, 2, 4)
    assert inner.any() and np.all(m[inner])
    assert not np.any(m[geo.ring(sd, -4, -2)])


# --- thresholds -------------------------------------------------------------------------

def test_thresholds_override_and_profile_table():
    t = DEFAULT_THRESHOLDS.override({"colour_de_max": 3, "pose_nme_max": 0.05})
    assert t.colour_de_max == 3.0 and t.pose_nme_max == 0.05
    assert t.seam_ratio_max == DEFAULT_THRESHOLDS.seam_ratio_max
    with pytest.raises(ValueError, match="unknown quality key 'colour'"):
        DEFAULT_THRESHOLDS.override({"colour": 3})
    with pytest.raises(ValueError, match="expected a number"):
        DEFAULT_THRESHOLDS.override({"colour_de_max": "low"})
    assert thresholds_for_profile(None) is DEFAULT_THRESHOLDS
    assert thresholds_for_profile({"quality": {"seam_ratio_max": 1.9}}).seam_ratio_max == 1.9

    fake_profile = SimpleNamespace(name="x", path="device_profiles/x.toml",
                                   extra={"quality": {"background_psnr_min_db": 30}})
    assert thresholds_for_profile(fake_profile).background_psnr_min_db == 30.0


def test_profile_loader_keeps_quality_table(tmp_path):
    from harness.profiles import load_profile

    p = tmp_path / "q.toml"
    p.write_text('name = "q"\nmarker = "q"\nplatform = "linux"\n[match]\nkind = ["local"]\n'
                 '[run]\nthreads = 1\n[quality]\ncolour_de_max = 4.0\n', encoding="utf-8")
    t = thresholds_for_profile(load_profile(p))
    assert t.colour_de_max == 4.0


def test_shipped_profiles_quality_tables_are_valid():
    from harness import REPO_ROOT
    from harness.profiles import load_profiles

    for prof in load_profiles(REPO_ROOT / "device_profiles").values():
        thresholds_for_profile(prof)   # raises on an unknown key or a non-number


# --- scores on synthetic frames -----------------------------------------------------------

@pytest.fixture(scope="module")
def scene():
    target = textured(1)
    pts = face_landmarks()
    return target, pts


def paste(target, pts, face, feather: float):
    m = geo.mask_from_landmarks(pts, target.shape).astype(np.float32) / 255
    if feather:
        m = cv2.GaussianBlur(m, (0, 0), feather)
    m = m[..., None]
    return np.clip(face * m + target * (1 - m), 0, 255).astype(np.uint8)


def test_colour_score_flags_a_colour_patch(scene):
    target, pts = scene
    iod = geo.inter_ocular(pts)
    mask = geo.mask_from_landmarks(pts, target.shape)
    same = paste(target, pts, textured(2), feather=6)          # same skin colour, new texture
    patch = paste(target, pts, textured(2, base=(90, 140, 90)), feather=6)   # green face
    ok = sc.colour_consistency(same, target, mask, iod, geo.face_centre(pts))
    bad = sc.colour_consistency(patch, target, mask, iod, geo.face_centre(pts))
    assert ok.passed, ok.message()
    assert bad.passed is False and bad.value > 3 * ok.value, bad.message()


def test_seam_score_flags_a_hard_edge(scene):
    target, pts = scene
    iod = geo.inter_ocular(pts)
    mask = geo.mask_from_landmarks(pts, target.shape)
    face = textured(3, base=(175, 140, 120))
    soft = paste(target, pts, face, feather=8)
    hard = paste(target, pts, face, feather=0)
    s_soft = sc.seam_visibility(soft, target, mask, iod)
    s_hard = sc.seam_visibility(hard, target, mask, iod)
    assert s_hard.value > s_soft.value * 1.3
    assert s_hard.passed is False, s_hard.message()


def test_pose_score_separates_shape_from_pose():
    tgt = face_landmarks()
    rng = np.random.default_rng(0)
    reshaped = tgt + rng.normal(0, 1.0, tgt.shape)              # another face's shape, same pose
    shifted = reshaped + [6.0, 0.0]
    scaled = (reshaped - tgt.mean(0)) * 0.8 + tgt.mean(0)
    ok = sc.pose_fidelity(reshaped, tgt)
    assert ok.passed and ok.value < 0.015
    assert ok.detail["nme_raw"] > ok.value
    for bad in (shifted, scaled):
        r = sc.pose_fidelity(bad, tgt)
        assert r.passed is False, r.message()
    off = sc.pose_fidelity(shifted, tgt).detail["offset_px"]
    assert off[0] == pytest.approx(6.0, abs=0.6)
    missing = sc.pose_fidelity(None, tgt)
    assert missing.passed is False and "no face" in missing.detail["reason"]


def test_background_score_flags_touched_corner(scene):
    target, pts = scene
    iod = geo.inter_ocular(pts)
    mask = geo.mask_from_landmarks(pts, target.shape)
    clean = target.copy()
    clean[mask > 0] = 0      # the face changed; background untouched
    touched = clean.copy()
    touched[200:250, 0:50] = np.clip(touched[200:250, 0:50].astype(int) + 40, 0, 255)
    ssim_ok, psnr_ok = sc.background_preservation(clean, target, mask, iod)
    ssim_bad, psnr_bad = sc.background_preservation(touched, target, mask, iod)
    assert ssim_ok.passed and psnr_ok.passed and psnr_ok.value == 100.0
    assert psnr_bad.passed is False and ssim_bad.value < ssim_ok.value
    assert psnr_bad.detail["worst_psnr_tile_xy"][1] >= 96   # a tile of the bottom-left corner


def test_score_blend_reports_everything(scene):
    target, pts = scene
    source = textured(4, base=(160, 130, 110))
    output = paste(target, pts, source, feather=6)

    class FixedModel:
        name = "dlib-resnet"

        def describe(self, image, landmarks):
            return np.array([float(image[..., 0].mean()), float(image[..., 1].mean())])

        def distance(self, a, b):
            return float(np.linalg.norm(a - b))

    s = sc.score_blend(source, target, output, pts, source_landmarks=pts,
                       output_landmarks=pts + 0.5, identity_model=FixedModel())
    assert s.mask_source == "landmarks"
    names = [x.metric for x in s.all()]
    assert names == ["quality_de_ciede2000", "quality_seam_ratio", "quality_pose_nme",
                     "quality_background_ssim", "quality_background_psnr_db",
                     "quality_identity_margin"]
    assert all(x.direction in ("lower", "higher") for x in s.all())
    d = s.as_dict()
    assert set(d["scores"]) == {"colour", "seam", "pose", "background_ssim", "background_psnr",
                                "identity"}
    assert "quality_pose_nme" in s.summary()
    # pose/identity are "not scored" without landmarks
    s2 = sc.score_blend(source, target, output, pts, identity_model=FixedModel())
    assert s2.pose.value is None and s2.pose.passed is None
    assert s2.identity.value is None and "not scored" in s2.identity.message()
    # a given None for the output landmarks = no face found: pose fails
    s3 = sc.score_blend(source, target, output, pts, output_landmarks=None,
                        identity_model=FixedModel())
    assert s3.pose.passed is False and math.isinf(s3.pose.value)


def test_score_blend_rejects_bad_input(scene):
    target, pts = scene
    with pytest.raises(ValueError, match="differ in size"):
        sc.score_blend(target, target, target[:100], pts)
    with pytest.raises(ValueError, match="RGB uint8"):
        sc.score_blend(target, target, target.astype(np.float32), pts)
    with pytest.raises(ValueError, match="mask shape"):
        sc.score_blend(target, target, target, pts, mask=np.zeros((10, 10), np.uint8))


def test_runner_mask_is_used_when_given(scene):
    target, pts = scene
    mask = geo.mask_from_landmarks(pts, target.shape)
    s = sc.score_blend(target, target, target, pts, mask=mask)
    assert s.mask_source == "runner"
    assert s.seam.detail["boundary"] == "mask"


def test_similarity_transform_recovers_a_known_one():
    rng = np.random.default_rng(5)
    src = rng.uniform(0, 100, (20, 2))
    a = np.deg2rad(10)
    r = 1.3 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    dst = src @ r.T + [4, -7]
    m = geo.similarity_transform(src, dst)
    assert np.allclose(m[:, :2], r, atol=1e-9) and np.allclose(m[:, 2], [4, -7], atol=1e-7)


def test_colour_gate_is_the_products_de_5():
    """The product's colour check (design: tone compensation when CIEDE2000 > 5) is the
    default pass line of the colour score, in the thresholds and in the score function;
    a loosened default (6) would pass the pale faces this score exists to catch."""
    import inspect

    from harness.quality.scores import colour_consistency

    assert DEFAULT_THRESHOLDS.colour_de_max == 5.0
    assert inspect.signature(colour_consistency).parameters["threshold"].default == 5.0
