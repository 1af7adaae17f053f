import json

import pytest

from harness.runner.telemetry import STAGES, TelemetryError, parse_telemetry


def frame(i, warmup=False, faces=1, total=10_000_000):
    stage = {s: 1_000_000 for s in STAGES}
    stage["total"] = total
    return {"type": "frame", "schema": "swaplab.telemetry/1", "index": i, "warmup": warmup,
            "source_frame": 0, "faces": faces, "mode": "small", "enhanced": False,
            "detected": True, "stage_ns": stage, "de_before": 7.1, "de_after": 3.2,
            "tone_compensated": True, "rss_kb": 40000, "temp_c": None}


def summary(frames=2, warmup=1):
    return {"type": "summary", "schema": "swaplab.telemetry/1",
            "build": {"abi": "x86_64"}, "mode": "small", "blend": "poisson",
            "model_load_ms": 12.3, "first_frame_ms": 45.6, "peak_rss_kb": 51234,
            "frames": frames, "warmup_frames": warmup, "frames_without_face": 0,
            "mode_switches": 0, "wall_ms": 1234.5}


def lines(*objs):
    return "\n".join(json.dumps(o) for o in objs) + "\n"


def test_valid_telemetry_excludes_warmup():
    t = parse_telemetry(lines(frame(0, True, total=99_000_000), frame(1, total=10_000_000),
                              frame(2, faces=0, total=20_000_000), summary()), "local:t.jsonl")
    assert t.stage_ms()["total"] == [10.0, 20.0]
    assert t.detection_rate() == 0.5
    assert len(t.warmup) == 1 and t.summary["peak_rss_kb"] == 51234


@pytest.mark.parametrize("text, needle", [
    (lines(frame(0), summary(frames=1))[:-2] + "x\n", ":2: not JSON"),
    (lines({**frame(0), "schema": "other/2"}, summary(frames=1)), ":1: schema 'other/2'"),
    (lines(frame(0), {**frame(1), "stage_ns": {"total": -1}}, summary()), ":2: stage_ns.decode"),
    (lines(frame(0), {**frame(1), "faces": "1"}, summary()), ":2: field 'faces'"),
    (lines(frame(0)), "no summary line"),
    (lines(frame(0), summary(frames=3)), "summary says 3 measured frames"),
    (lines(frame(0), summary(frames=1), frame(1)), ":3: line after the summary"),
])
def test_errors_name_source_and_line(text, needle):
    with pytest.raises(TelemetryError) as e:
        parse_telemetry(text, "sd6-serial:latency.telemetry.jsonl")
    assert "sd6-serial:latency.telemetry.jsonl" in str(e.value)
    assert needle in str(e.value)


@pytest.mark.parametrize("value", [-1, -10**9, 1.5, True, None, "5"])
def test_bad_stage_ns_is_refused(value):
    bad = frame(1)
    bad["stage_ns"]["blend"] = value
    with pytest.raises(TelemetryError, match=r"dev:t.jsonl:2: stage_ns\.blend: expected "
                                             r"integer >= 0"):
        parse_telemetry(lines(frame(0, True), bad, summary(1, 1)), source="dev:t.jsonl")


def test_cold_start_is_load_plus_source_plus_first_frame():
    """One definition of cold start, the runner README's: process start to the first
    swapped frame (the source face is analysed before any frame can be swapped)."""
    from harness.runner.invoke import RunnerRun

    s = dict(summary(1, 1), model_load_ms=10.0, source_ms=5.0, first_frame_ms=40.0)
    t = parse_telemetry(lines(frame(0, True), frame(1), s))
    run = RunnerRun(("x",), None, t, t.stage_ms())
    assert run.cold_start_ms == pytest.approx(55.0)
    with pytest.raises(TelemetryError, match="source_ms"):
        parse_telemetry(lines(frame(0, True), frame(1), dict(s, source_ms="5")))
