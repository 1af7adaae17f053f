"""swap_runner (runner/): CLI errors, telemetry schema, pass-through, outputs, landmark
agreement with the Python reference, thermal mode switches. (The arm64 phone build vs
this x86_64 build: tests/test_phone_build.py.)

Real binary (built once per session through runner/build.py, cached) and real models.
"""
from __future__ import annotations

import importlib.util
import json
import os
import pathlib
import shutil
import subprocess

import cv2
import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
TEST_IMAGES = MODELS / "test_images"
SCHEMA = "swaplab.telemetry/2"
STAGES = ("decode", "convert", "enhance", "detect", "landmarks", "align", "warp", "color", "mask",
          "blend", "total")


def _build_module():
    spec = importlib.util.spec_from_file_location("swaplab_runner_build", ROOT / "runner" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="session")
def runner_bin() -> pathlib.Path:
    return _build_module().build_runner("x86_64", progress=lambda m: print(m, flush=True))


@pytest.fixture(scope="session")
def images(tmp_path_factory) -> dict[str, pathlib.Path]:
    d = tmp_path_factory.mktemp("images")
    src = TEST_IMAGES / "grace_hopper.jpg"
    tgt = TEST_IMAGES / "astronaut.png"
    assert src.exists() and tgt.exists(), "models/test_images is missing (model pack)"
    # A frame without a face: smooth gradient plus a few shapes.
    noface = np.zeros((480, 640, 3), np.uint8)
    noface[:] = np.linspace(40, 200, 640, dtype=np.uint8)[None, :, None]
    cv2.rectangle(noface, (100, 100), (250, 300), (30, 160, 90), -1)
    cv2.circle(noface, (450, 240), 80, (200, 60, 60), -1)
    cv2.imwrite(str(d / "noface.png"), noface)
    corrupt = d / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg" * 10)
    video = d / "broken.mp4"
    video.write_bytes(b"\x00\x00\x00\x18ftypmp42 not a real video" * 20)
    # Grace Hopper at 112 px wide: 27 px between the outer eye corners
    img = cv2.imread(str(src))
    cv2.imwrite(str(d / "small_source.png"), cv2.resize(img, (112, 131), interpolation=cv2.INTER_AREA))
    seq = d / "seq"
    seq.mkdir()
    shutil.copy(tgt, seq / "a_000.png")
    shutil.copy(d / "noface.png", seq / "a_001.png")
    return {"source": src, "target": tgt, "noface": d / "noface.png", "corrupt": corrupt,
            "video": video, "seq": seq, "small_source": d / "small_source.png"}


def run(binary, *args, env=None, cwd=None, timeout=300):
    cmd = [str(binary), *map(str, args)]
    e = dict(os.environ)
    e.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if env:
        e.update(env)
    return subprocess.run(cmd, capture_output=True, text=True, env=e, cwd=cwd, timeout=timeout, check=False)


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------- CLI errors ----

