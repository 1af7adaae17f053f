"""Fault injection: each fault of the virtual device gives a clear message naming the
device, and nothing already measured is lost; other devices go on."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from harness.devices import DiscoveryOptions
from harness.devices.android import device as android
from harness.devices.android.sampler import parse_samples
from harness.devices.base import DeviceDisconnected, DeviceError
from harness.virtual_device.testing import AdbLab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    with AdbLab(tmp_path_factory.mktemp("adb")) as lab:
        yield lab


def connect(lab, vd):
    return android.AndroidDevice.connect(lab.client(), vd.serial)


def test_connection_dropped_mid_run(lab, sd6_profile, tmp_path):
    healthy = connect(lab, lab.virtual_device(sd6_profile))
    vd = lab.virtual_device(sd6_profile, faults=["drop-after=1:sleep 20"])
    d = connect(lab, vd)
    f = tmp_path / "in.bin"
    f.write_bytes(b"x" * 1000)
    before = d.sync({"in.bin": f})             # measured before the drop: kept
    first = d.run(["sh", "-c", "echo measured"], timeout_s=30)
    with pytest.raises(DeviceDisconnected) as ei:
        d.run(["sleep", "20"], timeout_s=60)
    msg = str(ei.value)
    assert vd.serial in msg and "disconnected during run of sleep" in msg
    assert before.bytes_pushed == 1000 and first.stdout == "measured\n"
    # the other device goes on; discovery does not raise and no longer offers the dead one
    assert healthy.run(["sh", "-c", "echo still here"], timeout_s=30).stdout == "still here\n"
    serials = [x.serial for x in android.discover(DiscoveryOptions(adb_port=lab.port))]
    assert healthy.serial in serials and vd.serial not in serials
    # a later call on the dropped device fails the same clear way
    with pytest.raises(DeviceDisconnected, match=vd.serial.replace(".", r"\.")):
        d.run(["true"], timeout_s=10)


def test_slow_link_push_still_correct(lab, sd6_profile, tmp_path):
    vd = lab.virtual_device(sd6_profile, faults=["slow-link=400000"])
    d = connect(lab, vd)
    data = os.urandom(400_000)
    f = tmp_path / "m.bin"
    f.write_bytes(data)
    t0 = time.monotonic()
    rep = d.sync({"m.bin": f})
    took = time.monotonic() - t0
    assert rep.bytes_pushed == 400_000
    assert took >= 0.8  # 400 kB at 400 kB/s, both directions throttled
    out = d.run(["sha256sum", "m.bin"], timeout_s=60).stdout.split()[0]
    assert out == hashlib.sha256(data).hexdigest()


def test_full_storage_push_fails_clearly(lab, sd6_profile, tmp_path):
    vd = lab.virtual_device(sd6_profile, faults=["full-storage=100000"])
    d = connect(lab, vd)
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(b"s" * 10_000)
    big.write_bytes(b"b" * 200_000)
    assert d.sync({"small.bin": small}).bytes_pushed == 10_000
    with pytest.raises(DeviceError) as ei:
        d.sync({"big.bin": big, "small.bin": small})
    msg = str(ei.value)
    assert vd.serial in msg and "storage full" in msg and "No space left on device" in msg
    assert "big.bin" in msg
    # nothing lost: the earlier file is intact, no partial big file left behind
    assert d.listdir(".").count("small.bin") == 1 and "big.bin" not in d.listdir(".")
    assert d.run(["sha256sum", "small.bin"], 30).stdout.split()[0] == \
        hashlib.sha256(small.read_bytes()).hexdigest()


def test_runner_killed(lab, sd6_profile):
    vd = lab.virtual_device(sd6_profile, faults=["kill-runner=0.5:sleep 30"])
    d = connect(lab, vd)
    r = d.run(["sleep", "30"], timeout_s=60)
    assert r.exit_code == 137 and not r.timed_out and not r.ok
    assert r.duration_s < 20
    assert f"sleep on {vd.serial} was killed by SIGKILL (exit 137)" in r.stderr
    # the device itself is fine afterwards
    assert d.run(["echo", "ok"], timeout_s=30).stdout == "ok\n"


def test_sensor_file_unreadable(lab, sd6_profile):
    vd = lab.virtual_device(sd6_profile, faults=["sensor-unreadable=thermal_zone0/temp",
                                             "sensor-unreadable=battery/current_now"])
    d = connect(lab, vd)
    rs = {r.name: r for r in d.read_sensors()}
    z0 = rs["cpu_0_0_temp_c"]
    assert z0.value is None and "Is a directory" in z0.reason
    assert rs["battery_current_ua"].value is None and "Is a directory" in rs["battery_current_ua"].reason
    assert rs["cpu_1_0_temp_c"].value is not None  # the other sensors still read
    s = d.start_sampler(0.2)
    time.sleep(1.0)
    samples = parse_samples(s.stop().stdout)
    assert samples and all("temp:cpu-0-0" in x["unknown"] for x in samples)
    assert all(x["temps_c"].get("cpu-1-0") for x in samples)
