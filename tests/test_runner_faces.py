"""The runner's face handling of issue 18 on real frames (x86_64 host build, real ncnn and
models): which faces are swapped (`--faces`), per-face telemetry (schema /2), small faces
through the full-range fallback (`--small-faces`), the six-face group photo and the 18 px-IOD
face of build.py (every pasted face found and swapped), the auto-Retinex decision on the faces'
light, and whole-face tone matching under the dE > 5 gate. Landmark smoothing:
tests/test_smoothing.py (the filter) and tests/test_quality_eval.py (tiny mode, static input)."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from helpers.paths import REPO

from harness.quality import load_rgb, planted, save_rgb
from harness.quality.faces import faces_swapped
from harness.quality.landmarks import every_face
from harness.runner.telemetry import FACE_STAGES, parse_telemetry

sys.path.insert(0, str(REPO / "benchmarks" / "quality_eval"))
import build as evalset

MODELS = REPO / "models"
SOURCE = MODELS / "test_images" / "grace_hopper.jpg"
FULL_RANGE = "face_detection_full_range"


def swap(runner, target, *args, frames=1):
    """(frame records, summary) of one run; the telemetry goes through the harness parser."""
    r = subprocess.run([str(runner), "--models", str(MODELS), "--source", str(SOURCE),
                        "--target", str(target), "--warmup", "0", "--frames", str(frames),
                        "--telemetry", "-", *map(str, args)],
                       capture_output=True, text=True, timeout=600, check=False,
                       env={"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    t = parse_telemetry(r.stdout, source=f"swap_runner {target}")
    return t.frames, t.summary


@pytest.fixture(scope="module")
def group(tmp_path_factory):
    """Two faces side by side (the group photo of the issue, from the evaluation set)."""
    a, b = (load_rgb(evalset.face_path(n)) for n in ("obama_portrait", "biden_blue_room"))
    p = tmp_path_factory.mktemp("faces") / "group.png"
    save_rgb(p, planted.side_by_side(a, b))
    return p


def _area(box):
    return (box[2] - box[0]) * (box[3] - box[1])


@pytest.mark.parametrize("policy", ["all", "largest", "best"])
def test_faces_policy_picks_the_faces_and_reports_each(runner_binary, group, policy):
    frames, summary = swap(runner_binary, group, "--faces", policy)
    f = frames[0]
    assert summary["faces_policy"] == policy
    assert f["faces"] == 2 and len(f["per_face"]) == 2
    swapped = [p["swapped"] for p in f["per_face"]]
    scores = [p["score"] for p in f["per_face"]]
    areas = [_area(p["box"]) for p in f["per_face"]]
    if policy == "all":
        assert swapped == [True, True] and f["faces_swapped"] == 2
    elif policy == "best":
        assert swapped[int(np.argmax(scores))] and sum(swapped) == 1
    else:
        assert swapped[int(np.argmax(areas))] and sum(swapped) == 1
    # the frame's stage times are the sums of its faces'; a face not asked for costs nothing
    for s in ("align", "warp", "color", "blend"):
        assert f["stage_ns"][s] == sum(p["stage_ns"][s] for p in f["per_face"]), s
    for p in f["per_face"]:
        assert p["selected"] == p["swapped"] and p["detected"] and p["score"] > 0.5
        if not p["swapped"]:
            assert all(p["stage_ns"][s] == 0 for s in FACE_STAGES) and "color" not in p
        else:
            assert p["stage_ns"]["landmarks"] > 0 and p["color"]["de_after"] >= 0


def test_default_swaps_every_face(runner_binary, group):
    frames, summary = swap(runner_binary, group)
    assert summary["faces_policy"] == "all" and frames[0]["faces_swapped"] == 2


def test_tracked_faces_are_smoothed_and_reported(runner_binary, group):
    frames, summary = swap(runner_binary, group, "--mode", "tiny", frames=3)
    assert summary["smoothing"] == "one-euro"
    assert [f["detected"] for f in frames] == [True, False, False]
    assert [f["faces_swapped"] for f in frames] == [2, 2, 2]
    for f in frames[1:]:
        assert all(p["smoothed"] and not p["detected"] and p["score"] is None
                   for p in f["per_face"])
    frames, _ = swap(runner_binary, group, "--mode", "tiny", "--smooth", "off", frames=2)
    assert not any(p["smoothed"] for f in frames for p in f["per_face"])


def _small_face(folder, width, x=300, y=100):
    """A 640x480 grey frame with the obama_portrait crop `width` px wide (its face ~45 %
    of that). Measured: the short-range detector finds none up to 160 px; the full-range one
    from 100 px; on 2x2 tiles from 60 px."""
    img = cv2.imread(str(evalset.face_path("obama_portrait")))
    canvas = np.full((480, 640, 3), 120, np.uint8)
    sm = cv2.resize(img, (width, round(img.shape[0] * width / img.shape[1])),
                    interpolation=cv2.INTER_AREA)
    canvas[y:y + sm.shape[0], x:x + width] = sm
    p = folder / f"small_face_{width}.png"
    cv2.imwrite(str(p), canvas)
    return p


@pytest.fixture(scope="module")
def small_face(tmp_path_factory):
    return _small_face(tmp_path_factory.mktemp("small"), 130)


def test_small_face_is_found_by_the_full_range_fallback(runner_binary, small_face):
    frames, summary = swap(runner_binary, small_face, "--small-faces", "off")
    assert frames[0]["faces"] == 0 and summary["detector_fallback"] is None
    frames, summary = swap(runner_binary, small_face)
    assert summary["detector_fallback"] == FULL_RANGE
    assert frames[0]["faces_swapped"] == 1 and frames[0]["detector"] == FULL_RANGE
    assert frames[0]["detect_tiled"] is False
    # base mode's own detector is the full-range one: no fallback to load
    _, summary = swap(runner_binary, small_face, "--mode", "base")
    assert summary["detector_fallback"] is None


def test_smaller_face_is_found_on_tiles(runner_binary, tmp_path):
    # in the bottom right corner: only the bottom right tile (x >= 256, y >= 192) holds it
    tiny = _small_face(tmp_path, 60, x=520, y=360)
    assert swap(runner_binary, tiny)[0][0]["faces"] == 0      # full range alone: too small
    f = swap(runner_binary, tiny, "--small-faces", "tiles")[0][0]
    assert f["faces_swapped"] == 1 and f["detector"] == FULL_RANGE and f["detect_tiled"] is True
    (box,) = [p["box"] for p in f["per_face"]]
    # the face sits inside the pasted crop (x 520..580, y 360..424): tile offsets undone
    assert 510 < box[0] < box[2] < 590 and 355 < box[1] < box[3] < 435, box


def test_small_face_beside_a_large_one_is_found_with_always(runner_binary, tmp_path):
    """A large face and, beside it, one at 0.35 of its size: the short-range detector finds
    the large one only, so the fallback never runs (default); `--small-faces always` runs
    the full-range detector too and swaps both, the small one where it was pasted."""
    big = cv2.imread(str(evalset.face_path("obama_portrait")))
    small = cv2.resize(cv2.imread(str(evalset.face_path("biden_blue_room"))), None,
                       fx=0.35, fy=0.35, interpolation=cv2.INTER_AREA)
    canvas = np.full((big.shape[0], big.shape[1] + 220, 3), 128, np.uint8)
    canvas[:, :big.shape[1]] = big
    y, x = (big.shape[0] - small.shape[0]) // 2, big.shape[1] + 10
    canvas[y:y + small.shape[0], x:x + small.shape[1]] = small
    p = tmp_path / "large_and_small.png"
    cv2.imwrite(str(p), canvas)
    f = swap(runner_binary, p)[0][0]
    assert f["faces"] == 1 and f["detector"] == "face_detection_short_range", f
    f = swap(runner_binary, p, "--small-faces", "always")[0][0]
    assert f["faces"] == 2 and f["faces_swapped"] == 2, f
    assert f["detector"] == "face_detection_short_range+" + FULL_RANGE
    boxes = sorted(pf["box"] for pf in f["per_face"])
    assert boxes[0][2] < big.shape[1] < boxes[1][0], boxes     # one face in each part
    assert x - 5 < boxes[1][0] < boxes[1][2] < x + small.shape[1] + 5, boxes
    # where both detectors see one face it is kept once: the large face alone
    f = swap(runner_binary, evalset.face_path("obama_portrait"), "--small-faces", "always")[0][0]
    assert f["faces"] == 1 and f["detector"] == "face_detection_short_range", f


def test_small_face_passes_rest_on_an_empty_scene(runner_binary, tmp_path):
    empty = tmp_path / "empty.png"
    cv2.imwrite(str(empty), np.full((480, 640, 3), 90, np.uint8))
    frames, _ = swap(runner_binary, empty, frames=7)
    assert [f["detector"] for f in frames] == [FULL_RANGE] + ["face_detection_short_range"] * 4 + [
        FULL_RANGE, "face_detection_short_range"]


@pytest.fixture(scope="module")
def group6(tmp_path_factory):
    """build.py's group photo (1280x720; IOD 18, 22, 24 at the back, 40, 36, 30 in front)."""
    img, pasted = evalset.group_photo()
    p = tmp_path_factory.mktemp("group6") / "group6.png"
    cv2.imwrite(str(p), img)
    return p, img, pasted


