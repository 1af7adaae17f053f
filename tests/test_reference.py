"""Reference pipeline on real images: detector boxes cover the faces, 68 points are
inside the face and in anatomical order, tracking and segmentation behave."""
from __future__ import annotations

import math

import numpy as np
import pytest

from harness.inputs.portraits import derive_variants
from harness.modelpack import reference as R


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    return derive_variants(tmp_path_factory.mktemp("variants"))


@pytest.fixture(scope="module")
def refs():
    return {m: R.Reference(m) for m in ("tiny", "small", "base")}


# Smallest face width (in detector input pixels) each detector is expected to find.
MIN_FACE_INPUT_PX = {"face_detection_short_range": 16.0, "face_detection_full_range": 12.0}


def _face_core(box, frac=0.5):
    x0, y0, x1, y1 = box
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * frac, (y1 - y0) * frac
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def _covered(inner, outer) -> float:
    ix = max(0.0, min(inner[2], outer[2]) - max(inner[0], outer[0]))
    iy = max(0.0, min(inner[3], outer[3]) - max(inner[1], outer[1]))
    return ix * iy / ((inner[2] - inner[0]) * (inner[3] - inner[1]))


def _expected_detectable(ref, img, face):
    size = ref.det_cfg["input"]["width"]
    w = face[2] - face[0]
    return w * size / max(img.shape[:2]) >= MIN_FACE_INPUT_PX[ref.det_id]


def _check_68(p68: np.ndarray, box, msg=""):
    """68 points inside the (15% enlarged) face box and in anatomical order, checked in
    the face's own frame (rotated so the eye line is horizontal)."""
    x0, y0, x1, y1 = box
    mx, my = 0.15 * (x1 - x0), 0.15 * (y1 - y0)
    assert (p68[:, 0] >= x0 - mx).all() and (p68[:, 0] <= x1 + mx).all(), msg
    assert (p68[:, 1] >= y0 - my).all() and (p68[:, 1] <= y1 + my).all(), msg
    re, le = p68[36:42].mean(0), p68[42:48].mean(0)   # subject's right eye = image left
    a = math.atan2(le[1] - re[1], le[0] - re[0])
    c, s = math.cos(-a), math.sin(-a)
    q = (p68 - p68.mean(0)) @ np.array([[c, s], [-s, c]])  # rotate by -a
    x, y = q[:, 0], q[:, 1]
    # left/right order
    assert x[36] < x[39] < x[42] < x[45], msg            # eye corners, left to right
    assert x[0] < x[8] < x[16], msg                      # jaw
    assert x[17] < x[21] < x[22] < x[26], msg            # brows
    assert x[48] < x[51] < x[54], msg                    # mouth corners / top lip
    # top to bottom: brows, eyes, nose tip, mouth, chin
    brow_y, eye_y = y[17:27].mean(), y[36:48].mean()
    assert brow_y < eye_y < y[30] < y[51] < y[57] < y[8], msg
    assert y[8] == y[:17].max(), msg                     # chin is the lowest jaw point
    assert y[27] < y[30], msg                            # nose bridge above tip


@pytest.mark.parametrize("mode", ["small", "base"])
def test_detector_covers_known_faces(variants, refs, mode):
    ref = refs[mode]
    checked = 0
    for name, v in variants.items():
        img = v.load()
        dets = ref.detect_faces(img)
        for face in v.faces:
            if not _expected_detectable(ref, img, face):
                continue
            checked += 1
            core = _face_core(face)
            best = max((_covered(core, d.box) for d in dets), default=0.0)
            assert best >= 0.9, f"{mode}/{name}: face {face} not covered, got {[d.box for d in dets]}"
            d = max(dets, key=lambda d: _covered(core, d.box))
            area = (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])
            assert area <= 2.5 * (face[2] - face[0]) * (face[3] - face[1]), f"{mode}/{name}: box too big"
            assert d.score >= ref.det_cfg["detector"]["min_score"]
    assert checked >= 20


def test_duo_base_finds_both_faces(variants, refs):
    img = variants["duo"].load()
    dets = refs["base"].detect_faces(img)
    assert len(dets) == 2
    xs = sorted(d.center[0] for d in dets)
    assert xs[0] < 512 < xs[1]