def _corrupt_models(tmp_path) -> pathlib.Path:
    d = tmp_path / "models"
    shutil.copytree(MODELS, d, ignore=shutil.ignore_patterns("test_images", "*.py"))
    b = d / "face_landmark_fp16.bin"
    data = bytearray(b.read_bytes())
    data[len(data) // 2] ^= 0xFF
    b.write_bytes(bytes(data))
    return d


@pytest.mark.parametrize("case", ["missing_models", "corrupt_model", "unreadable_source",
                                  "unreadable_target", "no_face_source", "small_face_source",
                                  "video_wont_open",
                                  "bad_flag_value", "unknown_flag", "missing_required",
                                  "bad_mode", "bad_affinity"])
def test_cli_errors(runner_bin, images, tmp_path, case):
    base = ["--models", MODELS, "--source", images["source"], "--target", images["target"],
            "--warmup", "0", "--frames", "1", "--telemetry", tmp_path / "t.jsonl"]

    def with_(flag, value):
        a = list(base)
        a[a.index(flag) + 1] = value
        return a

    expect = {
        "missing_models": (with_("--models", tmp_path / "nope"), 4, "manifest.json"),
        "corrupt_model": (with_("--models", _corrupt_models(tmp_path) if case == "corrupt_model" else ""), 4,
                          "face_landmark_fp16.bin"),
        "unreadable_source": (with_("--source", images["corrupt"]), 3, "corrupt.jpg"),
        "unreadable_target": (with_("--target", images["corrupt"]), 3, "corrupt.jpg"),
        "no_face_source": (with_("--source", images["noface"]), 3, "no face"),
        "small_face_source": (with_("--source", images["small_source"]), 3,
                              "minimum 40 px"),
        "video_wont_open": (with_("--target", images["video"]), 3, "broken.mp4"),
        "bad_flag_value": (base + ["--frames", "many"], 2, "--frames"),
        "unknown_flag": (base + ["--bogus", "1"], 2, "--bogus"),
        "missing_required": (base[2:], 2, "--models"),
        "bad_mode": (base + ["--mode", "huge"], 2, "--mode"),
        "bad_affinity": (base + ["--cpu-affinity", "x-y"], 2, "--cpu-affinity"),
    }
    args, code, needle = expect[case]
    r = run(runner_bin, *args)
    assert r.returncode == code, (r.returncode, r.stderr)
    err = r.stderr.strip().splitlines()
    assert len(err) == 1, f"expected one stderr line, got {err!r}"
    assert err[0].startswith("swap_runner: error: "), err[0]
    assert needle in err[0], err[0]


def test_version(runner_bin):
    r = run(runner_bin, "--version")
    assert r.returncode == 0, r.stderr
    b = json.loads(r.stdout)
    assert b["abi"] == "x86_64" and b["ncnn_version"] == "1.0.20261020"
    assert b["omp_wait_policy"] == "PASSIVE"


def test_omp_policy_defaults_to_passive(runner_bin):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "SWAPLAB_NO_REEXEC")}
    r = subprocess.run([str(runner_bin), "--version"], capture_output=True, text=True, env=env, check=False)
    assert json.loads(r.stdout)["omp_wait_policy"] == "PASSIVE"


# ---------------------------------------------------------- telemetry schema ----

def _check_frame(f: dict):
    assert f["schema"] == SCHEMA and f["type"] == "frame"
    for k, t in (("index", int), ("warmup", bool), ("source_frame", int), ("faces", int),
                 ("mode", str), ("enhanced", bool), ("detected", bool), ("rss_kb", int)):
        assert isinstance(f[k], t), (k, f[k])
    assert set(f["stage_ns"]) == set(STAGES) | {"transfer"}  # transfer: Vulkan copies (schema 2)
    assert all(isinstance(v, int) and v >= 0 for v in f["stage_ns"].values())
    parts = sum(v for k, v in f["stage_ns"].items() if k != "total")
    assert parts <= f["stage_ns"]["total"]
    if f["faces"] > 0:
        assert isinstance(f["de_before"], float) and isinstance(f["de_after"], float)
        assert isinstance(f["tone_compensated"], bool)
        if f["tone_compensated"]:
            assert f["de_after"] < f["de_before"]
    else:
        assert f["de_before"] is None and f["de_after"] is None
        assert all(f["stage_ns"][s] == 0 for s in ("align", "warp", "color", "mask", "blend"))
    assert f["temp_c"] is None or isinstance(f["temp_c"], (int, float))


