"""The virtual Android device starts programs the way a phone does (issue 14, part 2),
checked through the REAL adb binary (and adbutils) on a private adb server.

A phone has no glibc and no /lib/ld-linux-*.so: a program that asks for a program
interpreter fails with ENOENT "No such file or directory" before its first instruction; a
static program runs. The same must hold on the virtual device for both ABIs, or the lab would
measure builds that cannot run on the phones it stands in for.

The programs are compiled here: static ones with zig (musl, the toolchain of the Android
runner builds), dynamic glibc ones with Debian's gcc / aarch64-linux-gnu-gcc.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers.paths import REPO

from harness.virtual_device.testing import AdbLab

PROFILE = textwrap.dedent("""
    name = "vexec"
    marker = "vexec"
    description = "virtual phone for exec checks"
    platform = "android"
    [match]
    soc_model = ["SM6450"]
    [virtual]
    abi = "x86_64"
    [virtual.properties]
    "ro.soc.model" = "SM6450"
    "ro.product.model" = "SwapLab Virtual Exec"
""")

# Pins itself to device CPUs 4-7 (the big cores of an 8-core phone) and reports its machine.
AFF_C = r"""
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <errno.h>
int main(int argc, char **argv) {
    int lo = argc > 1 ? 8 : 4, hi = argc > 1 ? 11 : 7;   /* argv[1]: CPUs the phone lacks */
    cpu_set_t s; CPU_ZERO(&s);
    for (int c = lo; c <= hi; c++) CPU_SET(c, &s);
    if (sched_setaffinity(0, sizeof s, &s)) { printf("setaffinity: %s\n", strerror(errno)); return 1; }
#ifdef __aarch64__
    puts("aarch64");
#else
    puts("x86_64");
#endif
    return 0;
}
"""

GLIBC_CC = {"x86_64": "cc", "arm64-v8a": "aarch64-linux-gnu-gcc"}
MACHINE = {"x86_64": "x86_64", "arm64-v8a": "aarch64"}
OTHER_ABI = {"x86_64": "arm64-v8a", "arm64-v8a": "x86_64"}


def _build_module():
    name = "swaplab_runner_build"
    spec = importlib.util.spec_from_file_location(name, REPO / "runner" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zig_cc(abi: str) -> Path:
    build = _build_module()
    try:
        return build.zig_toolchain(abi) / "cc"
    except build.BuildError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def programs(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """(abi, "static"|"glibc") -> compiled aff program."""
    out = tmp_path_factory.mktemp("progs")
    src = out / "aff.c"
    src.write_text(AFF_C)
    progs = {}
    for abi in ("x86_64", "arm64-v8a"):
        exe = out / f"aff-{abi}-static"
        subprocess.run([str(zig_cc(abi)), "-O1", "-static", "-o", str(exe), str(src)], check=True)
        progs[abi, "static"] = exe
        if shutil.which(GLIBC_CC[abi]):
            exe = out / f"aff-{abi}-glibc"
            subprocess.run([GLIBC_CC[abi], "-O1", "-o", str(exe), str(src)], check=True)
            progs[abi, "glibc"] = exe
    return progs


@pytest.fixture(scope="module", params=["x86_64", "arm64-v8a"])
def vdevice(request, tmp_path_factory):
    abi = request.param
    if abi == "arm64-v8a" and not shutil.which("qemu-aarch64-static"):
        pytest.skip("arm64 devices need qemu-user-static (scripts/bootstrap installs it)")
    tmp = tmp_path_factory.mktemp(f"lab-{abi}")
    profile = tmp / "vexec.toml"
    profile.write_text(PROFILE)
    with AdbLab(tmp) as lab:
        vd = lab.virtual_device(str(profile), abi=abi)
        yield lab, vd, abi


def _push(lab, vd, exe: Path, name: str) -> str:
    remote = f"/data/local/tmp/{name}"
    r = lab.adb("-s", vd.serial, "push", str(exe), remote)
    assert r.returncode == 0, r.stderr
    lab.adb("-s", vd.serial, "shell", f"chmod 755 {remote}")
    return remote


def _errno_of_exec(lab, vd, remote: str) -> str:
    """What execve() says on the device (Python's message carries strerror)."""
    code = f"import os\ntry:\n    os.execv({remote!r}, [{remote!r}])\nexcept OSError as e:\n    print(e.strerror)"
    r = lab.adb("-s", vd.serial, "shell", f"python3 -c {shlex.quote(code)}")
    return r.stdout.decode().strip()


def test_static_program_runs_with_device_cpu_numbers(vdevice, programs):
    """A static program for the device's ABI runs (arm64: under qemu), and pinning itself to
    device CPUs 4-7 works on this 2-core host (seccomp-mapped, as the device's taskset)."""
    lab, vd, abi = vdevice
    remote = _push(lab, vd, programs[abi, "static"], "aff")
    r = lab.adb("-s", vd.serial, "shell", remote)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.decode().strip() == MACHINE[abi]
    # CPUs 8-11 do not exist on the 8-core phone: refused as the phone's kernel refuses them
    r = lab.adb("-s", vd.serial, "shell", f"{remote} beyond")
    assert r.returncode == 1 and "Invalid argument" in r.stdout.decode(), r.stdout


def test_glibc_program_fails_like_on_a_phone(vdevice, programs):
    """A dynamically linked glibc program asks for /lib/ld-linux-*.so: ENOENT, exit 127 from
    the shell, through the real adb client and through adbutils alike."""
    lab, vd, abi = vdevice
    if (abi, "glibc") not in programs:
        pytest.skip(f"needs {GLIBC_CC[abi]}")
    remote = _push(lab, vd, programs[abi, "glibc"], "aff_glibc")
    r = lab.adb("-s", vd.serial, "shell", remote)
    assert r.returncode == 127, r.stdout + r.stderr
    assert r.stdout == b""
    assert _errno_of_exec(lab, vd, remote) == "No such file or directory"
    result = lab.client().device(vd.serial).shell2(remote, v2=True)
    assert result.returncode == 127


def test_other_machine_is_exec_format_error(vdevice, programs):
    lab, vd, abi = vdevice
    remote = _push(lab, vd, programs[OTHER_ABI[abi], "static"], "aff_other")
    r = lab.adb("-s", vd.serial, "shell", remote)
    assert r.returncode != 0
    assert _errno_of_exec(lab, vd, remote) == "Exec format error"
