"""harness.power.throttle: throttle detection (thermal status, cluster frequency drop, same-work
slowdown) and the replay check of the runner's thermal fallback - on scripted traces and
on telemetry recorded from the real swap_runner (tests/fixtures/traces/SOURCES.md)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from harness.devices.android.sampler import parse_samples
from harness.power import metrics as PW
from harness.power import throttle as TH
from harness.runner.telemetry import parse_telemetry

TRACES = Path(__file__).parent / "fixtures" / "traces"
LITTLE, BIG = (0, 1, 2, 3), (4, 5, 6, 7)


def sample(t, status=0, little=1804800, big=2208000):
    khz = {c: little for c in LITTLE} | {c: big for c in BIG}
    return {"t_s": 100.0 + t, "thermal_status": status, "cpu_khz": khz, "temps_c": {"cpu": 40.0},
            "unknown": {}}


def frames_at(ms_list, mode="small"):
    return [{"index": i, "warmup": False, "mode": mode, "stage_ns": {"total": int(ms * 1e6)}}
            for i, ms in enumerate(ms_list)]


def test_clean_run_is_not_affected():
    samples = [sample(t) for t in range(10)]
    frames = frames_at([100.0] * 20)
    r = TH.detect(samples, frames, [0.5 * (i + 1) for i in range(20)])
    assert not r.affected and r.first_throttle_s is None and r.affected_frames == 0
    assert r.as_dict()["frames"] == 20


def test_thermal_status_above_none_flags_the_frames_from_then_on():
    samples = [sample(t, status=0 if t < 4 else 2) for t in range(10)]
    frames = frames_at([100.0] * 20)
    r = TH.detect(samples, frames, [0.5 * (i + 1) for i in range(20)])
    assert r.affected and r.first_throttle_s == 4.0
    assert r.events[0]["kind"] == "thermal_status" and "MODERATE" in r.events[0]["detail"]
    assert [bool(f) for f in r.frame_flags] == [False] * 7 + [True] * 13
    assert all(f == ["thermal_status"] for f in r.frame_flags[7:])


def test_cluster_frequency_drop_but_not_idle():
    # big cluster capped to 70% at t=5 (throttled); little cluster idles at t=2..3 (not)
    samples = [sample(t, little=300000 if t in (2, 3) else 1804800,
                      big=2208000 if t < 5 else 1545600) for t in range(10)]
    frames = frames_at([100.0] * 10)
    r = TH.detect(samples, frames, [i + 0.5 for i in range(10)])
    assert [e["kind"] for e in r.events] == ["freq_drop"] and r.first_throttle_s == 5.0
    assert "cpus 4-7" in r.events[0]["detail"] and "30% below" in r.events[0]["detail"]
    assert [bool(f) for f in r.frame_flags] == [False] * 5 + [True] * 5
    # pinned to the little cluster only: the big cluster's drop does not count
    assert not TH.detect(samples, frames, [i + 0.5 for i in range(10)], cpus=[0, 1]).affected


def test_same_work_slowing_down_is_flagged_per_mode():
    ms = [100.0] * 10 + [130.0] * 10              # +30% with the same work
    frames = frames_at(ms)
    r = TH.detect([sample(t) for t in range(20)], frames, [i + 0.1 for i in range(20)],
                  slowdown_fraction=0.15, window=5, baseline_frames=5)
    assert [e["kind"] for e in r.events] == ["slowdown"]
    flags = [bool(f) for f in r.frame_flags]
    assert flags[:12] == [False] * 12 and all(flags[13:])
    # +10% stays under the 15% fraction; a mode change is not a slowdown
    assert not TH.detect([], frames_at([100.0] * 10 + [110.0] * 10),
                         [float(i) for i in range(20)]).affected
    mixed = frames_at([100.0] * 10, "tiny") + frames_at([300.0] * 10, "base")
    assert not TH.detect([], mixed, [float(i) for i in range(20)]).affected


def test_flags_split_latency_into_affected_and_clean():
    samples = [sample(t, status=0 if t < 5 else 1) for t in range(10)]
    frames = frames_at([100.0] * 5 + [120.0] * 5)
    r = TH.detect(samples, frames, [i + 0.5 for i in range(10)])
    split = PW.latency_by_mode(frames, [bool(f) for f in r.frame_flags])
    assert split == {"small": [100.0] * 5, "small:affected": [120.0] * 5}


def test_recorded_virtual_trace_cooling_is_not_throttling():
    """Recorded from the virtual device: starts hot (66 C) and cools; thermal status is
    not in the sampler's output, clusters go from idle to busy - nothing throttled."""
    samples = parse_samples((TRACES / "virtual_sampler_kernel_rule.txt").read_text())
    r = TH.detect(samples, [], [])
    assert not r.affected, r.reasons
    assert TH.clusters_of(samples) == {0: [0, 1, 2, 3], 1: [4, 5, 6, 7]}