@pytest.mark.parametrize("mode", ["tiny", "small", "base"])
def test_telemetry_schema(runner_bin, images, tmp_path, mode):
    tel = tmp_path / "t.jsonl"
    r = run(runner_bin, "--models", MODELS, "--source", images["source"], "--target", images["target"],
            "--mode", mode, "--warmup", "2", "--frames", "6", "--telemetry", tel)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    recs = lines(tel.read_text())
    frames = [x for x in recs if x["type"] == "frame"]
    assert len(frames) == 8 and recs[-1]["type"] == "summary"
    for i, f in enumerate(frames):
        _check_frame(f)
        assert f["index"] == i and f["warmup"] == (i < 2) and f["mode"] == mode
        assert f["faces"] == 1
    if mode == "tiny":  # detector every 5th frame, tracked in between
        assert [f["detected"] for f in frames] == [True, False, False, False, False, True, False, False]
    s = recs[-1]
    assert s["schema"] == SCHEMA
    b = s["build"]
    for k in ("compiler", "ncnn_version", "opencv_version", "abi", "isa", "threads", "omp_wait_policy", "build_type"):
        assert k in b, k
    assert b["threads"] == 1 and b["omp_wait_policy"] == "PASSIVE" and isinstance(b["isa"], list)
    # the host build: fixed ISA, so ncnn's kernels are exactly the compiled-in ones
    assert b["platform"] == "linux" and b["ncnn_runtime_cpu"] is False and b["ncnn_fp16"] is False
    assert b["ncnn_kernels"] == (["sse2", "avx", "fma", "avx2"] if "avx2" in b["isa"] else ["sse2"])
    assert s["mode"] == mode and s["blend"] == "poisson"
    assert s["frames"] == 6 and s["warmup_frames"] == 2 and s["frames_without_face"] == 0
    assert s["mode_switches"] == 0
    # every net on the CPU unless --backend says otherwise; the GPU instance is never created
    assert all(f["stage_ns"]["transfer"] == 0 for f in frames)
    assert set(s["backend"].values()) == {"cpu"} and s["vulkan"]["available"] is False
    assert not [x for x in recs if x["type"] == "backend"]  # only when --backend asks for a GPU
    assert s["model_load_ms"] > 0 and s["first_frame_ms"] > 0 and s["peak_rss_kb"] > 0
    # the harness's own validator accepts it too
    from harness.runner.telemetry import parse_telemetry
    t = parse_telemetry(tel.read_text(), source="test")
    assert len(t.measured) == 6


def test_jpeg_output(runner_bin, images, tmp_path):
    out = tmp_path / "out"
    r = run(runner_bin, "--models", MODELS, "--source", images["source"], "--target", images["target"],
            "--warmup", "1", "--frames", "4", "--out", out, "--save-every", "2", "--telemetry", tmp_path / "t.jsonl")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["out_0.jpg", "out_2.jpg", "out_4.jpg"]
    assert cv2.imread(str(out / "out_4.jpg")).shape == cv2.imread(str(images["target"])).shape


def test_low_light_enhance_and_affinity(runner_bin, images, tmp_path):
    dark = tmp_path / "dark.png"
    img = cv2.imread(str(images["target"]))
    cv2.imwrite(str(dark), (img.astype(np.float32) * 0.3).astype(np.uint8))
    common = ["--models", MODELS, "--source", images["source"], "--target", dark, "--warmup", "0",
              "--frames", "1", "--cpu-affinity", "0"]
    recs = lines(run(runner_bin, *common).stdout)
    assert recs[0]["enhanced"] is True and recs[0]["faces"] == 1 and recs[0]["stage_ns"]["enhance"] > 0
    recs = lines(run(runner_bin, *common, "--enhance", "off").stdout)
    assert recs[0]["enhanced"] is False
    recs = lines(run(runner_bin, *common[:5], images["target"], *common[6:], "--enhance", "on").stdout)
    assert recs[0]["enhanced"] is True


def test_telemetry_to_stdout_and_opencv_blend(runner_bin, images):
    r = run(runner_bin, "--models", MODELS, "--source", images["source"], "--target", images["target"],
            "--warmup", "0", "--frames", "2", "--blend", "opencv")
    assert r.returncode == 0, r.stderr
    recs = lines(r.stdout)
    assert [x["type"] for x in recs] == ["frame", "frame", "summary"]
    assert recs[-1]["blend"] == "opencv"


# ------------------------------------------------- no face, outputs, quality ----

