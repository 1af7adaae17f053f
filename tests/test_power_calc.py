"""harness.power.metrics: power/energy (with vendor sign and unit quirks), temperature, frame
timeline, latency drift, per-mode split, RAPL, profile [power] settings - on recorded
traces of the virtual device's sampler and on scripted traces."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.devices.android.sampler import parse_samples
from harness.devices.base import SensorReading
from harness.power import metrics as PW

TRACES = Path(__file__).parent / "fixtures" / "traces"


def recorded(name: str) -> list[dict]:
    return parse_samples((TRACES / name).read_text())


def test_recorded_kernel_rule_and_vendor_quirks_give_the_same_power():
    """uA negative-while-discharging vs mA positive-while-discharging, milli vs deci C:
    after normalisation both read ~0.6 W idle and ~1.1-1.4 W under a busy loop."""
    a = recorded("virtual_sampler_kernel_rule.txt")
    b = recorded("virtual_sampler_vendor_quirks.txt")
    assert len(a) == len(b) == 10
    assert a[0]["battery_current_unit_seen"] == "uA" and not a[0]["battery_sign_inverted"]
    assert b[0]["battery_current_unit_seen"] == "mA" and b[0]["battery_sign_inverted"]
    for samples in (a, b):
        assert all(s["power_w"] > 0 for s in samples), "discharging power is positive"
        assert samples[0]["power_w"] == pytest.approx(0.6, abs=0.02)  # idle (p_idle_w)
        m = PW.power_metrics(samples, frames_measured=50)
        assert 0.9 < m["power_avg_w"].value < 1.4
        assert m["power_p95_w"].value >= m["power_avg_w"].value
        e = m["energy_per_frame_mj"]
        assert e.value == pytest.approx(e.extra["energy_j"] * 1000 / 50)
        t = PW.temperature_metrics(samples)
        assert t["temperature_max_c"].value == pytest.approx(66.0, abs=0.1)  # hot=66 start
        assert t["temperature_rise_c"].value < 0  # it cooled down
    pa = PW.power_metrics(a, 50)["power_avg_w"].value
    pb = PW.power_metrics(b, 50)["power_avg_w"].value
    assert pa == pytest.approx(pb, rel=0.1)


def scripted(powers, dt=1.0, status="Discharging", temps=None):
    return [{"t_s": i * dt, "power_w": p, "battery_status": status,
             "temps_c": {"cpu": (temps[i] if temps else 30.0)}, "cpu_khz": {}, "unknown": {}}
            for i, p in enumerate(powers)]


def test_energy_is_the_trapezoid_integral_and_per_frame():
    s = scripted([1.0, 2.0, 3.0, 2.0])  # 1.5 + 2.5 + 2.5 = 6.5 J over 3 s
    assert PW.energy_j([(x["t_s"], x["power_w"]) for x in s]) == pytest.approx(6.5)
    m = PW.power_metrics(s, frames_measured=13)
    assert m["power_avg_w"].value == pytest.approx(2.0)
    assert m["energy_per_frame_mj"].value == pytest.approx(500.0)
    assert m["power_p95_w"].value == pytest.approx(2.85)


def test_charging_samples_are_excluded_and_said_so():
    s = scripted([1.0, 1.0]) + [dict(x, t_s=x["t_s"] + 2, battery_status="Charging",
                                     power_w=-5.0) for x in scripted([1.0, 1.0])]
    m = PW.power_metrics(s, 10)
    assert m["power_avg_w"].value == pytest.approx(1.0)
    assert "charging" in m["power_avg_w"].reason
    only = PW.power_metrics([dict(x, battery_status="Charging") for x in s], 10)
    assert only["power_avg_w"].value is None and "charging" in only["power_avg_w"].reason


def test_no_battery_gives_no_value_with_the_reason():
    s = [{"t_s": 0.0, "power_w": None, "temps_c": {}, "cpu_khz": {},
          "unknown": {"battery_current_ua": "cat: /sys/class/power_supply/battery/current_now: "
                                            "No such file or directory",
                      "temp:cpu": "Permission denied"}}]
    m = PW.power_metrics(s, 10)
    assert all(v.value is None for v in m.values())
    assert "No such file" in m["power_avg_w"].reason
    t = PW.temperature_metrics(s)
    assert t["temperature_max_c"].value is None and "Permission denied" in t["temperature_max_c"].reason
    assert PW.power_metrics([], 1)["power_avg_w"].reason == "no sensor samples"


def test_rapl_counter_with_wraparound_and_host_samples():
    readings = [(0.0, 1_000_000.0), (1.0, 3_000_000.0), (2.0, 500_000.0)]
    # 2 J in 1 s; then a wrap at 4 J: 4 - 3 + 0.5 = 1.5 J in 1 s
    assert PW.rapl_power_series(readings, 4_000_000.0) == [(1.0, 2.0), (2.0, 1.5)]
    assert PW.rapl_power_series(readings, None) == [(1.0, 2.0)]
    host = [PW.sample_from_readings(t, [SensorReading("thermal_zone0_x86_pkg_temp_c", 50.0),
                                        SensorReading("cpu0_freq_khz", 2e6)], uj)
            for t, uj in readings]
    PW.fill_rapl_power(host, 4_000_000.0)
    assert [s["power_w"] for s in host] == [None, 2.0, 1.5]
    assert host[0]["temps_c"] == {"thermal_zone0_x86_pkg": 50.0} and host[0]["cpu_khz"] == {0: 2000000}
    none = PW.sample_from_readings(0.0, [], None, "no RAPL powercap domain")
    assert none["unknown"]["rapl_energy_uj"] == "no RAPL powercap domain"
    assert "no RAPL" in PW.power_metrics([none], 1)["power_avg_w"].reason


def frame(i, ms, mode="small", warmup=False, temp=None):
    return {"index": i, "warmup": warmup, "mode": mode, "temp_c": temp,
            "stage_ns": {"total": int(ms * 1e6)}}


def test_frame_times_end_at_wall_time():
    frames = [frame(0, 100, warmup=True), frame(1, 100), frame(2, 300)]
    t = PW.frame_times(frames, wall_ms=1000.0)  # 500 ms before the first frame
    assert t == pytest.approx([0.6, 0.7, 1.0])
    assert PW.frame_times(frames, None) == pytest.approx([0.1, 0.2, 0.5])


def test_latency_drift_first_vs_last_window():
    times = [float(i) for i in range(300)]               # 5 minutes, one frame a second
    lat = [100.0 if t < 60 else 110.0 if t < 240 else 125.0 for t in times]
    d = PW.latency_drift(times, lat, window_s=60)
    assert d.value == pytest.approx(25.0) and d.extra["window_s"] == 60
    short = PW.latency_drift([0.0, 1.0, 2.0, 3.0], [10.0, 10.0, 12.0, 12.0], window_s=60)
    assert short.extra["window_s"] == pytest.approx(1.0) and short.value == pytest.approx(20.0)
    assert PW.latency_drift([1.0], [5.0]).value is None


def test_latency_by_mode_splits_affected_frames():
    frames = [frame(0, 50, "base", warmup=True), frame(1, 50, "base"), frame(2, 30, "small"),
              frame(3, 35, "small"), frame(4, 20, "tiny")]
    assert PW.latency_by_mode(frames) == {"base": [50.0], "small": [30.0, 35.0], "tiny": [20.0]}
    split = PW.latency_by_mode(frames, [False, False, False, True, True])
    assert split == {"base": [50.0], "small": [30.0], "small:affected": [35.0],
                     "tiny:affected": [20.0]}


def test_power_settings_from_the_profile_table():
    ps = PW.power_settings({"sustained_duration_s": 900, "thermal_limit_c": 45,
                            "thermal_check_every": 5})
    assert ps.duration_s(False) == 900 and ps.duration_s(True) == 6.0
    assert ps.thermal_limit_c == 45 and ps.thermal_check_every == 5
    assert PW.power_settings(None).sustained_duration_s == 1800  # 30 minutes by default
    for bad, word in (({"sustained_duration": 1}, "unknown key"),
                      ({"thermal_limit_c": "hot"}, "expected number"),
                      ({"thermal_check_every": 1.5}, "integer"),
                      ({"sustained_duration_s": 0}, "positive")):
        with pytest.raises(PW.PowerSettingsError, match=word):
            PW.power_settings(bad, where="x.toml")
    assert math.isfinite(PW.power_settings({}).slowdown_fraction)


def test_timeseries_chart_plots_latency_power_temperature_and_mode():
    from harness.report.timeseries import timeseries_svg
    from harness.runner.telemetry import parse_telemetry

    tel = parse_telemetry((TRACES / "runner_fallback_scripted.jsonl").read_text())
    ends = PW.frame_times(tel.frames, tel.summary["wall_ms"])
    at = {f["index"]: ends[i] for i, f in enumerate(tel.frames)}
    doc = {"kind": "thermal_fallback", "device": "<dev&1>", "simulated": True,
           "limit_c": 60, "hysteresis_c": 5,
           "samples": [{"t_s": t / 4, "power_w": 1.0 + t / 10, "temp_max_c": 70 - t}
                       for t in range(4)],
           "frames": [{"t_s": ends[i], "warmup": f["warmup"], "mode": f["mode"],
                       "total_ms": f["stage_ns"]["total"] / 1e6,
                       "thermally_affected": i == 5} for i, f in enumerate(tel.frames)],
           "mode_switches": [dict(s, t_s=at[s["index"]]) for s in tel.mode_switches]}
    svg = timeseries_svg(doc)
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    for text in ("frame latency (ms)", "power (W)", "temperature (hottest zone) (C)", "mode",
                 "limit - hysteresis 55.0", "simulated sensors", "&lt;dev&amp;1&gt;",
                 "thermally affected"):
        assert text in svg, text
    assert svg.count("<polyline") == 4
    assert timeseries_svg({"samples": [], "frames": []}) == ""
    no_power = timeseries_svg(dict(doc, samples=[{"t_s": 0.0, "power_w": None,
                                                  "temp_max_c": None}]))
    assert "power (W)" not in no_power and "frame latency" in no_power


def test_repo_profiles_power_tables_are_valid():
    from harness import REPO_ROOT
    from harness.profiles import load_profiles

    profiles = load_profiles(REPO_ROOT / "device_profiles")
    for p in profiles.values():
        PW.power_settings(p.extra.get("power"), where=str(p.path))
    sd8g2 = PW.power_settings(profiles["snapdragon8gen2"].extra.get("power"))
    assert sd8g2.duration_s(False) == 1800 and sd8g2.thermal_limit_c is not None
    assert profiles["snapdragon8gen2"].targets["power_avg_w"] == 1.8
