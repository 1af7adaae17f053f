"""The runner's landmark smoothing (runner/src/smoothing.cpp, One Euro filter), compiled
with a small driver (runner/tests/smoothing_driver.cpp) and fed synthetic tracks: a still
face stops jittering, a moving face is followed with little lag, a new face passes through.
The filter on the runner's own frames: tests/test_quality_eval.py (tiny mode, static input)."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest
from helpers.paths import REPO

SRC = REPO / "runner" / "src"


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    cxx = shutil.which("g++") or shutil.which("c++")
    if not cxx:
        pytest.skip("no C++ compiler")
    exe = tmp_path_factory.mktemp("smoothing") / "smoothing_driver"
    subprocess.run([cxx, "-std=c++17", "-O1", "-I", str(SRC), str(SRC / "smoothing.cpp"),
                    str(REPO / "runner" / "tests" / "smoothing_driver.cpp"), "-o", str(exe)],
                   check=True, capture_output=True, timeout=300)
    return exe


def smooth(driver, track: np.ndarray, scale: float, params=None) -> np.ndarray:
    """track: (frames, values) in px -> filtered, same shape."""
    lines = "".join(f"{scale} " + " ".join(f"{v:.6f}" for v in row) + "\n" for row in track)
    args = [str(driver), *map(str, params)] if params else [str(driver)]
    out = subprocess.run(args, input=lines, capture_output=True, text=True, check=True,
                         timeout=60).stdout
    return np.array([[float(x) for x in ln.split()] for ln in out.splitlines()])


def jitter(track: np.ndarray) -> float:
    """Largest distance of a point from its median position, px (as quality_jitter_px)."""
    pts = track.reshape(len(track), -1, 2)
    return float(np.linalg.norm(pts - np.median(pts, axis=0), axis=2).max())


def test_constant_input_is_unchanged(driver):
    track = np.tile(np.array([[120.5, 80.25, 180.0, 81.0]]), (10, 1))
    assert np.allclose(smooth(driver, track, 60.0), track, atol=1e-5)


def test_still_face_jitter_drops_below_half_a_pixel(driver):
    rng = np.random.default_rng(7)
    base = np.array([100.0, 100.0, 160.0, 100.0])
    # tiny mode on a still image, as measured on the runner: the tracked crops drift by
    # 1-2 px over the frames between detections, then snap back; +-0.2 px noise
    drift = [0.0, 1.0, 1.4, 1.6, 1.5]
    track = np.array([base + drift[i % 5] + rng.uniform(-0.2, 0.2, 4) for i in range(30)])
    out = smooth(driver, track, 60.0)
    # after the filter has settled on the still face (its first ~10 frames converge from
    # the first detection towards the mean position)
    assert jitter(track[10:]) > 1.0
    assert jitter(out[10:]) < 0.5, jitter(out[10:])


def test_moving_face_is_followed_with_little_lag(driver):
    # one eye distance (60 px) per second at 30 frames/s: a head turning at a normal pace
    t = np.arange(60)
    track = np.stack([100 + 2.0 * t, 100 + 0 * t], axis=1).astype(float)
    out = smooth(driver, track, 60.0)
    lag = np.abs(out[30:, 0] - track[30:, 0]).max()
    assert lag < 0.06 * 60, lag
    # without the speed term (beta 0) the same filter lags by several eye distances' worth
    slow = smooth(driver, track, 60.0, (30, 0.4, 0.0, 1.0))
    assert np.abs(slow[30:, 0] - track[30:, 0]).max() > 3 * lag


def test_first_frame_and_a_new_length_pass_through(driver):
    lines = np.array([[10.0, 20.0], [30.0, 40.0]])
    out = smooth(driver, lines, 50.0)
    assert np.allclose(out[0], lines[0]) and not np.allclose(out[1], lines[1])