def test_no_face_frame_passes_through(runner_bin, images, tmp_path):
    out = tmp_path / "out"
    tel = tmp_path / "t.jsonl"
    r = run(runner_bin, "--models", MODELS, "--source", images["source"], "--target", images["seq"],
            "--warmup", "0", "--frames", "4", "--out", out, "--save-every", "1", "--out-format", "png",
            "--telemetry", tel)
    assert r.returncode == 0, r.stderr
    recs = lines(tel.read_text())
    frames = [x for x in recs if x["type"] == "frame"]
    assert [f["faces"] for f in frames] == [1, 0, 1, 0]
    assert [f["source_frame"] for f in frames] == [0, 1, 0, 1]
    for f in frames:
        _check_frame(f)
    assert recs[-1]["frames_without_face"] == 2
    # with the Retinex pass forced on, a frame without a face is not reported as enhanced:
    # its output is the input, untouched
    r = run(runner_bin, "--models", MODELS, "--source", images["source"], "--target", images["seq"],
            "--warmup", "0", "--frames", "2", "--enhance", "on", "--telemetry", "-")
    assert r.returncode == 0, r.stderr
    on = [x for x in lines(r.stdout) if x["type"] == "frame"]
    assert [(f["faces"], f["enhanced"]) for f in on] == [(1, True), (0, False)]
    noface = cv2.imread(str(images["noface"]))
    for i in (1, 3):
        o = cv2.imread(str(out / f"out_{i}.png"))
        assert np.array_equal(o, noface), f"frame {i} without a face was modified"
    swapped = cv2.imread(str(out / "out_0.png"))
    assert not np.array_equal(swapped, cv2.imread(str(images["target"])))


