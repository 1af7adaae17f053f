"""Pure conversions of the iOS backend: AppleSmartBattery to SwapLab's units and signs,
sysmontap rows to the app's usage, the app's thermal state into the telemetry summary."""

from __future__ import annotations

import json

import pytest

from harness.devices.ios import sensors as S
from harness.devices.ios.apprun import add_thermal_state
from harness.devices.ios.device import IosDevice

# keys and units as diagnostics_relay reports AppleSmartBattery (values made up, shape real)
DISCHARGING = {"Temperature": 3125, "Voltage": 3912, "InstantAmperage": -412, "Amperage": -380,
               "CurrentCapacity": 76, "IsCharging": False, "ExternalConnected": False}


def by_name(readings):
    return {r.name: r for r in readings}


def test_battery_units_and_sign_as_on_android():
    r = by_name(S.battery_readings(DISCHARGING, simulated=False))
    assert r["battery_temp_c"].value == pytest.approx(31.25)
    assert r["battery_voltage_v"].value == pytest.approx(3.912)
    assert r["battery_current_ua"].value == pytest.approx(-412000)  # negative: discharging
    assert r["battery_power_w"].value == pytest.approx(0.412 * 3.912)  # drawn: positive
    assert r["battery_level_pct"].value == 76
    assert not any(x.simulated for x in r.values())


def test_instant_amperage_missing_falls_back_to_amperage():
    b = dict(DISCHARGING)
    del b["InstantAmperage"]
    assert by_name(S.battery_readings(b, True))["battery_current_ua"].value == -380000


def test_charging_power_is_not_the_draw():
    b = dict(DISCHARGING, IsCharging=True, InstantAmperage=900)
    r = by_name(S.battery_readings(b, False))
    assert r["battery_power_w"].value is None and "charging" in r["battery_power_w"].reason


def test_missing_battery_is_skipped_with_the_reason():
    r = S.battery_readings(None, True)
    assert all(x.value is None and "AppleSmartBattery" in x.reason for x in r)
    r = by_name(S.battery_readings({"Voltage": 3900}, False))
    assert r["battery_temp_c"].value is None and "Temperature" in r["battery_temp_c"].reason
    assert r["battery_voltage_v"].value == pytest.approx(3.9)
    assert r["battery_temp_c"].value is None


def test_app_usage_from_sysmontap_rows():
    rows = [{"pid": 7, "cpuUsage": 90.0, "physFootprint": 50 * 2**20},
            {"pid": 8, "cpuUsage": 5.0, "physFootprint": 900 * 2**20},
            {"pid": 7, "cpuUsage": 110.0, "physFootprint": 64 * 2**20}]
    u = S.app_usage(rows, 7)
    assert u == {"samples": 2, "cpu_mean_pct": 100.0, "cpu_max_pct": 110.0,
                 "footprint_peak_mb": 64.0}
    assert S.app_usage(rows, 99)["footprint_peak_mb"] is None


def test_thermal_state_joins_the_summary_line():
    tel = '{"type": "frame"}\n{"type": "summary", "frames": 3}\n'
    out = add_thermal_state(tel, {"thermal_state_max": "serious", "thermal_state_end": "fair"})
    last = json.loads(out.strip().splitlines()[-1])
    assert last["thermal_state"] == "serious" and last["thermal_state_end"] == "fair"
    assert out.splitlines()[0] == '{"type": "frame"}'
    # no summary (a crash): unchanged
    assert add_thermal_state('{"type": "frame"}\n', {"thermal_state_max": "fair"}) == \
        '{"type": "frame"}\n'
    assert S.thermal_level("critical") == 3 and S.thermal_level("bogus") is None


def test_app_arguments_follow_the_contract(request):
    def make(udid, values):
        d = IosDevice(udid, values, None)
        request.addfinalizer(d.close)
        return d
    dev = make("00008110-0000000000000001", {"ProductType": "iPhone14,6", "SwapLabVirtual": True})
    args = dev.app_arguments(["./bin/swap_runner", "--mode", "tiny", "--telemetry", "-"], "R")
    assert args == ["--swaplab-run-dir", "R", "--mode", "tiny", "--telemetry", "R/telemetry.jsonl"]
    assert dev.kind == "virtual" and dev.abi == "x86_64" and dev.platform == "ios"
    real = make("00008130-0000000000000002", {"ProductType": "iPhone16,1",
                                               "ProductVersion": "17.5"})
    assert real.kind == "ios" and real.abi == "ios-arm64" and real._needs_tunnel()
    assert not make("x", {"ProductVersion": "16.7.10"})._needs_tunnel()
    # the user-set device name never brings control characters along
    assert make("y", {"DeviceName": "Bob\x1b[2J's\nphone"}).name == "Bob[2J'sphone"
