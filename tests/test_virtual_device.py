"""The virtual Android device against the REAL adb binary (and adbutils): a private adb
server on its own port and HOME, never the user's adb (port 5037)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import textwrap
from pathlib import Path

import pytest
from helpers.lab import ADBS

from harness.virtual_device import protocol as VP
from harness.virtual_device.faults import FaultSpecError, parse_faults
from harness.virtual_device.launch import ProfileError, load_virtual_profile
from harness.virtual_device.launch import main as vdev_main
from harness.virtual_device.sandbox import Sandbox
from harness.virtual_device.simulation import SensorSimulation
from harness.virtual_device.testing import AdbLab

PROFILE = textwrap.dedent("""
    name = "vtest"
    marker = "vtest"
    description = "virtual test phone"
    platform = "android"
    [match]
    soc_model = ["SM6450"]
    [virtual]
    abi = "x86_64"
    [virtual.properties]
    "ro.soc.model" = "SM6450"
    "ro.board.platform" = "parrot"
    "ro.product.model" = "SwapLab Virtual Test"
    "ro.product.name" = "vtest_name"
    "ro.product.device" = "vtest_dev"
    "ro.debuggable" = "1"
""")



@pytest.fixture(scope="module")
def profile(tmp_path_factory) -> str:
    p = tmp_path_factory.mktemp("profiles") / "vtest.toml"
    p.write_text(PROFILE)
    return str(p)


@pytest.fixture(scope="module", params=sorted(ADBS))
def lab(request, tmp_path_factory, profile):
    if ADBS[request.param] is None:
        pytest.skip("no adb binary")
    with AdbLab(tmp_path_factory.mktemp(request.param), adb=ADBS[request.param]) as lab:
        lab.vdev = lab.virtual_device(profile)
        yield lab


def sh(lab, *cmd, **kw):
    return lab.adb("-s", lab.vdev.serial, *cmd, **kw)


def test_private_adb_server_never_default_port(lab):
    assert lab.port != 5037
    assert lab.env["HOME"].startswith(str(lab.tmp))


def test_devices_l_shows_banner_identity(lab):
    out = lab.adb("devices", "-l").stdout.decode()
    line = next(x for x in out.splitlines() if x.startswith(lab.vdev.serial))
    assert " device " in line
    assert "product:vtest_name" in line and "model:SwapLab_Virtual_Test" in line
    assert "device:vtest_dev" in line


def test_shell_v2_exit_code_and_separate_stderr(lab):
    r = sh(lab, "shell", "echo out; echo err >&2; exit 42")
    assert r.returncode == 42
    assert r.stdout == b"out\n"
    assert r.stderr == b"err\n"


def test_shell_stdin_is_forwarded(lab):
    r = sh(lab, "shell", "cat | tr a-z A-Z", input=b"hello adb\n")
    assert r.returncode == 0
    assert r.stdout == b"HELLO ADB\n"


def test_getprop_presents_profile(lab):
    r = sh(lab, "shell", "getprop ro.soc.model; getprop ro.product.cpu.abi; getprop ro.swaplab.virtual;"
           " getprop no.such.prop fallback")
    assert r.stdout.decode().split() == ["SM6450", "x86_64", "1", "fallback"]
    allp = sh(lab, "shell", "getprop").stdout.decode()
    assert "[ro.board.platform]: [parrot]" in allp


def test_push_pull_large_file_and_tree(lab, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))  # crosses many WRTE and DATA boundaries
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b" * 70000)
    # like a real phone: several sources need an existing target folder
    assert sh(lab, "shell", "mkdir -p /data/local/tmp/pushtest").returncode == 0
    r = sh(lab, "push", str(big), str(tree), "/data/local/tmp/pushtest/", timeout=120)
    assert r.returncode == 0, r.stderr
    digest = hashlib.sha256(big.read_bytes()).hexdigest()
    r = sh(lab, "shell", "sha256sum /data/local/tmp/pushtest/big.bin")
    assert r.stdout.decode().split() == [digest, "/data/local/tmp/pushtest/big.bin"]
    # the device path is what the shell shows, never the sandbox folder
    assert str(lab.vdev.sandbox.root).encode() not in r.stdout
    out = tmp_path / "back"
    r = sh(lab, "pull", "/data/local/tmp/pushtest/tree", str(out), timeout=120)
    assert r.returncode == 0, r.stderr
    assert (out / "sub" / "b.txt").read_text() == "b" * 70000
    r = sh(lab, "pull", "/data/local/tmp/pushtest/big.bin", str(tmp_path / "big2"), timeout=120)
    assert hashlib.sha256((tmp_path / "big2").read_bytes()).hexdigest() == digest


def test_pull_missing_file_fails_clearly(lab, tmp_path):
    r = sh(lab, "pull", "/data/local/tmp/nope.bin", str(tmp_path / "x"))
    assert r.returncode != 0
    assert b"does not exist" in r.stdout + r.stderr


def test_sensor_files_and_dumpsys(lab):
    r = sh(lab, "shell", "cat /sys/class/thermal/thermal_zone0/type /sys/class/thermal/thermal_zone0/temp;"
           " cat /sys/class/power_supply/battery/status; dumpsys thermalservice | grep 'Thermal Status'")
    lines = r.stdout.decode().splitlines()
    assert lines[0] == "cpu-0-0"
    assert 20000 < int(lines[1]) < 90000  # millidegrees
    assert lines[2] == "Discharging"
    assert lines[3].startswith("Thermal Status: ")


def test_adbutils_shell2_sync_and_features(lab, tmp_path):
    d = lab.client().device(lab.vdev.serial)
    assert set(d.get_features().split(",")) == {"shell_v2", "fixed_push_mkdir"}
    r = d.shell2("echo o; echo e >&2; exit 3", v2=True)
    assert (r.returncode, r.stdout, r.stderr) == (3, "o\n", "e\n")
    d.sync.push(b"x" * 100_000, "/data/local/tmp/adbutils/x.bin")
    st = d.sync.stat("/data/local/tmp/adbutils/x.bin")
    assert st.size == 100_000
    assert "x.bin" in [e.path for e in d.sync.list("/data/local/tmp/adbutils")]
    assert d.sync.read_bytes("/data/local/tmp/adbutils/x.bin") == b"x" * 100_000
    assert d.shell("echo v1") == "v1"


def test_unknown_service_is_refused(lab):
    r = sh(lab, "reboot")
    assert r.returncode != 0 or b"error" in (r.stdout + r.stderr).lower()


# --- units without adb -----------------------------------------------------------------
def test_sandbox_path_map(tmp_path):
    sb = Sandbox(tmp_path / "root", {"a": "b"}, "x86_64")
    sb.setup()
    root = str(sb.root)
    assert sb.translate_command("cat /data/local/tmp/x 'y=/sys/class' >/sdcard/o") == \
        f"cat {root}/data/local/tmp/x 'y={root}/sys/class' >{root}/sdcard/o"
    # not device paths: left alone
    assert sb.translate_command("ls /system /database /proc/1/status x/data") == \
        "ls /system /database /proc/1/status x/data"
    assert sb.to_host("/data/local/tmp/../../../../etc/passwd") == sb.root / "etc/passwd"
    assert sb.untranslate_output(f"{root}/data/x\n{root}\n".encode()) == b"/data/x\n/\n"


def test_simulation_heats_with_cpu_and_cools(tmp_path):
    sim = SensorSimulation(tmp_path, {"tau_s": 10.0})
    t0 = sim.t_soc
    for _ in range(20):
        sim.step(1.0, 2.0)  # two busy cores
    hot = sim.t_soc
    assert hot > t0 + 20
    assert sim.power_w == pytest.approx(0.6 + 1.5 * 2)
    for _ in range(60):
        sim.step(1.0, 0.0)
    assert sim.t_soc < hot - 20
    sim.write()
    cur = int((tmp_path / "sys/class/power_supply/battery/current_now").read_text())
    assert cur < 0  # discharging is negative in the kernel's convention


def test_simulation_vendor_units(tmp_path):
    SensorSimulation(tmp_path, {"temp_unit": "deci", "current_unit": "mA", "current_sign": 1})
    temp = int((tmp_path / "sys/class/thermal/thermal_zone0/temp").read_text())
    assert 200 < temp < 900
    cur = int((tmp_path / "sys/class/power_supply/battery/current_now").read_text())
    assert 0 < cur < 10000


def test_fault_specs():
    f = parse_faults(["drop-after=2.5", "kill-runner=1:myprog", "slow-link=1000",
                      "full-storage=10", "sensor-unreadable=thermal_zone0/temp", "charging"])
    assert (f.drop_after_s, f.drop_pattern) == (2.5, "swap_runner")
    assert (f.kill_runner_after_s, f.kill_pattern) == (1.0, "myprog")
    assert f.charging and f.full_storage_bytes == 10
    with pytest.raises(FaultSpecError, match="unknown fault"):
        parse_faults(["explode"])
    with pytest.raises(FaultSpecError, match="seconds"):
        parse_faults(["drop-after=soon"])


def test_profile_errors(tmp_path):
    with pytest.raises(ProfileError, match="no device profile"):
        load_virtual_profile("nope", tmp_path)
    p = tmp_path / "x.toml"
    p.write_text('name = "x"\n')
    with pytest.raises(ProfileError, match=r"no \[virtual\] section"):
        load_virtual_profile(str(p))
    assert vdev_main(["start", "--profile", str(p)]) == 2


def test_repo_snapdragon6_profile_has_virtual_section():
    repo = Path(__file__).resolve().parents[1] / "device_profiles" / "snapdragon6.toml"
    if not repo.exists():
        pytest.skip("device_profiles/snapdragon6.toml not present")
    prof = load_virtual_profile(str(repo))
    assert prof["properties"]["ro.soc.model"] == "SM6450"


def test_protocol_header_roundtrip():
    raw = VP.pack(VP.A_WRTE, 1, 2, b"abc")
    assert VP.unpack_header(raw[:24]) == (VP.A_WRTE, 1, 2, 3)
    with pytest.raises(VP.ProtocolError):
        VP.unpack_header(raw[:20] + b"\0\0\0\0")


def test_interactive_shell_without_tty(lab):
    r = sh(lab, "shell", input=b"echo hi from sh\nexit 3\n")
    assert b"hi from sh" in r.stdout
    assert r.returncode == 3


def test_cli_starts_device_until_sigterm(tmp_path, profile):
    import signal
    import sys

    from harness.virtual_device.testing import free_port

    port = free_port()
    lab = AdbLab(tmp_path / "lab").start()  # its adb key is the one the device trusts
    p = subprocess.Popen([sys.executable, "-m", "harness.virtual_device", "start", "--profile",
                          profile, "--port", str(port), "--root",
                          str(lab.device_roots() / "root"),
                          "--fault", "battery=50", "--trusted-keys", str(lab.adb_key_pub)],
                         cwd=Path(__file__).resolve().parents[1], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    try:
        line = p.stdout.readline()
        assert f"virtual device 127.0.0.1:{port}" in line and "SIMULATED" in line
        with lab:
            lab.connect(f"127.0.0.1:{port}")
            r = lab.adb("-s", f"127.0.0.1:{port}", "shell", "cat /sys/class/power_supply/battery/capacity")
            assert r.stdout.strip() == b"50"
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=15)
        finally:
            if p.poll() is None:
                p.kill()
    assert p.returncode == 0


def test_interactive_shell_with_a_terminal(lab):
    """`adb shell` from a terminal asks for a pty: prompt, echo, exit code."""
    import pty
    import select
    import time

    pid, fd = pty.fork()
    if pid == 0:  # child: adb on a pseudo-terminal
        os.execve(lab.adb_path, [lab.adb_path, "-P", str(lab.port), "-s", lab.vdev.serial,
                                 "shell"], lab.env)
    out = b""

    def pump(seconds: float) -> None:
        nonlocal out
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    return

    pump(1.0)
    os.write(fd, b"echo pty-$((6*7))\n")
    pump(1.0)
    os.write(fd, b"exit 5\n")
    pump(2.0)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = out.decode(errors="replace")
    assert "vtest_dev:/ $ " in text and "pty-42" in text
    assert "job control turned off" not in text
    assert os.waitstatus_to_exitcode(status) == 5


def test_vulkan_driver_only_when_profile_has_gpu(tmp_path, profile):
    """[virtual] gpu = true: device programs see the host's Vulkan driver (lavapipe, named in
    ro.hardware.vulkan as Android names its driver); otherwise the loader is pointed at no
    driver at all, whatever the host has installed."""
    gpu_profile = tmp_path / "vgpu.toml"
    gpu_profile.write_text(PROFILE.replace('name = "vtest"', 'name = "vgpu"')
                           .replace('abi = "x86_64"', 'abi = "x86_64"\ngpu = true'))
    show = 'echo "icd=$VK_ICD_FILENAMES drivers=$VK_DRIVER_FILES"; getprop ro.hardware.vulkan'
    with AdbLab(tmp_path / "lab", adb=next(a for a in ADBS.values() if a)) as lab:
        plain = lab.virtual_device(profile)
        gpu = lab.virtual_device(str(gpu_profile))
        no = lab.adb("-s", plain.serial, "shell", show).stdout.decode().split("\n")
        yes = lab.adb("-s", gpu.serial, "shell", show).stdout.decode().split("\n")
    missing = "/.swaplab/no-vulkan-driver.json"  # the sandbox root shows as / on the device
    assert no[0] == f"icd={missing} drivers={missing}" and no[1] == "", no
    assert yes[1] == "lavapipe", yes
    icd = os.environ.get("VK_ICD_FILENAMES") or "/usr/share/vulkan/icd.d/lvp_icd.x86_64.json"
    if os.path.exists(icd):
        assert yes[0] == f"icd={icd} drivers={icd}", yes
