"""harness.devices.thermal (one hottest temperature, one cool-down) and the pure helpers of
harness.power.sustained."""

from __future__ import annotations

from helpers.clock import Clock

from harness.devices.base import SensorReading
from harness.devices.thermal import Hottest, cool_down, hottest
from harness.power import sustained as SU


class Sensors:
    """A device whose sensor readings come from a script, one list per read."""

    serial = "dev1"

    def __init__(self, *reads):
        self.reads = list(reads)

    def read_sensors(self):
        return self.reads.pop(0) if len(self.reads) > 1 else self.reads[0]


def test_measured_sensors_win_over_simulated():
    dev = Sensors([SensorReading("cpu_temp_c", 41.0), SensorReading("gpu_temp_c", 44.0),
                   SensorReading("zone_temp_c", 90.0, simulated=True),
                   SensorReading("battery_current_ua", 5000.0)])
    assert hottest(dev) == Hottest(44.0, "gpu_temp_c", simulated=False)


def test_simulated_sensors_count_without_a_measured_one():
    dev = Sensors([SensorReading("zone_temp_c", 52.0, simulated=True),
                   SensorReading("cpu_temp_c", None, reason="unreadable")])
    assert hottest(dev) == Hottest(52.0, "zone_temp_c", simulated=True)
    assert hottest(Sensors([])) == Hottest(None)


def test_cool_down_waits_then_times_out_with_the_reason():
    clock = Clock()
    dev = Sensors([SensorReading("cpu_temp_c", 60.0)])
    cd = cool_down(dev, 40.0, 30.0, poll_s=10.0, sleep=clock.sleep, clock=clock,
                   progress=lambda _m: None)
    assert not cd.ok and cd.info["cooldown"] == "timeout" and cd.info["waited_s"] == 30.0
    assert "still hot after cooling down for 30 s" in cd.skip_reason
    assert "cpu_temp_c 60.0 C > 40 C (measured)" in cd.skip_reason


def test_cool_down_ends_when_cool_and_when_unconfigured():
    clock = Clock()
    dev = Sensors([SensorReading("cpu_temp_c", 50.0)], [SensorReading("cpu_temp_c", 39.0)])
    said = []
    cd = cool_down(dev, 40.0, 100.0, poll_s=5.0, sleep=clock.sleep, clock=clock,
                   progress=said.append)
    assert cd.ok and cd.info["temp_c"] == 39.0 and cd.info["waited_s"] == 5.0 and len(said) == 1
    assert cool_down(dev, None, 10.0).info["cooldown"] == "not configured"
    assert cool_down(Sensors([]), 40.0, 10.0).info["cooldown"] == "no temperature sensor"


def test_other_heat_keeps_the_device_waiting():
    clock = Clock()
    status = iter(["thermal status MODERATE", None])
    cd = cool_down(Sensors([]), None, 60.0, poll_s=5.0, sleep=clock.sleep, clock=clock,
                   progress=lambda _m: None, other_heat=lambda: next(status))
    assert cd.ok and cd.info["waited_s"] == 5.0


def test_zone_choice_and_frame_count():
    zones = [("/z0/temp", "battery"), ("/z1/temp", "cpu-0-0"), ("/z2/temp", "gpu")]
    assert SU.pick_zone(zones, None) == ("/z1/temp", "cpu-0-0")
    assert SU.pick_zone(zones, "gpu") == ("/z2/temp", "gpu")
    assert SU.pick_zone(zones, "npu") is None and SU.pick_zone([], None) is None
    assert SU.frames_for(10.0, 20.0) == 500
    assert SU.frames_for(0.1, 20.0) == 10 and SU.frames_for(5.0, 0.0) == 10