def swap_and_score(runner, target, img, pasted, out, *args):
    """(frame record, quality_missed_faces on the pasted faces' boxes) of one saved frame."""
    r = subprocess.run([str(runner), "--models", str(MODELS), "--source", str(SOURCE),
                        "--target", str(target), "--warmup", "0", "--frames", "1",
                        "--enhance", "off", "--save-every", "1", "--out-format", "png",
                        "--out", str(out), "--telemetry", "-", *map(str, args)],
                       capture_output=True, text=True, timeout=600, check=False,
                       env={"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    f = parse_telemetry(r.stdout, source=f"swap_runner {target}").frames[0]
    output = cv2.imread(str(out / "out_0.png"))
    score = faces_swapped(img, output, [p.box for p in pasted], "all")
    # what `swaplab score` sees: its own search for the target's faces, not the pasted boxes
    mode = args[list(args).index("--mode") + 1] if "--mode" in args else "small"
    found = every_face(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), mode)
    by_scorer = faces_swapped(img, output, [d.box for d in found], "all")
    assert len(found) == len(pasted), [d.box for d in found]
    assert by_scorer.value == score.value, (by_scorer.detail, score.detail)
    return f, score


def _found(f, pasted):
    """The pasted faces (indices) whose eyes' middle lies in one of the runner's boxes."""
    hits = set()
    for i, p in enumerate(pasted):
        (ax, ay), (bx, by) = p.eyes
        cx, cy = (ax + bx) / 2, (ay + by) / 2
        if any(b[0] < cx < b[2] and b[1] < cy < b[3] for b in (q["box"] for q in f["per_face"])):
            hits.add(i)
    return hits


@pytest.mark.parametrize("mode", ["tiny", "small", "base"])
def test_group_photo_every_face_swapped_with_always_tiles(runner_binary, group6, tmp_path, mode):
    """docs/quality.md "Group photo of six": `--small-faces always-tiles` is the setting for
    group photos; every one of the six faces is found and visibly swapped in every mode."""
    path, img, pasted = group6
    f, score = swap_and_score(runner_binary, path, img, pasted, tmp_path, "--mode", mode,
                              "--small-faces", "always-tiles", "--faces", "all")
    assert f["faces"] == 6 and f["faces_swapped"] == 6, f
    assert _found(f, pasted) == set(range(6)), [q["box"] for q in f["per_face"]]
    assert score.value == 0, score.detail
    assert f["detect_tiled"] is True
    if mode == "tiny":      # the six are followed between detections (every 5th frame)
        frames, _ = swap(runner_binary, path, "--mode", mode, "--small-faces", "always-tiles",
                         frames=6)
        assert [x["faces_swapped"] for x in frames] == [6] * 6
        assert [x["detected"] for x in frames] == [True] + [False] * 4 + [True]


@pytest.mark.parametrize("mode", ["tiny", "small", "base"])
def test_group_photo_default_swaps_the_front_row_only(runner_binary, group6, tmp_path, mode):
    """What the docs say the default does on the group photo: every mode finds the two
    largest faces (IOD 40 and 36) and swaps them; the back row and the IOD-30 face are too
    small for the full-range detector on the whole frame, and the tiles do not run because
    it found some."""
    path, img, pasted = group6
    f, score = swap_and_score(runner_binary, path, img, pasted, tmp_path, "--mode", mode)
    assert f["faces"] == 2 and f["faces_swapped"] == 2, f
    assert _found(f, pasted) == {3, 4}
    assert score.value == 4, score.detail
    assert f["detect_tiled"] is False


def test_runner_takes_every_small_faces_value_a_profile_may_name(runner_binary, tmp_path):
    from harness.profiles import SMALL_FACES  # why: the profile's list is what is checked here

    img, _ = evalset.single_face("obama_portrait", 40.0, (320, 240))
    path = tmp_path / "face.png"
    cv2.imwrite(str(path), img)
    for value in SMALL_FACES:
        frames, _ = swap(runner_binary, path, "--small-faces", value)
        assert frames[0]["faces_swapped"] == 1, value    # a face short range sees: every value


@pytest.mark.parametrize("mode", ["tiny", "small", "base"])
def test_face_with_18_px_between_the_eyes_is_swapped_by_default(runner_binary, tmp_path, mode):
    """The issue's "face with 18 px between the eyes" (640x480): found and swapped with the
    defaults in every mode; in tiny and small mode by the full-range fallback alone."""
    img, pasted = evalset.single_face("obama_portrait", 18.0, (640, 480))
    path = tmp_path / "iod18.png"
    cv2.imwrite(str(path), img)
    f, score = swap_and_score(runner_binary, path, img, pasted, tmp_path / "on", "--mode", mode)
    assert f["faces_swapped"] == 1 and _found(f, pasted) == {0} and score.value == 0, score.detail
    if mode != "base":
        assert f["detector"] == FULL_RANGE
        off, _ = swap_and_score(runner_binary, path, img, pasted, tmp_path / "off", "--mode",
                                mode, "--small-faces", "off")
        assert off["faces"] == 0


def _luma(bgr):
    return float(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).mean())