@pytest.mark.parametrize("mode", ["small", "base"])
def test_68_points_inside_face_in_anatomical_order(variants, refs, mode):
    ref = refs[mode]
    for name, v in variants.items():
        if v.kind == "multi_face":
            continue
        img = v.load()
        dets = ref.detect_faces(img)
        if not dets:
            assert not _expected_detectable(ref, img, v.faces[0]), f"{mode}/{name}: no face"
            continue
        mesh, p68, presence = ref.face_landmarks(img, dets[0])
        assert mesh.shape == (468, 3) and p68.shape == (68, 2)
        assert presence > 0.9, f"{mode}/{name}: presence {presence}"
        _check_68(p68, dets[0].box, f"{mode}/{name}")
        # the 68 points lie on the mesh
        assert np.allclose(p68, mesh[ref.landmarks68, :2])


def test_rotation_is_followed(variants, refs):
    """On the rotated variants the eye line of the 68 points follows the rotation."""
    ref = refs["small"]
    for base in ("astronaut", "grace_hopper"):
        def eye_angle(img):
            d = ref.detect_faces(img)[0]
            _, p, _ = ref.face_landmarks(img, d)
            re, le = p[36:42].mean(0), p[42:48].mean(0)
            return math.degrees(math.atan2(le[1] - re[1], le[0] - re[0]))
        a0 = eye_angle(variants[base].load())
        for deg in (15, -15, 30):
            a = eye_angle(variants[f"{base}_rot{deg:+d}"].load())
            # cv2 rotates counter-clockwise for positive angles (y down): eye angle drops
            assert abs((a0 - a) - deg) < 3.0, f"{base} rot {deg}: {a0} -> {a}"


def test_fp16_and_fp32_mesh_agree(refs, variants):
    img = variants["astronaut"].load()
    d = refs["small"].detect_faces(img)[0]
    m16, _, _ = refs["small"].face_landmarks(img, d)
    m32 = R.Reference("small", landmarks="face_landmark_fp32").face_landmarks(img, d)[0]
    assert np.abs(m16[:, :2] - m32[:, :2]).max() < 0.1


def test_tracking_mode_follows_face(variants, refs):
    """tiny: detection on frame 0 and every Nth, mesh-tracked crops in between, landmarks
    within 2 px (mean) of per-frame detection (small)."""
    from harness.inputs.portraits import _rotate

    base = variants["grace_hopper"].load()
    frames = [_rotate(base, a)[0] for a in np.linspace(0, 12, 6)]
    tiny = list(refs["tiny"].track(frames))
    small = list(refs["small"].track(frames))
    assert [t[3] for t in tiny] == [True, False, False, False, False, True]
    assert all(t[2] is not None for t in tiny)
    for t, s in zip(tiny, small):
        err = np.linalg.norm(t[2] - s[2], axis=1).mean()
        assert err < 2.0, f"frame {t[0]}: tiny vs small {err:.2f} px"


def test_no_face_on_blank_image(refs):
    img = np.full((300, 400, 3), 127, np.uint8)
    assert refs["small"].detect_faces(img) == []
    assert refs["base"].detect_faces(img) == []


def test_person_mask(variants, refs):
    assert refs["small"].person_mask(variants["astronaut"].load()) is None
    for name in ("astronaut", "grace_hopper"):
        img = variants[name].load()
        m = refs["base"].person_mask(img)
        assert m.shape == img.shape[:2] and m.dtype == np.float32
        face = variants[name].faces[0]
        cx, cy = int((face[0] + face[2]) / 2), int((face[1] + face[3]) / 2)
        assert m[cy, cx] > 0.9
        assert 0.1 < m.mean() < 0.9


def test_affine_and_projection_are_inverse():
    roi = R.Roi(200.0, 150.0, 120.0, 120.0, 0.3)
    m = R.roi_affine(roi, 192)
    uv = np.array([[10.0, 20.0], [100.0, 150.0], [191.0, 0.0]])
    # crop pixel index (u, v) has model coordinate (u + 0.5, v + 0.5)
    img_idx = uv @ m[:, :2].T + m[:, 2]
    proj = R.project_landmarks(np.c_[uv + 0.5, np.zeros(3)], roi, 192)[:, :2]
    assert np.allclose(img_idx + 0.5, proj)


def test_anchors_match_mediapipe_layout(refs):
    a = refs["small"].anchors
    assert a.shape == (896, 2)
    assert np.allclose(a[0], [0.5 / 16, 0.5 / 16]) and np.allclose(a[1], a[0])
    assert np.allclose(a[512], [0.5 / 8, 0.5 / 8]) and np.allclose(a[517], a[512])
    assert refs["base"].anchors.shape == (2304, 2)
