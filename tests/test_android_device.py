"""AndroidDevice (adbutils) against virtual devices on a private adb server: discovery,
identity, hash-skipping sync, shell v2 runs, timeouts, pinning, sampler, gates."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from helpers.clock import Clock

from harness.devices import DiscoveryOptions
from harness.devices.android import device as android
from harness.devices.android import preflight as G
from harness.devices.android.sampler import parse_samples, summarise
from harness.devices.base import DeviceError
from harness.virtual_device.testing import AdbLab


@pytest.fixture(scope="module")
def lab(tmp_path_factory, sd6_profile):
    with AdbLab(tmp_path_factory.mktemp("adb")) as lab:
        lab.vdev = lab.virtual_device(sd6_profile)
        yield lab


@pytest.fixture(scope="module")
def dev(lab):
    devs = android.discover(DiscoveryOptions(adb_port=lab.port))
    assert [d.serial for d in devs] == [lab.vdev.serial]
    return devs[0]


def test_discovery_identity(dev, lab):
    assert dev.kind == "virtual" and dev.simulated and dev.virtual
    assert dev.platform == "android" and dev.abi == "x86_64"
    assert dev.soc == "SM6450" and dev.soc_source == "ro.soc.model"
    assert not dev.emulator and dev.debuggable
    d = dev.describe()
    assert d["simulated"] is True and d["adb_server"] == f"127.0.0.1:{lab.port}"
    assert d["properties"]["ro.board.platform"] == "parrot"


def test_profile_match_with_repo_profiles(dev):
    from harness import profiles as HP

    folder = Path(__file__).resolve().parents[1] / "device_profiles"
    if not (folder / "snapdragon6.toml").exists():
        pytest.skip("repo profiles missing")
    prof, why = HP.match_profile(dev, HP.load_profiles(folder))
    assert prof is not None and prof.name == "snapdragon6", why


def test_discover_without_server_returns_empty(monkeypatch):
    from harness.virtual_device.testing import free_port

    monkeypatch.setenv("SWAPLAB_ADB_SERVERS", f"127.0.0.1:{free_port()}")
    assert android.discover(DiscoveryOptions(adb_port=free_port())) == []


def test_remote_servers_from_option_and_env(monkeypatch):
    monkeypatch.setenv("SWAPLAB_ADB_SERVERS", "farm1:5037, farm2:6000")
    s = android.adb_servers(DiscoveryOptions(adb_port=5555, remote_adb_servers=["farm3:7000", "bad"]))
    assert s == [("127.0.0.1", 5555, False), ("farm3", 7000, True), ("farm1", 5037, True),
                 ("farm2", 6000, True)]


def test_remote_server_discovery(lab):
    # the private server again, this time as a "remote" farm server
    devs = android.discover(DiscoveryOptions(adb_port=1, remote_adb_servers=[f"127.0.0.1:{lab.port}"]))
    assert len(devs) == 1 and devs[0].remote


def test_emulator_flag():
    class Fake:
        pass

    d = android.AndroidDevice(None, Fake(), "emulator-5554", {"ro.product.cpu.abi": "x86_64"})
    assert d.emulator and d.kind == "android" and not d.simulated
    d = android.AndroidDevice(None, Fake(), "R58M", {"ro.kernel.qemu": "1"})
    assert d.emulator


def test_sync_skips_unchanged_files(dev, tmp_path):
    (tmp_path / "models").mkdir()
    a = tmp_path / "models" / "a.bin"
    a.write_bytes(os.urandom(300_000))
    b = tmp_path / "b.txt"
    b.write_text("hello")
    files = {"models/a.bin": a, "b.txt": b}
    r1 = dev.sync(files)
    assert set(r1.pushed) == {"models/a.bin", "b.txt"} and r1.bytes_pushed == 300_005
    r2 = dev.sync(files)
    assert r2.pushed == () and r2.bytes_pushed == 0 and set(r2.skipped) == set(files)
    b.write_text("changed")
    r3 = dev.sync(files)
    assert r3.pushed == ("b.txt",) and r3.bytes_pushed == 7
    assert "a.bin" in dev.listdir("models")
    dev.pull("b.txt", tmp_path / "back.txt")
    assert (tmp_path / "back.txt").read_text() == "changed"


def test_run_exit_code_stderr_and_quoting(dev):
    r = dev.run(["sh", "-c", 'printf "%s|" "$@"; echo err >&2; exit 5', "x", "a b", "it's", "$HOME", ";rm"],
                timeout_s=30)
    assert r.exit_code == 5 and not r.timed_out
    assert r.stdout == "a b|it's|$HOME|;rm|"
    assert r.stderr == "err\n"


def test_run_program_from_workdir_with_env(dev, tmp_path):
    prog = tmp_path / "hello.sh"
    prog.write_text('#!/bin/sh\necho "hello $GREETING $1"\n')
    prog.chmod(0o755)
    dev.sync({"hello.sh": prog})
    r = dev.run(["hello.sh", "world"], timeout_s=30, env={"GREETING": "dear"})
    assert (r.exit_code, r.stdout) == (0, "hello dear world\n")


def test_run_cpu_pinning(dev):
    # device CPU 5 runs on host CPU 5 % host CPUs (the virtual phone has 8 cores)
    r = dev.run(["sh", "-c", "grep Cpus_allowed_list /proc/self/status"], timeout_s=30, cpu_list="5")
    assert r.exit_code == 0, r.stderr
    host = sorted(os.sched_getaffinity(0))
    assert r.stdout.split()[-1] == str(host[5 % len(host)])
    assert "taskset 20 " in dev.run_command(["x"], 10, cpu_list="5")


def test_run_timeout_kills_remote_process(dev):
    r = dev.run(["sh", "-c", "echo started; sleep 30"], timeout_s=1.5)
    assert r.timed_out and not r.ok
    assert r.duration_s < 10
    assert "killed after timeout" in r.stderr
    left = dev.run(["sh", "-c", "ps -eo args | grep -c '[s]leep 30' || true"], timeout_s=30)
    assert left.stdout.strip() == "0"


def test_background_sampler_sees_load(dev):
    s = dev.start_sampler(0.3)
    # busy for 2-3 s whatever the host's speed (a fixed iteration count can end before
    # the sampler has taken three samples)
    busy = ('end=$(($(date +%s) + 3)); while [ "$(date +%s)" -lt "$end" ]; do '
            'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; done')
    r = dev.run(["sh", "-c", busy], timeout_s=120, cpu_list="4-7")
    assert r.ok, r.stderr
    res = s.stop()
    samples = parse_samples(res.stdout)
    assert len(samples) >= 3, res.stdout[:500]
    summ = summarise(samples)
    assert summ["temperature_max_c"] is not None and summ["power_avg_w"] > 0
    assert any(s["cpu_khz"] for s in samples)
    assert summ["vmhwm_max_kb"] is not None  # the runner's pid file was read
    assert summ["unknown"] == {}


def test_run_with_sampler(dev):
    r, samples = dev.run_with_sampler(["sh", "-c", "sleep 1.2; echo done"], timeout_s=60,
                                      interval_s=0.3)
    assert r.ok and r.stdout == "done\n"
    assert len(samples) >= 2 and all(s["temps_c"] for s in samples)


def test_read_sensors_simulated(dev):
    rs = {r.name: r for r in dev.read_sensors()}
    assert rs["cpu_0_0_temp_c"].simulated and 15 < rs["cpu_0_0_temp_c"].value < 100
    assert rs["battery_current_ua"].value < 0
    assert 3 < rs["battery_voltage_v"].value < 4.5
    assert "cpu4_freq_khz" in rs


def test_remove_refuses_dangerous_paths(dev):
    with pytest.raises(DeviceError):
        dev.remove("/data/local/tmp")


# --- gates -------------------------------------------------------------------------


def test_gates_pass_on_fresh_device(dev):
    r = G.check_gates(dev, power_test=True, cooldown_temperature_c=80)
    assert r.ok, r.skip_reason
    assert r.facts["virtual"] and r.facts["debuggable"] and r.facts["battery_pct"] >= 25
    assert r.facts["thermal_status"] == "NONE"


def test_gate_low_battery_skips(lab, sd6_profile):
    vd = lab.virtual_device(sd6_profile, faults=["battery=12"])
    d = android.AndroidDevice.connect(lab.client(), vd.serial)
    r = G.check_gates(d)
    assert not r.ok and "battery 12% is below the 25% minimum" in r.skip_reason
    assert vd.serial in r.skip_reason
    assert G.check_gates(d, min_battery_pct=10).ok


def test_gate_charging_warns_loudly_or_skips(lab, sd6_profile):
    vd = lab.virtual_device(sd6_profile, faults=["charging"])
    d = android.AndroidDevice.connect(lab.client(), vd.serial)
    seen = []
    r = G.check_gates(d, power_test=True, warn=seen.append)
    assert r.ok and r.facts["charging"] is True
    assert seen and "USB power distorts battery current" in seen[0] and seen[0].startswith("WARNING")
    r = G.check_gates(d, power_test=True, require_not_charging=True)
    assert not r.ok and "charging" in r.skip_reason


def test_gate_hot_device_cools_down_then_skips(lab, sd6_profile):
    vd = lab.virtual_device(sd6_profile, faults=["hot=62"])
    d = android.AndroidDevice.connect(lab.client(), vd.serial)
    clock = Clock()
    r = G.check_gates(d, cooldown_temperature_c=40, cooldown_timeout_s=30, poll_s=10,
                      sleep=clock.sleep, clock=clock)
    assert not r.ok
    assert "still hot after cooling down for 30 s" in r.skip_reason
    assert re.search(r"thermal status (SEVERE|CRITICAL)", r.skip_reason), r.skip_reason
    assert re.search(r"cpu_\w+_temp_c \d+\.\d C > 40 C", r.skip_reason), r.skip_reason


def test_gate_cooldown_succeeds_when_device_cools(lab, sd6_profile):
    vd = lab.virtual_device(sd6_profile, faults=["hot=47"])
    d = android.AndroidDevice.connect(lab.client(), vd.serial)
    # the simulation cools toward ~30 C with tau 20 s; wait for real (short polls)
    vd.sim.tau = 2.0
    r = G.check_gates(d, cooldown_temperature_c=45, cooldown_timeout_s=60, poll_s=0.5)
    assert r.ok, r.skip_reason
    assert r.facts["cooldown_s"] > 0


def test_client_never_starts_an_adb_server():
    from adbutils.errors import AdbError

    from harness.virtual_device.testing import free_port

    port = free_port()
    with pytest.raises(AdbError, match="no adb server listening"):
        android.make_client("127.0.0.1", port).list()
    assert not android._listening("127.0.0.1", port)