def test_auto_enhance_decides_on_the_faces_light(runner_binary, tmp_path):
    img = cv2.imread(str(evalset.face_path("obama_portrait")))
    # a well lit face in a dark frame (the dark suit of the issue): frame mean < 70
    dark_frame = np.full((900, 900, 3), 15, np.uint8)
    dark_frame[250:250 + img.shape[0], 300:300 + img.shape[1]] = img
    cv2.imwrite(str(tmp_path / "dark_frame.png"), dark_frame)
    assert _luma(dark_frame) < 70
    f = swap(runner_binary, tmp_path / "dark_frame.png")[0][0]
    assert f["faces_swapped"] == 1 and f["enhanced"] is False
    assert f["light_region"] == "faces" and f["light_luma"] > 100
    # a dark face: enhanced
    cv2.imwrite(str(tmp_path / "dark_face.png"), (img.astype(np.float32) * 0.3).astype(np.uint8))
    f = swap(runner_binary, tmp_path / "dark_face.png")[0][0]
    assert f["enhanced"] is True and f["light_region"] == "faces" and f["light_luma"] < 70
    # forced off / on: no decision made
    f = swap(runner_binary, tmp_path / "dark_face.png", "--enhance", "off")[0][0]
    assert f["enhanced"] is False and f["light_luma"] is None


