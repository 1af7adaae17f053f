"""Android builds of swap_runner (issue 14, part 1): ELF files that need nothing a phone
lacks, and the arm64 phone build doing a real swap with this host's arm64 libraries hidden.

Real builds (runner/build.py --platform android: zig/musl, static OpenCV, ncnn with run-time
CPU dispatch), real models and test images, qemu-aarch64-static for arm64.

Hiding the host's arm64 libraries: a private mount namespace (`unshare -m`, root) with an
empty folder bind-mounted over /usr/lib/aarch64-linux-gnu (Debian's /lib/ld-linux-aarch64.so.1
points into it and dangles), /usr/aarch64-linux-gnu (the cross toolchain's glibc) and
/etc/qemu-binfmt (qemu's library prefix), if present. The glibc arm64 program is refused
there; the phone build runs.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from test_runner import MODELS, TEST_IMAGES, _build_module, _crop_error

from harness.runner.binary_check import read_elf

QEMU = shutil.which("qemu-aarch64-static")
ANDROID_ABIS = ("arm64-v8a", "x86_64")
MACHINES = {"arm64-v8a": "EM_AARCH64", "x86_64": "EM_X86_64"}

# Tolerance between the phone build and the host build: both run the same fp32 graph (the
# runner keeps ncnn's fp16 storage/arithmetic off, so the asimdhp kernels take their fp32
# paths) and the same OpenCV 4.6.0 code; kernels differ in summation order and fused
# multiply-add (NEON vs AVX2/FMA, clang vs gcc), i.e. float rounding of ~1e-6 relative per
# layer, < 0.01 px at crop scale through the mesh (measured: 0.00003 px mean under qemu
# cortex-a72 and max; output frames 75 dB PSNR apart). 0.05 px is 5x that bound and 10x
# below the 0.5 px budget of runner vs reference: it catches a wrong kernel, wrong
# pre-processing or layout bug without flaking on rounding.
ARM_TOLERANCE_PX = 0.05
#: ISA paths ncnn's dispatch must pick (build info "ncnn_kernels") per emulated CPU
QEMU_CPUS = {"cortex-a72": ["neon"],                       # ARMv8.0: NEON only
             "max": ["neon", "asimdhp", "asimddp"]}        # ARMv8.2+: fp16 and dotprod

HIDE_ARM64 = r"""
set -e
empty=$(mktemp -d)
for d in /usr/lib/aarch64-linux-gnu /usr/aarch64-linux-gnu /etc/qemu-binfmt; do
  if [ -d "$d" ]; then mount --bind "$empty" "$d"; fi
done
if [ -e /lib/ld-linux-aarch64.so.1 ]; then echo "ld-linux-aarch64.so.1 still visible" >&2; exit 99; fi
exec "$@"
"""


class AndroidBuilds(dict):
    """abi -> the Android build, built on first use (each test waits only for its ABI)."""

    def __missing__(self, abi: str) -> Path:
        build = _build_module()
        try:
            self[abi] = build.build_runner(abi, progress=lambda m: print(m, flush=True),
                                           platform="android")
        except build.BuildError as e:
            if "ziglang" in str(e):
                pytest.skip(str(e))
            raise
        return self[abi]


@pytest.fixture(scope="session")
def android_builds() -> AndroidBuilds:
    return AndroidBuilds()


@pytest.fixture(scope="session")
def host_build() -> Path:
    return _build_module().build_runner("x86_64", progress=lambda m: print(m, flush=True),
                                        platform="linux")


@pytest.fixture(scope="session")
def hidden_arm64():
    """argv prefix that runs a command in a mount namespace without the host's arm64 libs."""
    if QEMU is None:
        pytest.skip("needs qemu-user-static (scripts/bootstrap installs it)")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"unshare -m needs root: {probe.stderr.decode().strip()}")
    return ["unshare", "-m", "--", "sh", "-c", HIDE_ARM64, "sh"]


