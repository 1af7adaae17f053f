"""swap_runner's GPU path (--backend, runner/src/backend.*) on a real Vulkan driver: Mesa's
lavapipe (Debian mesa-vulkan-drivers, Vulkan on the CPU), and without any driver.

Real binary (the host build carries both backends), real models, real Vulkan loader.
"""
from __future__ import annotations

import json
import os
import pathlib

import numpy as np
import pytest
from test_runner import MODELS, images, lines, run, runner_bin  # noqa: F401 - fixtures

from harness.runner.telemetry import parse_telemetry

LAVAPIPE_ICD = pathlib.Path("/usr/share/vulkan/icd.d/lvp_icd.x86_64.json")

# GPU (fp16 storage and arithmetic) vs CPU (fp32) landmarks, in pixels of the 192x192 mesh
# input crop. Why this bound (runner/README.md, "GPU vs CPU agreement"): fp16 keeps 11
# significant bits, a relative rounding error of up to 2^-11 = 0.05% per stored value or
# operation. The mesh outputs crop pixels (0-192): at 64-128 px the fp16 step is 1/16 px, so
# the final fp16 store alone moves a point by up to 0.03 px, and ~45 conv layers of fp16
# storage and arithmetic compound relative errors of that size in the activations, ~0.1%
# of the 192 px crop = 0.2 px. Measured on lavapipe (fp16 storage and arithmetic on):
# small 0.125 px mean / 0.48 px max, base 0.138 / 0.55 px. The bounds leave 2x margin on a
# deterministic computation (fixed inputs, no atomics) while a wrong kernel, layout or
# pre-processing moves points by pixels; the CPU-vs-reference budget is 0.5 px mean.
MEAN_TOL_PX = 0.25
MAX_TOL_PX = 1.0


def _lavapipe_env() -> dict:
    if not LAVAPIPE_ICD.exists():
        pytest.skip(f"no lavapipe ICD at {LAVAPIPE_ICD} (Debian: mesa-vulkan-drivers)")
    return {"VK_ICD_FILENAMES": str(LAVAPIPE_ICD), "VK_DRIVER_FILES": str(LAVAPIPE_ICD)}


def _swap(binary, images, tmp_path, name, *args, env=None, frames=3, mode="small"):  # noqa: F811
    tel = tmp_path / f"{name}.jsonl"
    dump = tmp_path / f"{name}-lm.jsonl"
    r = run(binary, "--models", MODELS, "--source", images["source"], "--target", images["target"],
            "--mode", mode, "--warmup", "1", "--frames", str(frames), "--telemetry", tel,
            "--dump-landmarks", dump, *args, env=env, timeout=900)
    assert r.returncode == 0, r.stderr
    return lines(tel.read_text()), lines(dump.read_text()), r


def _crop_errors(a: dict, b: dict) -> np.ndarray:
    pa = np.asarray(a["mesh"], np.float64)[:, :2]
    pb = np.asarray(b["mesh"], np.float64)[:, :2]
    return np.linalg.norm(pa - pb, axis=1) * 192.0 / a["roi"]["width"]


def test_version_says_vulkan_built(runner_bin):  # noqa: F811
    r = run(runner_bin, "--version")
    assert r.returncode == 0 and json.loads(r.stdout)["vulkan"] == "built"


@pytest.mark.parametrize("value, needle", [
    ("gpu", "expected cpu|vulkan|auto, got 'gpu'"),
    ("detect=cpu,mesh=vulkan", "unknown net 'mesh'"),
    ("landmarks=fast", "landmarks: expected cpu|vulkan|auto"),
    ("detect", "expected cpu|vulkan|auto, got 'detect'"),
    ("detect=cpu,", "expected NET=cpu|vulkan|auto"),
])
def test_backend_flag_errors(runner_bin, images, value, needle):  # noqa: F811
    r = run(runner_bin, "--models", MODELS, "--source", images["source"], "--target", images["target"],
            "--backend", value)
    assert r.returncode == 2
    assert r.stderr.startswith("swap_runner: error: --backend") and needle in r.stderr, r.stderr