# --- thermal fallback -----------------------------------------------------------------

def recorded_fallback():
    text = (TRACES / "runner_fallback_scripted.jsonl").read_text()
    return parse_telemetry(text, source="runner_fallback_scripted.jsonl")


def test_recorded_runner_fallback_follows_the_rule():
    tel = recorded_fallback()
    c = TH.check_fallback(tel.frames, tel.mode_switches, limit_c=60, hysteresis_c=5,
                          check_every=2)
    assert c.ok, c.problems
    assert (c.steps_down, c.steps_up) == (4, 3) and c.reached_limit and c.cooled_below
    assert [(s["from"], s["to"]) for s in tel.mode_switches] == [
        ("base", "small"), ("small", "tiny"), ("tiny", "small"), ("small", "base"),
        ("base", "small"), ("small", "tiny"), ("tiny", "small")]
    lat = PW.latency_by_mode(tel.frames)
    assert set(lat) == {"tiny", "small", "base"} and sum(map(len, lat.values())) == 22


def test_fallback_check_catches_a_missed_a_spurious_and_a_wrong_switch():
    tel = recorded_fallback()
    kw = {"limit_c": 60, "hysteresis_c": 5, "check_every": 2}
    # missed: drop the step back up at index 10 (frames keep their logged modes)
    missed = [s for s in tel.mode_switches if s["index"] != 10]
    c = TH.check_fallback(tel.frames, missed, **kw)
    assert not c.ok and any("should have switched tiny->small" in p for p in c.problems)
    # with a higher limit nothing at 61-63 C should have stepped down
    c = TH.check_fallback(tel.frames, tel.mode_switches, limit_c=70, hysteresis_c=5,
                          check_every=2)
    assert not c.ok and any("not expected" in p for p in c.problems)
    # a logged switch with the wrong reason / two steps at once
    bad = copy.deepcopy(tel.mode_switches)
    bad[0]["reason"] = "below_limit_minus_hysteresis"
    bad[1]["to"] = "base"
    c = TH.check_fallback(tel.frames, bad, **kw)
    assert not c.ok and any("expected 'small'/'above_limit'" in p for p in c.problems)
    # a frame that ran in another mode than the one in force
    frames = copy.deepcopy(tel.frames)
    frames[5]["mode"] = "base"
    c = TH.check_fallback(frames, tel.mode_switches, **kw)
    assert any("frame 5: ran in 'base'" in p for p in c.problems)


def test_fallback_never_hot_is_reported_as_such():
    frames = [{"index": i, "warmup": False, "mode": "base", "temp_c": 40.0,
               "stage_ns": {"total": 1}} for i in range(10)]
    c = TH.check_fallback(frames, [], limit_c=60, hysteresis_c=5, check_every=2)
    assert c.ok and not c.reached_limit and c.steps_down == 0 and c.max_temp_c == 40.0
    assert json.dumps(c.as_dict())


def test_a_slowdown_is_attributed_never_called_thermal_without_a_sensor():
    """The host (no thermal sensor) and a virtual device (simulated zones) slow down under
    CPU contention; that is "contention" or "unknown", never "thermal". With a measured
    sensor, a thermal status above NONE is "thermal"."""
    slow = frames_at([100.0] * 10 + [130.0] * 10)
    times = [i + 0.1 for i in range(20)]
    quiet = [sample(t) for t in range(20)]
    hot = [sample(t, status=0 if t < 8 else 2) for t in range(20)]
    r = TH.detect(quiet, slow, times, measured_thermal_sensor=False, other_cpu_cores=0.9)
    assert r.affected and (r.cause, r.thermal) == ("contention", False)
    assert "0.90 cores" in r.cause_detail and r.as_dict()["cause"] == "contention"
    r = TH.detect(hot, slow, times, measured_thermal_sensor=False, other_cpu_cores=0.0)
    assert (r.cause, r.thermal) == ("unknown", False)
    assert "no measured thermal sensor" in r.cause_detail
    r = TH.detect(hot, slow, times, measured_thermal_sensor=True, other_cpu_cores=0.9)
    assert (r.cause, r.thermal) == ("thermal", True)
    assert TH.detect(quiet, frames_at([100.0] * 20), times).cause == "none"
