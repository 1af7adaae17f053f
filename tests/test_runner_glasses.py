"""The target's glasses in base mode (issue 18, occlusion-aware mask; runner/src/occluders.cpp)
on real frames with the x86_64 host build, real ncnn and models: on grace_hopper.jpg (glasses)
the whole frame -- bridge and lower rims, not only the upper rims along the brows -- keeps the
target's pixels in the output; faces of the evaluation set without glasses flag nothing."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers.glasses_variants import (
    VARIANTS,
    glasses_variant,
    rim_coverage,
    rim_regions,
    under_the_eyes,
)
from helpers.paths import REPO

from harness.quality.glasses import half_erased_glasses_score
from harness.quality.landmarks import reference_landmarks
from harness.runner.telemetry import parse_telemetry

sys.path.insert(0, str(REPO / "benchmarks" / "quality_eval"))
import build as evalset

MODELS = REPO / "models"
GLASSES = MODELS / "test_images" / "grace_hopper.jpg"  # horn-rimmed glasses
SOURCE = evalset.face_path("obama_portrait")
BARE = [evalset.face_path(n) for n in ("obama_portrait", "biden_blue_room", "obama_blue_room",
                                       "obama_congress")] + [MODELS / "test_images" / "astronaut.png"]


def run(runner, source, target, out, mode="base"):
    """(first frame record, output image BGR, 68 target points, glasses mask or None)."""
    out.mkdir(parents=True, exist_ok=True)
    env = {"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin", "SWAPLAB_DEBUG_DIR": str(out)}
    r = subprocess.run([str(runner), "--models", str(MODELS), "--source", str(source),
                        "--target", str(target), "--mode", mode, "--warmup", "0", "--frames", "1",
                        "--enhance", "off", "--save-every", "1", "--out", str(out),
                        "--dump-landmarks", str(out / "lm.jsonl"), "--telemetry", "-"],
                       capture_output=True, text=True, timeout=600, check=False, env=env)
    assert r.returncode == 0, r.stderr
    frame = parse_telemetry(r.stdout, source=f"swap_runner {target}").frames[0]
    dumps = [json.loads(x) for x in (out / "lm.jsonl").read_text().splitlines()]
    lm = np.array(next(d for d in dumps if d["type"] == "frame")["lm68"], np.float32)
    g = out / "glasses.png"
    mask = cv2.imread(str(g), cv2.IMREAD_GRAYSCALE) > 0 if g.exists() else None
    return frame, cv2.imread(str(out / "out_0.jpg")), lm, mask


def lower_rims_and_bridge(lm: np.ndarray, shape) -> dict[str, np.ndarray]:
    """Where the part of a frame the old mask erased lies, from the 68 points: below each eye
    (0.2-0.6 eye distances down, within 0.45 of its centre across) and across the nose
    between the inner eye corners (+-0.2 eye distances). Axis-aligned: the face is upright."""
    le, re_ = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = float(np.linalg.norm(re_ - le))
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    out = {}
    for name, c in (("left_lower_rim", le), ("right_lower_rim", re_)):
        out[name] = ((abs(xx - c[0]) < 0.45 * iod) & (yy > c[1] + 0.2 * iod)
                     & (yy < c[1] + 0.6 * iod))
    inner = (lm[39] + lm[42]) / 2
    out["bridge"] = ((xx > lm[39][0]) & (xx < lm[42][0]) & (abs(yy - inner[1]) < 0.2 * iod))
    return out


@pytest.fixture(scope="module")
def glasses_swap(runner_binary, tmp_path_factory):
    return run(runner_binary, SOURCE, GLASSES, tmp_path_factory.mktemp("glasses"))


def test_glasses_found_and_reported(glasses_swap):
    frame, _, _, mask = glasses_swap
    face = frame["per_face"][0]
    assert face["occluder"] == "glasses"
    assert face["occluder_evidence"] >= 10  # kGlassesBridgeMin
    # the frame, not a speck and not the face: measured 0.118 of the hull
    assert 0.05 < face["occluder_share"] < 0.3
    assert mask is not None and mask.any()


def test_whole_frame_of_the_target_survives(glasses_swap):
    """Inside the glasses found, the output is the target's pixels (JPEG round trip aside),
    and they cover the lower rims and the bridge, which the old mask replaced by the source."""
    _, out, lm, mask = glasses_swap
    target = cv2.imread(str(GLASSES))
    diff = np.abs(out.astype(int) - target.astype(int)).max(axis=2)
    inner = cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # off the soft edge
    assert np.median(diff[inner]) <= 6, np.median(diff[inner])
    for name, region in lower_rims_and_bridge(lm, mask.shape).items():
        kept = inner & region
        assert kept.sum() >= 40, (name, int(kept.sum()))
        assert np.median(diff[kept]) <= 6, (name, float(np.median(diff[kept])))


def test_lines_seen_through_a_lens_are_not_kept(glasses_swap):
    """grace_hopper's under-eye wrinkles touch the left rim; they are skin seen through the
    lens, not frame: under each eye (0.3 eye distances) almost nothing is kept (measured: 0
    px; 399 of 1176 before lens holes were cut out)."""
    _, _, lm, mask = glasses_swap
    le, re_ = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = float(np.linalg.norm(re_ - le))
    yy, xx = np.mgrid[0:mask.shape[0], 0:mask.shape[1]]
    for c in (le, re_):
        below = (np.hypot(xx - c[0], yy - c[1]) < 0.3 * iod) & (yy > c[1])
        assert (mask & below).sum() < 0.05 * below.sum(), (c, int((mask & below).sum()))


def test_small_mode_still_erases_them(runner_binary, glasses_swap, tmp_path):
    """The same pixels of the lower rims and the bridge in small mode (no occluder search):
    replaced by the source (median |diff| 33-56), so the test above sees the difference the
    mask makes. (Over the whole frame the median is 20 since the lower rims are followed:
    small mode keeps much of the upper bar.)"""
    _, _, lm, mask = glasses_swap
    frame, out, _, _ = run(runner_binary, SOURCE, GLASSES, tmp_path, mode="small")
    assert frame["per_face"][0]["occluder"] is None
    target = cv2.imread(str(GLASSES))
    diff = np.abs(out.astype(int) - target.astype(int)).max(axis=2)
    for name, region in lower_rims_and_bridge(lm, mask.shape).items():
        assert np.median(diff[mask & region]) > 20, (name, np.median(diff[mask & region]))


@pytest.mark.parametrize("target", BARE, ids=lambda p: p.stem)
def test_faces_without_glasses_flag_nothing(runner_binary, target, tmp_path):
    source = GLASSES if target == SOURCE else SOURCE
    frame, _, _, mask = run(runner_binary, source, target, tmp_path)
    face = frame["per_face"][0]
    assert face["occluder"] == "none" and face["occluder_share"] == 0
    assert face["occluder_evidence"] < 10
    assert mask is None


@pytest.fixture(scope="module")
def variant_swaps(runner_binary, tmp_path_factory):
    """(variant, mode) -> `run`'s result plus the target (BGR), obama_portrait swapped onto
    grace_hopper turned, mirrored or shrunk; each run once, when first asked for."""
    root = tmp_path_factory.mktemp("variants")
    done = {}

    def swap(variant, mode):
        if (variant, mode) not in done:
            target = root / f"{variant}.png"  # lossless: the runner sees OpenCV's pixels
            if not target.exists():
                cv2.imwrite(str(target), glasses_variant(variant))
            done[variant, mode] = (*run(runner_binary, SOURCE, target, root / f"{variant}_{mode}",
                                        mode=mode), cv2.imread(str(target)))
        return done[variant, mode]
    return swap


@pytest.mark.parametrize("variant", VARIANTS)
def test_lower_rims_kept_on_turned_mirrored_and_small_faces(variant_swaps, variant):
    """Base mode follows each faint lower rim around its eye (occluders.cpp's rim_path), so
    on grace_hopper as is, turned +-15 deg, mirrored and at 0.5 / 0.35 size both lower rims
    keep the target's pixels (output within 12 levels of the target, off the mask's soft
    edge): across >= 0.75 of each rim's width (measured 0.81-1; main's build 0-0.25 on a rim of
    every variant but as_is) and >= 0.02 IOD^2 px in its region (measured 0.035-0.10; main's
    0-0.014 there). The cheeks below the rims, where the wrinkles are, keep nothing (0 px),
    and the half-discs under the eyes, seen through the lenses, < 5 % (measured 0-3.3 %)."""
    frame, out, lm, mask, target = variant_swaps(variant, "base")
    assert frame["per_face"][0]["occluder"] == "glasses" and mask is not None
    iod = float(np.linalg.norm(lm[36:42].mean(0) - lm[42:48].mean(0)))
    diff = np.abs(out.astype(int) - target.astype(int)).max(axis=2)
    kept = (cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & (diff <= 12)
    spans = rim_coverage(kept, lm)
    for name, region in rim_regions(lm, mask.shape).items():
        if name.endswith("lower_rim"):
            n = int((kept & region).sum())
            assert spans[name] >= 0.75, (variant, name, spans[name])
            assert n >= 0.02 * iod ** 2, (variant, name, n, round(iod, 1))
        else:
            assert not (mask & region).any(), (variant, name, int((mask & region).sum()))
    for name, region in under_the_eyes(lm, mask.shape).items():
        n = int((mask & region).sum())
        assert n < 0.05 * region.sum(), (variant, name, n)


@pytest.mark.parametrize("variant", VARIANTS)
def test_half_erased_score_flags_small_and_passes_base(variant_swaps, variant):
    """The half-erased glasses score (glasses.py: its own frame finder, the same rim path) on
    the real runner's outputs: small mode (the frame's lower half replaced) fails, measured
    0.46-0.76, at 0.35 size 0.353 (just over the threshold 0.35: small mode changes the
    upper bar there too, kept 0.52); base mode (whole frame kept) passes, measured -0.01-0.32.
    main's base mode, which missed the rims, fails on the turned -15, mirrored and small
    faces (0.39-0.56), which the scorer without the rim path passed (-0.05-0.22), as it
    passed small mode at 0.35 size (0.27)."""
    target = variant_swaps(variant, "base")[4]
    rgb = np.ascontiguousarray(target[..., ::-1])
    lm = reference_landmarks(rgb)
    scores = {mode: half_erased_glasses_score(
        np.ascontiguousarray(variant_swaps(variant, mode)[1][..., ::-1]), rgb, lm)
        for mode in ("small", "base")}
    assert scores["base"].passed is True, (variant, scores["base"].value, scores["base"].detail)
    assert scores["small"].passed is False, (variant, scores["small"].value,
                                             scores["small"].detail)