@pytest.mark.parametrize("mode", ["small", "base"])
def test_vulkan_on_lavapipe_matches_cpu(runner_bin, images, tmp_path, mode):  # noqa: F811
    env = _lavapipe_env()
    _, cpu_lm, _ = _swap(runner_bin, images, tmp_path, "cpu", "--backend", "cpu", env=env, mode=mode)
    gpu_tel, gpu_lm, _ = _swap(runner_bin, images, tmp_path, "gpu", "--backend", "vulkan", env=env, mode=mode)

    backends = [x for x in gpu_tel if x["type"] == "backend"]
    assert backends and all(b["used"] == "vulkan" and not b["fallback"] for b in backends), backends
    s = gpu_tel[-1]
    assert set(s["backend"].values()) == {"vulkan"}
    vk = s["vulkan"]
    assert vk["available"] and "llvmpipe" in vk["device"] and vk["device_type"] == "cpu", vk
    assert vk["api_version"].startswith("1.") and vk["driver"], vk
    assert vk["heaps"] and all(h["size_mb"] > 0 for h in vk["heaps"]), vk
    frames = [x for x in gpu_tel if x["type"] == "frame"]
    # host<->device copies are their own stage, inside total, apart from the nets' stages
    assert all(f["stage_ns"]["transfer"] > 0 for f in frames)
    assert all(f["stage_ns"]["transfer"] + f["stage_ns"]["detect"] + f["stage_ns"]["landmarks"]
               <= f["stage_ns"]["total"] for f in frames)
    assert parse_telemetry("\n".join(json.dumps(x) for x in gpu_tel)).gpu_nets()

    pairs = [(a, b) for a, b in zip(cpu_lm, gpu_lm) if "mesh" in a and "mesh" in b]
    assert len(pairs) == len(cpu_lm) == len(gpu_lm) == 5, "every frame and the source face"
    errs = np.concatenate([_crop_errors(a, b) for a, b in pairs])
    print(f"GPU vs CPU mesh ({mode}): mean {errs.mean():.4f} px, p99 {np.percentile(errs, 99):.4f} px, "
          f"max {errs.max():.4f} px at crop scale, fp16 storage {vk['fp16_storage']}, "
          f"arithmetic {vk['fp16_arithmetic']}")
    assert errs.mean() < MEAN_TOL_PX and errs.max() < MAX_TOL_PX
    assert errs.max() > 0, "identical to the CPU: did the nets run on the GPU at all?"


@pytest.mark.parametrize("icd", ["missing", "empty"])
def test_no_vulkan_driver_falls_back_to_cpu(runner_bin, images, tmp_path, icd):  # noqa: F811
    path = tmp_path / "no-driver.json"
    if icd == "empty":
        path.write_text("")
    env = {"VK_ICD_FILENAMES": str(path), "VK_DRIVER_FILES": str(path)}
    tel, lm, _ = _swap(runner_bin, images, tmp_path, "nodrv",
                       "--backend", "detect=cpu,landmarks=vulkan", env=env)
    backends = {b["net"]: b for b in tel if b["type"] == "backend"}
    assert backends["detect"]["used"] == "cpu" and backends["detect"]["fallback"] is False
    lmk = backends["landmarks"]
    assert lmk["requested"] == "vulkan" and lmk["used"] == "cpu" and lmk["fallback"] is True
    assert "no Vulkan" in lmk["reason"], lmk
    s = tel[-1]
    assert s["type"] == "summary" and set(s["backend"].values()) == {"cpu"}
    assert s["vulkan"]["available"] is False and s["vulkan"]["built"] is True
    assert all(f["stage_ns"]["transfer"] == 0 for f in tel if f["type"] == "frame")
    assert sum(1 for x in lm if "mesh" in x) == 5  # source + 4 frames: the swap ran, on the CPU


def test_auto_without_driver_is_not_a_fallback(runner_bin, images, tmp_path):  # noqa: F811
    env = {"VK_ICD_FILENAMES": str(tmp_path / "none.json"), "VK_DRIVER_FILES": str(tmp_path / "none.json")}
    tel, _, _ = _swap(runner_bin, images, tmp_path, "auto", "--backend", "auto", env=env, frames=1)
    backends = [x for x in tel if x["type"] == "backend"]
    assert {(b["requested"], b["used"], b["fallback"]) for b in backends} == {("auto", "cpu", False)}


def test_mixed_backends_per_net(runner_bin, images, tmp_path):  # noqa: F811
    env = _lavapipe_env()
    tel, _, _ = _swap(runner_bin, images, tmp_path, "mixed", "--backend", "detect=cpu,landmarks=vulkan,seg=vulkan",
                      env=env, mode="base", frames=2)
    used = {b["net"]: b["used"] for b in tel if b["type"] == "backend"}
    assert used == {"detect": "cpu", "landmarks": "vulkan", "seg": "vulkan"}
    s = tel[-1]["backend"]
    assert s == {"face_detection_full_range": "cpu", "face_landmark_fp32": "vulkan", "selfie_segmentation": "vulkan"}


def test_without_vulkan_loader(runner_bin, images, tmp_path):  # noqa: F811
    """No loader and no driver at all: libvulkan.so.1 and Mesa's ICDs hidden in a private
    mount namespace (a machine without Vulkan packages)."""
    import shutil
    import subprocess
    if not shutil.which("unshare") or os.geteuid() != 0:
        pytest.skip("needs root and unshare(1) to hide the Vulkan loader")
    libdir = pathlib.Path("/usr/lib/x86_64-linux-gnu")
    hidden = [str(p) for p in libdir.glob("libvulkan*.so*")]
    if not hidden:
        pytest.skip("no Vulkan loader installed to hide")
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    tel = tmp_path / "t.jsonl"
    binds = " && ".join(f"mount --bind {empty} {p}" for p in hidden)
    cmd = (f"{binds} && exec {runner_bin} --models {MODELS} --source {images['source']} "
           f"--target {images['target']} --warmup 0 --frames 1 --backend vulkan --telemetry {tel}")
    r = subprocess.run(["unshare", "-m", "sh", "-c", cmd], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}, check=False)
    if r.returncode != 0 and "mount" in r.stderr and not tel.exists():
        pytest.skip(f"cannot hide the loader here: {r.stderr.strip()[:200]}")
    assert r.returncode == 0, r.stderr
    recs = lines(tel.read_text())
    backends = [x for x in recs if x["type"] == "backend"]
    assert backends and all(b["used"] == "cpu" and b["fallback"] for b in backends)
    assert "no Vulkan" in backends[0]["reason"] or "no Vulkan device" in backends[0]["reason"]
    assert recs[-1]["vulkan"]["available"] is False


