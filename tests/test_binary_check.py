"""The pre-run check (issue 14, part 3): before running, the harness checks the runner it is
about to push against the device (ELF machine vs the device's ABI, a program interpreter the
device has) and names device, file and problem instead of a bare exit 127.

Real ELF files: this host's /bin/true (x86_64, glibc), and small programs compiled here with
zig (static musl, both ABIs) and aarch64-linux-gnu-gcc (glibc arm64); prepare() is checked
against a virtual Android device through adbutils."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
from helpers.paths import REPO

from harness.devices import DiscoveryOptions
from harness.devices.android import device as android
from harness.profiles import RunSettings
from harness.runner import invoke as R
from harness.runner.binary_check import BinaryMismatch, check_binary, problems, read_elf
from harness.virtual_device.testing import AdbLab

HELLO_C = "int main(void) { return 0; }\n"


def _zig_cc(abi: str) -> Path:
    spec = importlib.util.spec_from_file_location("swaplab_runner_build", REPO / "runner" / "build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    try:
        return build.zig_toolchain(abi) / "cc"
    except build.BuildError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def elves(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("elves")
    src = out / "hello.c"
    src.write_text(HELLO_C)
    files = {"host-glibc": Path("/bin/true").resolve()}
    for abi in ("arm64-v8a", "x86_64"):
        exe = out / f"static-{abi}"
        subprocess.run([str(_zig_cc(abi)), "-O1", "-static", "-o", str(exe), str(src)], check=True)
        files[f"static-{abi}"] = exe
    if shutil.which("aarch64-linux-gnu-gcc"):
        exe = out / "glibc-arm64"
        subprocess.run(["aarch64-linux-gnu-gcc", "-O1", "-o", str(exe), str(src)], check=True)
        files["glibc-arm64"] = exe
    return files


def test_read_elf_facts(elves):
    static = read_elf(elves["static-arm64-v8a"])
    assert static.machine == "EM_AARCH64" and static.interpreter is None and static.needed == ()
    host = read_elf(elves["host-glibc"])
    assert host.machine == "EM_X86_64"
    assert host.interpreter == "/lib64/ld-linux-x86-64.so.2" and "libc.so.6" in host.needed


def test_static_builds_pass_for_their_abi(elves):
    assert problems(read_elf(elves["static-arm64-v8a"]), "arm64-v8a", "android") == []
    assert problems(read_elf(elves["static-x86_64"]), "x86_64", "android") == []


def test_glibc_build_on_android_names_interpreter_and_libraries(elves):
    if "glibc-arm64" not in elves:
        pytest.skip("needs aarch64-linux-gnu-gcc")
    with pytest.raises(BinaryMismatch) as e:
        check_binary(elves["glibc-arm64"], serial="emulator-5554", abi="arm64-v8a",
                     platform="android", remote="bin/swap_runner")
    msg = str(e.value)
    assert msg.startswith("emulator-5554 (android, arm64-v8a): bin/swap_runner (local ")
    assert "/lib/ld-linux-aarch64.so.1" in msg and "libc.so.6" in msg
    assert "--abi arm64-v8a --platform android" in msg


def test_wrong_machine_is_named(elves):
    found = problems(read_elf(elves["static-x86_64"]), "arm64-v8a", "android")
    assert found == ["it is built for EM_X86_64, the device runs arm64-v8a (EM_AARCH64)"]


def test_linux_host_interpreter_must_exist(elves):
    facts = read_elf(elves["host-glibc"])
    assert problems(facts, "x86_64", "linux") == []
    assert problems(facts, "x86_64", "linux", exists=lambda p: False) == [
        "its program interpreter /lib64/ld-linux-x86-64.so.2 is not on the device"]


def test_not_an_elf_file(tmp_path):
    junk = tmp_path / "swap_runner"
    junk.write_bytes(b"\x00" * 64)
    with pytest.raises(BinaryMismatch, match="not a readable ELF file"):
        check_binary(junk, serial="s", abi="x86_64", platform="android", remote="bin/swap_runner")


def test_prepare_refuses_a_glibc_runner_before_pushing(elves, tmp_path, monkeypatch, sd6_profile):
    """prepare() on a virtual Android device with the host's glibc build: a RunnerError that
    names device, file and interpreter, and nothing pushed."""
    monkeypatch.setattr(R, "build_runner", lambda abi, progress=print, platform=None:
                        elves["host-glibc"])
    with AdbLab(tmp_path / "lab") as lab:
        vd = lab.virtual_device(sd6_profile)
        dev = android.discover(DiscoveryOptions(adb_port=lab.port))[0]
        with pytest.raises(R.RunnerError) as e:
            R.prepare(dev, RunSettings(), REPO / "models", {}, progress=lambda m: None)
        msg = str(e.value)
        assert msg.startswith(f"{vd.serial} (android, x86_64): bin/swap_runner")
        assert "/lib64/ld-linux-x86-64.so.2" in msg
        assert not list(vd.sandbox.root.glob("data/**/swap_runner"))
