"""Camera-like input and the thermal fallback ladder, on the real runner (host build), real
models and test images.

Camera input: the lab's target image as NV21 (harness.inputs.camera, what a phone camera
hands over), converted in the runner's own `convert` stage; the frame clock hands frames
over at `--camera-fps` and counts the camera frames dropped while a frame's work overran
the interval. The ladder: a FIFO stands in for the thermal zone, so the test decides the
temperature of every read (one value per open, as the runner opens the file at each
check) and the switches are deterministic."""

from __future__ import annotations

import json
import os
import select
import subprocess
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers.paths import REPO

from harness.inputs.camera import camera_frames, to_nv21
from harness.inputs.video import FRAMES, video_clip
from harness.power import fallback as FB
from harness.runner.telemetry import parse_telemetry

MODELS = REPO / "models"
IMAGES = MODELS / "test_images"
SOURCE = IMAGES / "grace_hopper.jpg"
TARGET = IMAGES / "astronaut.png"


@pytest.fixture(scope="module")
def camera_dir(tmp_path_factory) -> Path:
    frames = camera_frames({TARGET.name: TARGET}, tmp_path_factory.mktemp("camera"))
    return next(iter(frames.values())).parent


def run_runner(binary, *args, timeout=300) -> subprocess.CompletedProcess:
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE")
    return subprocess.run([str(binary), "--models", str(MODELS), "--source", str(SOURCE),
                           *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def test_nv21_is_what_the_camera_hands_over():
    """Y plane then interleaved V,U at half resolution; OpenCV's NV21 decoder gets the
    image back up to chroma subsampling."""
    img = cv2.imread(str(TARGET), cv2.IMREAD_COLOR)
    nv21 = to_nv21(img)
    h, w = img.shape[:2]
    assert nv21.shape == (h * 3 // 2, w) and nv21.dtype == np.uint8
    back = cv2.cvtColor(nv21, cv2.COLOR_YUV2BGR_NV21)
    assert cv2.PSNR(img, back) > 30
    # V first: swapping the chroma order (NV12) turns the colours
    assert cv2.PSNR(img, cv2.cvtColor(nv21, cv2.COLOR_YUV2BGR_NV12)) < cv2.PSNR(img, back) - 5
    with pytest.raises(ValueError, match="even width and height"):
        to_nv21(img[:, :-1])


def test_camera_input_converts_in_its_own_stage(runner_binary, camera_dir, tmp_path):
    """Same swap from NV21 as from the PNG: `decode` hands the buffer over (no JPEG/PNG
    decode), `convert` does YUV -> BGR, and the face lands where it does on the image."""
    cam = run_runner(runner_binary, "--target", camera_dir, "--warmup", "1", "--frames", "3",
                     "--camera-fps", "30", "--dump-landmarks", tmp_path / "cam.jsonl")
    assert cam.returncode == 0, cam.stderr
    img = run_runner(runner_binary, "--target", TARGET, "--warmup", "1", "--frames", "3",
                     "--dump-landmarks", tmp_path / "img.jsonl")
    assert img.returncode == 0, img.stderr
    tc, ti = parse_telemetry(cam.stdout, "camera"), parse_telemetry(img.stdout, "image")
    for f in tc.frames:
        assert f["faces"] == 1 and f["stage_ns"]["convert"] > 0
        assert f["camera_fps"] == 30 and f["camera_frame"] >= f["index"]
    for f in ti.frames:
        assert f["stage_ns"]["convert"] == 0 and "camera_frame" not in f
    assert tc.summary["camera_fps"] == 30 and ti.summary["camera_fps"] == 0
    assert ti.frames_dropped() is None and tc.frames_dropped() is not None

    def mesh(path):
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        f = next(r for r in rows if r["type"] == "frame" and r.get("mesh"))
        return np.array(f["mesh"])[:, :2], f["roi"]["width"]

    (mc, wc), (mi, _) = mesh(tmp_path / "cam.jsonl"), mesh(tmp_path / "img.jsonl")
    # NV21 keeps luma at full resolution and halves chroma: the detector and the mesh see
    # nearly the same image. 1 px at the 192 px crop scale is a fifth of a landmark's
    # typical error against annotations, and far above the 0.001 px that the same input
    # gives; a wrong channel order or size would move the face by more.
    err = np.abs(mc - mi).mean() * 192 / wc
    assert err < 1.0, err


def test_frames_dropped_when_work_overruns_the_interval(runner_binary, camera_dir):
    """At 1000 fps every frame's work (several ms here) spans several camera frames: each
    frame after the first drops at least one, the summary counts the measured frames'
    drops, and the runner does not wait."""
    r = run_runner(runner_binary, "--target", camera_dir, "--warmup", "1", "--frames", "5",
                   "--camera-fps", "1000")
    assert r.returncode == 0, r.stderr
    tel = parse_telemetry(r.stdout, "fast camera")
    assert tel.frames[0]["dropped"] == 0 and tel.frames[0]["camera_frame"] == 0
    assert all(f["dropped"] >= 1 for f in tel.frames[1:]), [f["dropped"] for f in tel.frames]
    assert tel.summary["frames_dropped"] == sum(f["dropped"] for f in tel.measured)
    assert tel.summary["frames_dropped_total"] == sum(f["dropped"] for f in tel.frames)
    # camera sequence numbers: the frame handed over, then the ones dropped after it
    for a, b in zip(tel.frames, tel.frames[1:]):
        assert b["camera_frame"] == a["camera_frame"] + b["dropped"] + 1


def test_bad_camera_frames_are_named(runner_binary, tmp_path):
    (tmp_path / "f_64x64.nv21").write_bytes(b"\0" * 100)
    r = run_runner(runner_binary, "--target", tmp_path, "--frames", "1")
    assert r.returncode == 3 and "f_64x64.nv21" in r.stderr and "6144 bytes" in r.stderr
    (tmp_path / "f_64x64.nv21").unlink()
    (tmp_path / "frame.nv21").write_bytes(b"\0" * 100)
    r = run_runner(runner_binary, "--target", tmp_path, "--frames", "1")
    assert r.returncode == 3 and "_<W>x<H>.nv21" in r.stderr
    r = run_runner(runner_binary, "--target", TARGET, "--frames", "1",
                   "--thermal-fallback", "fps,heat")
    assert r.returncode == 2 and "--thermal-fallback" in r.stderr


def scripted_sensor(path: Path, temps: list[float]) -> threading.Thread:
    """A FIFO at `path` that gives the runner `temps`, one per read: each value goes to one
    open of the runner's, and the writer holds its end until the runner has closed (POLLERR
    on the write end), so the next value cannot land in the previous read."""
    os.mkfifo(path)

    def feed():
        for t in temps:
            fd = os.open(path, os.O_WRONLY)  # blocks until the runner opens the zone
            try:
                os.write(fd, f"{t * 1000:.0f}\n".encode())
                p = select.poll()
                p.register(fd, select.POLLERR)
                p.poll(120_000)
            finally:
                os.close(fd)
    th = threading.Thread(target=feed, daemon=True)
    th.start()
    return th


def test_fallback_ladder_fps_first_then_mode_and_back(runner_binary, camera_dir, tmp_path):
    """Hot for three checks, then cool: 30 -> 15 fps, GPU rung skipped (CPU-only build),
    base -> small -> tiny; back up in reverse order: tiny -> small -> base, 15 -> 30 fps.
    Every step logged, the replay check agrees, frames ran in the mode and at the rate
    in force."""
    frames = 9
    temps = [50.0] + [80.0] * 3 + [40.0] * (frames - 3)  # constructor read + one per frame
    feeder = scripted_sensor(tmp_path / "zone", temps)
    r = run_runner(runner_binary, "--target", camera_dir, "--mode", "auto", "--warmup", "0",
                   "--frames", frames, "--camera-fps", "30", "--thermal-source",
                   tmp_path / "zone", "--thermal-check-every", "1", "--thermal-limit-c", "70",
                   "--thermal-hysteresis-c", "5", "--thermal-fallback", "fps,gpu,mode")
    feeder.join(timeout=5)
    assert r.returncode == 0, r.stderr
    tel = parse_telemetry(r.stdout, "ladder")
    steps = sorted([(s["index"], "mode", s["from"], s["to"], False) for s in tel.mode_switches]
                   + [(s["index"], s["rung"], s["from"], s["to"], s["skipped"])
                      for s in tel.fallback_switches])
    assert steps == [(0, "fps", "30", "15", False), (1, "gpu", "cpu", "cpu", True),
                     (1, "mode", "base", "small", False), (2, "mode", "small", "tiny", False),
                     (3, "mode", "tiny", "small", False), (4, "mode", "small", "base", False),
                     (5, "fps", "15", "30", False)], steps
    assert [f["camera_fps"] for f in tel.frames] == [15, 15, 15, 15, 15, 30, 30, 30, 30]
    assert [f["mode"] for f in tel.frames] == ["base", "small", "tiny", "small", "base",
                                               "base", "base", "base", "base"]
    gpu = next(s for s in tel.fallback_switches if s["rung"] == "gpu")
    assert gpu["why"] == "no net runs on the GPU" and gpu["reason"] == "above_limit"
    assert tel.summary["fallback_switches"] == 7 and tel.summary["mode_switches"] == 4
    check = FB.check_fallback(tel.frames, tel.mode_switches, limit_c=70, hysteresis_c=5,
                              check_every=1, fallback_switches=tel.fallback_switches,
                              order=("fps", "gpu", "mode"), fps=30, fps_low=15)
    assert check.ok, check.problems
    assert check.first("down", "fps") < check.first("down", "mode")
    assert check.first("up", "mode") < check.first("up", "fps")
    assert (check.steps_down, check.steps_up) == (3, 3)
    # the same log against a mode-first ladder is wrong, and the check says where
    wrong = FB.check_fallback(tel.frames, tel.mode_switches, limit_c=70, hysteresis_c=5,
                              check_every=1, fallback_switches=tel.fallback_switches,
                              order=("mode", "gpu", "fps"), fps=30, fps_low=15)
    assert not wrong.ok and any("frame 0" in p for p in wrong.problems), wrong.problems


def test_fixed_mode_falls_back_on_the_frame_rate_only(runner_binary, camera_dir, tmp_path):
    """Without --mode auto the mode rung never moves: the ladder lowers the frame rate and
    restores it."""
    feeder = scripted_sensor(tmp_path / "zone", [50.0, 80.0, 80.0, 40.0, 40.0])
    r = run_runner(runner_binary, "--target", camera_dir, "--mode", "tiny", "--warmup", "0",
                   "--frames", "4", "--camera-fps", "20", "--thermal-source", tmp_path / "zone",
                   "--thermal-check-every", "1", "--thermal-fallback", "mode,fps",
                   "--thermal-fps-low", "5")
    feeder.join(timeout=5)
    assert r.returncode == 0, r.stderr
    tel = parse_telemetry(r.stdout, "fixed")
    assert not tel.mode_switches
    assert [(s["index"], s["from"], s["to"]) for s in tel.fallback_switches] == [
        (0, "20", "5"), (2, "5", "20")]
    check = FB.check_fallback(tel.frames, [], limit_c=70, hysteresis_c=5, check_every=1,
                              fallback_switches=tel.fallback_switches, order=("mode", "fps"),
                              fps=20, fps_low=5, start_mode="tiny", auto=False)
    assert check.ok, check.problems


def test_placement_per_net_threads_and_cpus_clamped_to_this_host(runner_binary, camera_dir):
    """`--placement` puts each net on its CPU set with its thread count; on a host with
    fewer CPUs than the phone's both are clamped to what the process has, and the summary
    says so per stage."""
    have = sorted(os.sched_getaffinity(0))
    r = run_runner(runner_binary, "--target", camera_dir, "--mode", "base", "--warmup", "0",
                   "--frames", "1", "--threads", str(len(have) + 2),
                   "--placement", f"detect={have[0]}:1",
                   "--placement", "landmarks=100-103:8", "--placement", "seg=0-1023:1")
    assert r.returncode == 0, r.stderr
    assert "load-time value" not in r.stderr  # ncnn took the per-net threads at load
    pl = parse_telemetry(r.stdout, "placement").summary["placement"]
    assert pl["threads_requested"] == len(have) + 2 and pl["threads"] == len(have)
    assert pl["threads_clamped"] is True
    det, lm, seg = (pl["nets"][k] for k in ("detect", "landmarks", "seg"))
    assert (det["threads"], det["cpus"], det["clamped"]) == (1, str(have[0]), False)
    # CPUs this host lacks: all of ours, threads no more than those
    assert lm["threads"] == len(have) and lm["clamped"] and lm["requested"] == "100-103:8"
    assert seg["threads"] == 1 and seg["clamped"]
    assert pl["stages"]["detect"] == det and pl["stages"]["landmarks"] == lm
    assert pl["stages"]["mask"] == seg and pl["stages"]["blend"]["threads"] == len(have)
    bad = run_runner(runner_binary, "--target", camera_dir, "--frames", "1",
                     "--placement", "mesh=0:1")
    assert bad.returncode == 2 and "--placement" in bad.stderr


def test_video_input_set_runs_on_the_host_build(runner_binary, tmp_path):
    """`[run] input = "video"` (linux profiles): the lab's frames as a Motion-JPEG clip
    (harness.inputs.video) that the host build's video plugin decodes."""
    clip = next(iter(video_clip({TARGET.name: TARGET}, tmp_path).values()))
    r = run_runner(runner_binary, "--target", clip, "--warmup", "0", "--frames", str(FRAMES + 1))
    assert r.returncode == 0, r.stderr
    tel = parse_telemetry(r.stdout, "video")
    assert all(f["faces"] == 1 and f["stage_ns"]["convert"] == 0 for f in tel.frames)
    assert [f["source_frame"] for f in tel.frames][-2:] == [FRAMES - 1, 0]  # looped