@pytest.mark.parametrize("abi", ANDROID_ABIS)
def test_android_build_is_static(android_builds, abi):
    """readelf: no program interpreter, no NEEDED; the ELF machine is the ABI's."""
    path = android_builds[abi]
    r = subprocess.run(["readelf", "-lWd", str(path)], capture_output=True, text=True, check=True)
    assert "Requesting program interpreter" not in r.stdout
    assert "(NEEDED)" not in r.stdout
    facts = read_elf(path)
    assert (facts.machine, facts.interpreter, facts.needed) == (MACHINES[abi], None, ())


def test_glibc_arm64_program_refused_without_host_libs(hidden_arm64, tmp_path):
    """A glibc arm64 program (what the old arm64 build was) starts under qemu only while the
    host's arm64 glibc is visible; in the namespace it fails as on a phone."""
    cc = shutil.which("aarch64-linux-gnu-gcc")
    if cc is None:
        pytest.skip("needs aarch64-linux-gnu-gcc")
    src = tmp_path / "hello.c"
    src.write_text('#include <stdio.h>\nint main(void) { puts("hello"); return 0; }\n')
    exe = tmp_path / "hello"
    subprocess.run([cc, "-O1", "-o", str(exe), str(src)], check=True)
    assert read_elf(exe).interpreter == "/lib/ld-linux-aarch64.so.1"
    seen = subprocess.run([QEMU, str(exe)], capture_output=True, text=True, check=False)
    assert seen.returncode == 0 and seen.stdout == "hello\n", seen.stderr
    hidden = subprocess.run([*hidden_arm64, QEMU, str(exe)], capture_output=True, text=True,
                            check=False)
    assert hidden.returncode != 0
    assert "/lib/ld-linux-aarch64.so.1" in hidden.stderr
    assert "No such file or directory" in hidden.stderr


