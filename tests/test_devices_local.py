"""The local device and backend discovery."""

import os
import sys
import time
import types

import pytest

from harness import devices
from harness.devices import DiscoveryOptions, discover_devices
from harness.devices.base import DeviceError
from harness.devices.local import LocalDevice, parse_cpu_list


@pytest.fixture
def dev(tmp_path):
    return LocalDevice(tmp_path / "work")


def test_identity(dev):
    d = dev.describe()
    assert d["kind"] == "local" and d["serial"] == "local" and d["platform"] == "linux"
    assert d["abi"] in ("x86_64", "arm64-v8a") and d["simulated"] is False
    assert d["properties"]["host.cores"].isdigit()


def test_sync_skips_unchanged_files_by_hash(dev, tmp_path):
    a = tmp_path / "a.bin"
    a.write_bytes(b"x" * 1000)
    r1 = dev.sync({"models/a.bin": a})
    assert r1.pushed == ("models/a.bin",) and r1.bytes_pushed == 1000
    r2 = dev.sync({"models/a.bin": a})
    assert r2.skipped == ("models/a.bin",) and r2.pushed == ()
    a.write_bytes(b"y" * 1000)  # same size, new content
    assert dev.sync({"models/a.bin": a}).pushed == ("models/a.bin",)
    assert dev.listdir("models") == ["a.bin"]
    dev.pull("models/a.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == b"y" * 1000
    dev.remove("models")
    assert dev.listdir("models") == []


def test_sync_keeps_exec_bit(dev, tmp_path):
    exe = tmp_path / "tool"
    exe.write_text("#!/bin/sh\necho ok $1\n")
    exe.chmod(0o755)
    dev.sync({"bin/tool": exe})
    r = dev.run(["./bin/tool", "x"], timeout_s=10)
    assert r.ok and r.stdout == "ok x\n"


def test_run_exit_code_stderr_env_timeout(dev):
    r = dev.run(["sh", "-c", "echo out; echo err >&2; echo $SWAPLAB_X; exit 3"], 10,
                env={"SWAPLAB_X": "v"})
    assert (r.exit_code, r.stdout, r.stderr, r.ok) == (3, "out\nv\n", "err\n", False)
    r = dev.run(["sh", "-c", "sleep 30 & sleep 30"], timeout_s=0.5)
    assert r.timed_out and not r.ok and r.duration_s < 10


def test_cpu_list_pins(dev):
    cpu = min(os.sched_getaffinity(0))
    r = dev.run([sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
                30, cpu_list=str(cpu))
    assert r.stdout.strip() == f"[{cpu}]"
    with pytest.raises(DeviceError, match="local: cpu_list"):
        dev.run(["true"], 5, cpu_list="4096")
    assert parse_cpu_list("0-2,5") == {0, 1, 2, 5}


def test_background_process(dev):
    p = dev.start(["sh", "-c", "echo started; sleep 30"])
    time.sleep(1.0)
    r = p.stop(timeout_s=5)
    assert "started" in r.stdout


def test_sensors_are_measured_or_absent(dev):
    for s in dev.read_sensors():
        assert s.simulated is False and s.value is not None
        assert s.name.endswith(("_temp_c", "_freq_khz"))


def test_discovery_tolerates_missing_and_broken_backends(monkeypatch):
    broken = types.ModuleType("swaplab_test.broken_backend")

    def discover(options):
        raise RuntimeError("usb on fire")

    broken.discover = discover
    monkeypatch.setitem(sys.modules, "swaplab_test.broken_backend", broken)
    monkeypatch.setattr(devices, "BACKENDS",
                        ["local", "no_such_backend", "swaplab_test.broken_backend"])
    warnings = []
    result = discover_devices(DiscoveryOptions(), warn=warnings.append)
    assert [d.serial for d in result.devices] == ["local"]
    assert result.notes["no_such_backend"] == "backend not installed"
    assert "usb on fire" in result.notes["swaplab_test.broken_backend"]
    assert warnings
    assert discover_devices(DiscoveryOptions(include_local=False)).devices == [] or all(
        d.kind != "local" for d in discover_devices(DiscoveryOptions(include_local=False)).devices)


def test_cool_down_waits_for_measured_temperature():
    from harness.devices.base import SensorReading
    from harness.profiles import RunSettings
    from harness.runner.invoke import cool_down

    class Hot:
        serial = "hot"
        def __init__(self):
            self.temps = [50.0, 45.0, 39.0]

        def read_sensors(self):
            return [SensorReading("cpu_temp_c", self.temps.pop(0) if len(self.temps) > 1
                                  else self.temps[0]),
                    SensorReading("model_temp_c", 99.0, simulated=True)]

    said = []
    got = cool_down(Hot(), RunSettings(cooldown_temperature_c=40.0, cooldown_timeout_s=10),
                    progress=said.append, poll_s=0.01)
    assert got["cooldown"] == "ok" and got["temp_c"] == 39.0 and said
    assert cool_down(Hot(), RunSettings())["cooldown"] == "not configured"
    got = cool_down(Hot(), RunSettings(cooldown_temperature_c=10.0, cooldown_timeout_s=0.05),
                    progress=said.append, poll_s=0.01)
    assert got["cooldown"] == "timeout"


def test_cool_down_honours_simulated_sensors():
    """A virtual device has only simulated thermal zones (they follow its real CPU load):
    cool-down waits for them and says the reading is simulated. Measured sensors win."""
    from harness.devices.base import SensorReading
    from harness.devices.thermal import Hottest, hottest
    from harness.profiles import RunSettings
    from harness.runner.invoke import cool_down

    class Virtual:
        serial = "virtual"
        def __init__(self):
            self.temps = [55.0, 47.0, 38.0]

        def read_sensors(self):
            t = self.temps.pop(0) if len(self.temps) > 1 else self.temps[0]
            return [SensorReading("cpu_0_0_temp_c", t, simulated=True),
                    SensorReading("battery_temp_c", None, simulated=True, reason="unreadable")]

    said = []
    got = cool_down(Virtual(), RunSettings(cooldown_temperature_c=40.0, cooldown_timeout_s=10),
                    progress=said.append, poll_s=0.01)
    assert got["cooldown"] == "ok" and got["temp_c"] == 38.0 and got["simulated"] is True
    assert said and "simulated" in said[0]
    assert hottest(Virtual()) == Hottest(55.0, "cpu_0_0_temp_c", simulated=True)