@pytest.mark.parametrize("blend", ["poisson", "opencv"])
def test_output_frame_saved_and_seamless(runner_bin, images, tmp_path, blend):
    out = tmp_path / "out"
    dump = tmp_path / "lm.jsonl"
    r = run(runner_bin, "--models", MODELS, "--source", images["source"], "--target", images["target"],
            "--warmup", "0", "--frames", "2", "--out", out, "--save-every", "1", "--blend", blend,
            "--dump-landmarks", dump, "--telemetry", tmp_path / "t.jsonl", "--out-format", "png")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["out_0.png", "out_1.png"]
    o = cv2.imread(str(out / "out_0.png"))
    tgt = cv2.imread(str(images["target"]))
    assert o is not None and o.shape == tgt.shape
    frame = next(x for x in lines(dump.read_text()) if x["type"] == "frame")
    pts = np.asarray(frame["lm68"], np.float32)
    hull = cv2.convexHull(pts.astype(np.int32))
    inside = np.zeros(tgt.shape[:2], np.uint8)
    cv2.fillConvexPoly(inside, hull, 255)
    size = int(np.sqrt(inside.sum() / 255))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * (size // 10) + 1,) * 2)
    core = cv2.erode(inside, k)
    far = cv2.dilate(inside, k) == 0
    diff = np.abs(o.astype(np.int16) - tgt.astype(np.int16)).mean(axis=2)
    assert diff[core > 0].mean() > 8, "the face was not swapped"
    assert diff[far].max() == 0, "pixels away from the face changed"
    # No seam: along the hull boundary the output's gradient is not stronger than the
    # target's own (a seam or colour patch shows up as an edge that the target lacks).
    ring = cv2.dilate(inside, np.ones((5, 5), np.uint8)) - cv2.erode(inside, np.ones((5, 5), np.uint8))

    def grad(img):
        g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
        return np.hypot(cv2.Sobel(g, cv2.CV_32F, 1, 0), cv2.Sobel(g, cv2.CV_32F, 0, 1))

    ratio = grad(o)[ring > 0].mean() / max(1e-6, grad(tgt)[ring > 0].mean())
    assert ratio < 1.3, f"edge energy along the face boundary {ratio:.2f}x the target's (seam)"


# ------------------------------------------------------ landmark agreement ----

def _runner_landmarks(binary, images, target, mode, tmp_path):
    dump = tmp_path / f"lm-{mode}-{pathlib.Path(target).stem}.jsonl"
    r = run(binary, "--models", MODELS, "--source", images["source"], "--target", target, "--mode", mode,
            "--warmup", "0", "--frames", "1", "--dump-landmarks", dump, "--telemetry", tmp_path / "t.jsonl",
            timeout=900)
    assert r.returncode == 0, r.stderr
    recs = lines(dump.read_text())
    return next(x for x in recs if x["type"] == "frame"), next(x for x in recs if x["type"] == "source")


def _crop_error(mesh_a, mesh_b, roi_width) -> float:
    """Mean point distance in pixels of the 192x192 mesh input crop."""
    a = np.asarray(mesh_a, np.float64)[:, :2]
    b = np.asarray(mesh_b, np.float64)[:, :2]
    return float(np.linalg.norm(a - b, axis=1).mean() * 192.0 / roi_width)


@pytest.mark.parametrize("mode", ["small", "base"])
@pytest.mark.parametrize("image", ["astronaut.png", "grace_hopper.jpg"])
def test_landmarks_match_reference(runner_bin, images, tmp_path, mode, image):
    from harness.modelpack.reference import Reference

    target = TEST_IMAGES / image
    frame, _ = _runner_landmarks(runner_bin, images, target, mode, tmp_path)
    ref = Reference(mode=mode)
    rgb = cv2.cvtColor(cv2.imread(str(target)), cv2.COLOR_BGR2RGB)
    dets = ref.detect_faces(rgb)
    assert dets, "reference found no face"
    d = frame["detection"]
    assert abs(d["score"] - dets[0].score) < 1e-3
    assert np.abs(np.asarray(d["box"]) - dets[0].box).max() < 0.5
    mesh, pts68, presence = ref.face_landmarks(rgb, dets[0])
    err = _crop_error(frame["mesh"], mesh, frame["roi"]["width"])
    err68 = _crop_error(frame["lm68"], pts68, frame["roi"]["width"])
    print(f"{image} {mode}: mesh error {err:.4f} px, 68-point error {err68:.4f} px (crop scale)")
    assert err < 0.5 and err68 < 0.5
    assert abs(frame["presence"] - presence) < 0.01


# ------------------------------------------------------------- auto mode ----

def test_auto_mode_thermal_switches(runner_bin, images, tmp_path):
    temp = tmp_path / "temp"
    temp.write_text("80000\n")  # millidegrees, like a thermal zone: 80 C
    proc = subprocess.Popen(
        [str(runner_bin), "--models", MODELS, "--source", images["source"], "--target", images["target"],
         "--mode", "auto", "--warmup", "0", "--frames", "60", "--thermal-source", temp,
         "--thermal-check-every", "1", "--thermal-limit-c", "70", "--thermal-hysteresis-c", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    recs = []
    cooled = False
    for line in proc.stdout:
        rec = json.loads(line)
        recs.append(rec)
        if rec["type"] == "mode_switch" and rec["to"] == "tiny" and not cooled:
            temp.write_text("60.0\n")  # plain degrees: below limit - hysteresis
            cooled = True
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    sw = [(x["from"], x["to"], x["reason"]) for x in recs if x["type"] == "mode_switch"]
    assert sw == [("base", "small", "above_limit"), ("small", "tiny", "above_limit"),
                  ("tiny", "small", "below_limit_minus_hysteresis"),
                  ("small", "base", "below_limit_minus_hysteresis")], sw
    for x in recs:
        if x["type"] == "mode_switch":
            assert x["schema"] == SCHEMA and isinstance(x["temp_c"], float)
    frames = [x for x in recs if x["type"] == "frame"]
    assert frames[0]["mode"] == "small" and frames[0]["temp_c"] == 80.0
    assert frames[-1]["mode"] == "base"
    assert recs[-1]["mode_switches"] == 4