def _swap(prefix: list[str], binary: Path, out: Path) -> tuple[dict, dict]:
    """One real swap of astronaut.png (PNG: identical pixels for every build); returns the
    landmark frame record and the summary line."""
    out.mkdir()
    dump = out / "landmarks.jsonl"
    r = subprocess.run(
        [*prefix, str(binary), "--models", str(MODELS), "--source", str(TEST_IMAGES / "grace_hopper.jpg"),
         "--target", str(TEST_IMAGES / "astronaut.png"), "--mode", "small", "--warmup", "0",
         "--frames", "1", "--dump-landmarks", str(dump), "--out", str(out), "--save-every", "1",
         "--out-format", "png", "--telemetry", str(out / "t.jsonl")],
        capture_output=True, text=True, timeout=900, check=False,
        env={"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in dump.read_text().splitlines()]
    summary = json.loads((out / "t.jsonl").read_text().splitlines()[-1])
    return next(x for x in recs if x["type"] == "frame"), summary


def _psnr_db(a: Path, b: Path) -> float:
    import cv2

    x, y = cv2.imread(str(a)).astype(np.float64), cv2.imread(str(b)).astype(np.float64)
    mse = float(((x - y) ** 2).mean())
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


@pytest.mark.parametrize("cpu", sorted(QEMU_CPUS))
def test_arm64_phone_build_swaps_without_host_libs(android_builds, hidden_arm64, host_build,
                                                   tmp_path, cpu):
    """The arm64 phone build does a real swap under qemu with the host's arm64 libraries
    hidden; ncnn's run-time dispatch picks the fp16/dotprod kernels exactly on an ARMv8.2
    CPU; landmarks agree with the host (x86_64 glibc) build within ARM_TOLERANCE_PX."""
    host, _ = _swap([], host_build, tmp_path / "host")
    phone, summary = _swap([*hidden_arm64, QEMU, "-cpu", cpu], android_builds["arm64-v8a"],
                           tmp_path / "phone")
    build = summary["build"]
    assert build["platform"] == "android" and build["abi"] == "arm64-v8a"
    assert build["ncnn_runtime_cpu"] is True
    assert build["ncnn_kernels"] == QEMU_CPUS[cpu]
    err = _crop_error(phone["mesh"], host["mesh"], host["roi"]["width"])
    psnr = _psnr_db(tmp_path / "host" / "out_0.png", tmp_path / "phone" / "out_0.png")
    print(f"arm64 phone build (qemu {cpu}) vs host build: mesh {err:.5f} px (crop scale), "
          f"output frame PSNR {psnr:.1f} dB")
    assert err < ARM_TOLERANCE_PX
    assert abs(phone["detection"]["score"] - host["detection"]["score"]) < 1e-4
    assert psnr > 40.0


def test_x86_64_android_build_swaps(android_builds, host_build, tmp_path):
    """The emulator build runs natively here and agrees with the host build."""
    host, _ = _swap([], host_build, tmp_path / "host")
    emu, summary = _swap([], android_builds["x86_64"], tmp_path / "emu")
    build = summary["build"]
    assert build["platform"] == "android" and build["ncnn_kernels"][0] == "sse2"
    err = _crop_error(emu["mesh"], host["mesh"], host["roi"]["width"])
    print(f"x86_64 android build vs host build: mesh {err:.5f} px, kernels {build['ncnn_kernels']}")
    assert err < ARM_TOLERANCE_PX


def test_android_build_reports_vulkan_not_built(android_builds, tmp_path):
    """Phone builds are static musl: no dlopen, so no Vulkan loader (runner/README.md). A
    Vulkan request says so in the telemetry and the swap runs on the CPU, exit 0."""
    tel = tmp_path / "t.jsonl"
    r = subprocess.run(
        [str(android_builds["x86_64"]), "--models", str(MODELS), "--source",
         str(TEST_IMAGES / "grace_hopper.jpg"), "--target", str(TEST_IMAGES / "astronaut.png"),
         "--warmup", "0", "--frames", "1", "--backend", "vulkan", "--telemetry", str(tel)],
        capture_output=True, text=True, timeout=900, check=False,
        env={"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in tel.read_text().splitlines()]
    backends = [x for x in recs if x["type"] == "backend"]
    assert backends and all(b["used"] == "cpu" and b["fallback"] for b in backends)
    assert all(b["reason"].startswith("not built") for b in backends), backends
    assert recs[-1]["build"]["vulkan"] == "not built"
    assert recs[-1]["vulkan"] == {"built": False, "available": False,
                                  "reason": backends[0]["reason"]}


def test_harness_runs_phone_build_on_virtual_arm64_device(android_builds, tmp_path, sd6_profile):
    """prepare() picks the arm64 Android build for an arm64 virtual phone, passes the pre-run
    check, pushes it over adb (adbutils), and a swap pinned to device CPUs 4-7 runs there
    (qemu -cpu cortex-a76, an ARMv8.2 core: fp16 and dotprod kernels)."""
    if QEMU is None:
        pytest.skip("needs qemu-user-static")
    from harness.devices import DiscoveryOptions
    from harness.devices.android import device as android
    from harness.profiles import RunSettings
    from harness.runner import invoke as R
    from harness.virtual_device.testing import AdbLab

    source = TEST_IMAGES / "grace_hopper.jpg"
    target = TEST_IMAGES / "astronaut.png"
    settings = RunSettings(threads=2, cpu_list="4-7", warmup_frames=0, measured_frames=1,
                           timeout_s=900)
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device(sd6_profile, abi="arm64-v8a")
        dev = android.discover(DiscoveryOptions(adb_port=lab.port))[0]
        assert (dev.platform, dev.abi) == ("android", "arm64-v8a")
        prepared = R.prepare(dev, settings, MODELS,
                             {"source": {source.name: source}, "frames": {target.name: target}},
                             progress=lambda m: None)
        assert prepared.local_binary == android_builds["arm64-v8a"]
        assert prepared.build_info["ncnn_kernels"] == ["neon", "asimdhp", "asimddp"]
        run = R.run_swap(prepared, label="phone", mode="small")
        assert run.summary["frames"] == 1 and run.telemetry.frames[-1]["faces"] == 1
        assert vd.abi == "arm64-v8a"
