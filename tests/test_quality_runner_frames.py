"""The scores on the C++ runner's own output frames: its blend passes every score, and
defects made from that blend (colour patch, face shifted 5 px, face scaled 0.8, background
touched, no swap) are flagged by the score meant for each.

Uses the runner built by runner/build.py for this host (cached under $SWAPLAB_CACHE; the
first build takes minutes, later ones are instant)."""

from __future__ import annotations

import subprocess

import cv2
import numpy as np
import pytest

pytest.importorskip("ncnn")

from harness import REPO_ROOT
from harness.quality import geometry as geo
from harness.quality import load_rgb, reference_landmarks, score_blend
from harness.quality.synthetic import touch_background

IMAGES = REPO_ROOT / "models" / "test_images"
PAIRS = [("grace_hopper.jpg", "astronaut.png"), ("astronaut.png", "grace_hopper.jpg")]


@pytest.fixture(scope="module")
def runner_frames(runner_binary, tmp_path_factory):
    """{pair: (source, target, runner output, source landmarks, target landmarks)}"""
    out = {}
    for src_name, tgt_name in PAIRS:
        d = tmp_path_factory.mktemp("runner-out")
        r = subprocess.run([str(runner_binary), "--models", str(REPO_ROOT / "models"),
                            "--source", str(IMAGES / src_name), "--target", str(IMAGES / tgt_name),
                            "--warmup", "0", "--frames", "1", "--save-every", "1",
                            "--out", str(d / "o"), "--enhance", "off", "--telemetry", "-"],
                           capture_output=True, text=True, timeout=300, check=False,
                           env={"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"})
        assert r.returncode == 0, r.stderr[-2000:]
        frames = sorted((d / "o").glob("out_*.jpg"))
        assert frames, f"runner saved no frame: {r.stderr[-500:]}"
        src, tgt = load_rgb(IMAGES / src_name), load_rgb(IMAGES / tgt_name)
        out[src_name, tgt_name] = (src, tgt, load_rgb(frames[0]), reference_landmarks(src),
                                   reference_landmarks(tgt))
    return out


def score(src, tgt, output, sl, tl):
    return score_blend(src, tgt, output, tl, source_landmarks=sl,
                       output_landmarks=reference_landmarks(output, roi_image=tgt))


def face_region(tl, shape, inset: float) -> np.ndarray:
    """The landmark hull shrunk by `inset` * IOD (bool)."""
    sd = geo.signed_distance(geo.mask_from_landmarks(tl, shape) > 0)
    return sd > inset * geo.inter_ocular(tl)


def defect(name: str, tgt, output, tl) -> np.ndarray:
    """A broken variant of the runner's good blend."""
    iod = geo.inter_ocular(tl)
    if name == "colour_patch":           # the face's colour off: +18 a*, +14 b* inside
        m = face_region(tl, tgt.shape, 0.05).astype(np.float32)
        m = cv2.GaussianBlur(m, (0, 0), 0.05 * iod)[..., None]
        lab = cv2.cvtColor(output.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
        lab = lab + m * np.array([0.0, 18.0, 14.0], np.float32)
        rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB)
        return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)
    if name in ("shifted_5px", "wrong_scale"):
        m = face_region(tl, tgt.shape, 0.0)
        if name == "shifted_5px":
            moved = np.roll(output, 5, axis=1)
        else:
            c = geo.face_centre(tl)
            a = np.array([[0.8, 0, 0.2 * c[0]], [0, 0.8, 0.2 * c[1]]])
            moved = cv2.warpAffine(output, a, (tgt.shape[1], tgt.shape[0]),
                                   borderMode=cv2.BORDER_REFLECT)
        out = output.copy()
        out[m] = moved[m]
        return out
    if name == "background_touched":
        return touch_background(output, geo.mask_from_landmarks(tl, tgt.shape), iod)
    if name == "no_swap":
        return tgt.copy()
    raise ValueError(name)


# No hard-seam variant here: a hard edge cannot be cut out of a Poisson output (near its
# mask edge it already equals the target); tests/test_quality_defects.py pastes the warped,
# colour-corrected face with a binary mask for that.
INTENDED = {"colour_patch": {"colour"}, "shifted_5px": {"pose"},
            "wrong_scale": {"pose"}, "background_touched": {"background_ssim", "background_psnr"},
            "no_swap": {"identity"}}


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
def test_runner_blend_passes_every_score(runner_frames, pair):
    src, tgt, out, sl, tl = runner_frames[pair]
    s = score(src, tgt, out, sl, tl)
    assert s.passed, f"{pair}: runner blend failed: {s.summary()}"


@pytest.mark.parametrize("name", sorted(INTENDED))
@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p[0]}->{p[1]}")
def test_defect_of_runner_blend_is_flagged(runner_frames, pair, name):
    src, tgt, out, sl, tl = runner_frames[pair]
    broken = defect(name, tgt, out, tl)
    s = score(src, tgt, broken, sl, tl)
    assert INTENDED[name] & s.failed_names(), f"{pair} {name}: {s.summary()}"
