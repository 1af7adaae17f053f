"""harness.record.recorder: measurements go to the record at once, with unit, direction and
the verdict against the profile's target; missed targets fail with device, metric, value
and target."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.profiles import Profile, RunSettings
from harness.record.recorder import Recorder
from harness.record.run_record import RunRecord, load_record
from harness.record.units import format_value, unit_of


def _profile(**targets) -> Profile:
    return Profile(name="p", marker="p", description="", platform="linux",
                   match={"kind": ("local",)}, targets=targets, run=RunSettings(), virtual={},
                   path=Path("p.toml"))


def _recorder(tmp_path, profile=None) -> Recorder:
    rec = RunRecord.create(tmp_path, {})
    return Recorder(rec, "suites/test_x.py::test_y[d1]", "d1", "Device One", profile)


def test_measure_is_in_the_record_at_once(tmp_path):
    r = _recorder(tmp_path)
    m = r.measure("latency_total_ms", [3.0, 1.0, float("nan"), 2.0], variant="mode=tiny")
    assert m.unit == "ms" and m.direction == "lower" and m.samples == [3.0, 1.0, 2.0]
    assert m.summary["n"] == 3 and m.summary["p50"] == 2.0
    saved = load_record(r.record.run_dir)["measurements"]
    assert [x["metric"] for x in saved] == ["latency_total_ms"]
    assert saved[0]["extra"] == {"variant": "mode=tiny"} and saved[0]["target"] is None


def test_target_verdict_and_failure_message(tmp_path):
    r = _recorder(tmp_path, _profile(latency_p95_ms=10.0))
    ok = r.measure("latency_total_ms", [5.0] * 20)
    assert ok.target["verdict"] == "pass" and not r.failures()
    bad = r.measure("latency_total_ms", [50.0] * 20)
    assert bad.target == {"key": "latency_p95_ms", "statistic": "p95", "value": 10.0,
                          "measured": 50.0, "verdict": "fail"}
    with pytest.raises(AssertionError) as e:
        r.assert_targets()
    msg = str(e.value)
    assert "device 'd1' (Device One), profile p: latency_total_ms p95 = 50.0 ms" in msg
    assert "target latency_p95_ms <= 10.0 ms" in msg
    # check_target=False: recorded, never judged
    assert r.measure("latency_total_ms", [99.0], check_target=False).target is None


def test_time_and_memory_targets_are_not_checked_on_an_emulated_cpu(tmp_path):
    # the arm64 virtual device runs the phone build under qemu-aarch64: 120 ms is the
    # phone's target, and qemu's time says nothing about it
    rec = RunRecord.create(tmp_path, {})
    r = Recorder(rec, "suites/test_x.py::test_y[d1]", "d1", "Device One",
                 _profile(latency_p95_ms=10.0, memory_peak_mb=1.0,
                          low_light_detection_rate_min=0.9),
                 cpu_emulation="qemu-aarch64 on x86_64")
    slow = r.measure("latency_total_ms", [50.0] * 20)
    big = r.measure("memory_peak_mb", [400.0])
    assert slow.target["verdict"] == big.target["verdict"] == "not checked"
    assert slow.target["measured"] == 50.0 and "qemu-aarch64 on x86_64" in slow.target["reason"]
    # what the pipeline computes is the same under emulation: still judged
    assert r.measure("low_light_detection_rate_enhanced", [0.5]).target["verdict"] == "fail"
    assert [m.metric for m in r.failures()] == ["low_light_detection_rate_enhanced"]
    saved = load_record(rec.run_dir)["measurements"]
    assert saved[0]["target"]["verdict"] == "not checked"


def test_bad_direction_is_refused(tmp_path):
    with pytest.raises(ValueError, match="direction"):
        _recorder(tmp_path).measure("x_ms", [1.0], direction="sideways")


def test_units():
    assert [unit_of(m) for m in ("a_ms", "b_mb", "power_avg_w", "temp_max_c", "drop_rate",
                                 "faces")] == ["ms", "mb", "w", "c", "ratio", ""]
    assert format_value(None, "ms") == "n/a"
    assert format_value(12.34, "ms") == "12.3 ms" and format_value(1.234, "mb") == "1.23 MB"
    assert format_value(0.125, "ratio") == "12.5%" and format_value(45.0, "c") == "45.0 °C"
    assert math.isnan(float("nan"))  # NaN samples are dropped above, never formatted