def test_whole_face_tone_is_matched_when_only_the_interior_differs(runner_binary, tmp_path):
    """A self-swap onto a target whose face interior (not its outline) was tinted: the band
    along the mask edge agrees (dE < 5), the whole face does not. The gate sees the face's
    dE and the transfer brings the face's skin to the target's."""
    from harness.quality import reference_landmarks

    tgt = load_rgb(evalset.face_path("obama_portrait"))
    tl = reference_landmarks(tgt)
    tinted = planted.colour_shift(tgt, tl, d_lightness=-14.0, chroma=1.6, inset=0.2)
    save_rgb(tmp_path / "tinted.png", tinted)
    r = subprocess.run([str(runner_binary), "--models", str(MODELS), "--source",
                        str(evalset.face_path("obama_portrait")), "--target",
                        str(tmp_path / "tinted.png"), "--warmup", "0", "--frames", "1",
                        "--enhance", "off", "--telemetry", "-"],
                       capture_output=True, text=True, timeout=600, check=False,
                       env={"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    f = json.loads(r.stdout.splitlines()[0])
    c = f["per_face"][0]["color"]
    assert c["de_band_before"] <= 5 < c["de_face_before"], c
    assert f["de_before"] == pytest.approx(max(c["de_band_before"], c["de_face_before"]))
    assert f["tone_compensated"] is True and c["de_face_after"] < c["de_face_before"] / 2, c