def test_every_ncnn_build_keeps_every_layer_the_models_use(tmp_path):
    """buildlib/ncnn_layers.py: every ncnn build (host with Vulkan, both Android ABIs, the
    arm64 glibc one) compiles only LAYERS_USED. Every layer type of the model pack must be
    in it (a new model with a new layer would otherwise fail to load), and a new ncnn
    version with a changed layer list is refused before building."""
    import importlib.util  # here: runner/build.py is a script, not a package
    spec = importlib.util.spec_from_file_location("swaplab_runner_build",
                                                  MODELS.parent / "runner" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    nl = build.ncnn_layers
    used = set()
    for param in MODELS.glob("*.param"):
        used |= {line.split()[0] for line in param.read_text().splitlines()[2:] if line.strip()}
    assert used <= set(nl.LAYERS_USED), sorted(used - set(nl.LAYERS_USED))
    left_out = {f"-DWITH_LAYER_{n.lower()}=OFF" for n in nl.ALL_LAYERS if n not in nl.LAYERS_USED}
    assert len(left_out) > 60
    for abi, platform in (("x86_64", "linux"), ("x86_64", "android"),
                          ("arm64-v8a", "android"), ("arm64-v8a", "linux")):
        flags = build.ncnn_flags(abi, platform)
        assert left_out <= set(flags), (abi, platform)
        assert not any(f"WITH_LAYER_{n.lower()}=OFF" in f for f in flags for n in nl.LAYERS_USED)
    host = build.ncnn_flags("x86_64", "linux")
    assert "-DNCNN_VULKAN=ON" in host and "-DNCNN_SIMPLEVK=ON" in host
    # phones: the NDK route (bionic, dlopen works) carries the GPU path; static musl cannot
    for abi in ("arm64-v8a", "x86_64"):
        ndk = build.ncnn_flags(abi, "android", "ndk")
        assert "-DNCNN_VULKAN=ON" in ndk and "-DNCNN_VULKAN=OFF" not in ndk, abi
        assert left_out <= set(ndk), abi
        assert "-DNCNN_VULKAN=OFF" in build.ncnn_flags(abi, "android", "zig"), abi
    (tmp_path / "src").mkdir()
    text = "".join(f"ncnn_add_layer({n})\n" for n in nl.ALL_LAYERS)
    (tmp_path / "src" / "CMakeLists.txt").write_text(text)
    assert nl.check_layer_list(tmp_path) is None
    (tmp_path / "src" / "CMakeLists.txt").write_text(text + "ncnn_add_layer(NewLayer)\n")
    assert "NewLayer" in nl.check_layer_list(tmp_path)


def test_thermal_fallback_turns_the_gpu_off_and_back_on(runner_bin, images, tmp_path):  # noqa: F811
    """The ladder's GPU rung on a real Vulkan driver: hot -> every net moves to the CPU
    (frames after it have no host<->device transfers), cool -> back to Vulkan (transfers
    again), each switch a telemetry line, the summary's backend says where nets ended."""
    from test_camera_input import scripted_sensor  # the FIFO thermal zone lives there

    env = _lavapipe_env()
    temps = [50.0, 80.0, 40.0, 40.0]  # constructor read, then one read per frame
    feeder = scripted_sensor(tmp_path / "zone", temps)
    r = run(runner_bin, "--models", MODELS, "--source", images["source"], "--target",
            images["target"], "--mode", "tiny", "--warmup", "0", "--frames", "3",
            "--backend", "vulkan", "--thermal-source", tmp_path / "zone",
            "--thermal-check-every", "1", "--thermal-limit-c", "70",
            "--thermal-hysteresis-c", "5", "--thermal-fallback", "gpu,mode",
            env=env, timeout=900)
    feeder.join(timeout=5)
    assert r.returncode == 0, r.stderr
    tel = parse_telemetry(r.stdout, "gpu-ladder")
    steps = [(s["index"], s["rung"], s["from"], s["to"], s["skipped"])
             for s in tel.fallback_switches]
    assert steps == [(0, "gpu", "gpu", "cpu", False), (1, "gpu", "cpu", "gpu", False)], steps
    transfer = [f["stage_ns"]["transfer"] for f in tel.frames]
    assert transfer[0] == 0 and all(t > 0 for t in transfer[1:]), transfer
    assert set(tel.summary["backend"].values()) == {"vulkan"}, tel.summary["backend"]
