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


# --- untrusted input: only TelemetryError may come out, naming source and line ----------

@pytest.mark.parametrize("bad_line, needle", [
    ('{"type": "frame", "index": ' + "9" * 5000 + "}", ":2: integer out of 64-bit range"),
    ('{"type": "frame", "index": 1e999}', ":2: number out of range"),
    ('{"type": "frame", "index": NaN}', ":2: NaN is not a number"),
    ('{"type": "frame", "index": -Infinity}', ":2: -Infinity is not a number"),
    ('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", ":2: nested deeper than 32 levels"),
    ('{"a": "' + "[" * 100_000 + '"}', ":2: schema None"),  # brackets inside a string are text
])
def test_hostile_lines_raise_the_schema_error(bad_line, needle):
    text = lines(frame(0, True)) + bad_line + "\n" + lines(summary(0, 1))
    with pytest.raises(TelemetryError) as e:
        parse_telemetry(text, "dev:t.jsonl")
    assert f"dev:t.jsonl{needle}" in str(e.value)
    assert len(str(e.value)) < 300  # the hostile line is quoted, not dumped


def test_huge_stage_time_is_refused_not_an_overflow_later():
    bad = frame(1)
    bad["stage_ns"]["total"] = 2**64
    with pytest.raises(TelemetryError, match=r"dev:t.jsonl:2: integer out of 64-bit range"):
        parse_telemetry(lines(frame(0, True), bad, summary(1, 1)), "dev:t.jsonl")


def test_non_utf8_bytes_name_the_line():
    data = lines(frame(0, True), frame(1)).encode() + b'{"type": "summary\xff"}\n'
    with pytest.raises(TelemetryError, match=r"dev:t.jsonl:3: not UTF-8 \(byte 0xff"):
        parse_telemetry(data, "dev:t.jsonl")
    # a lone surrogate (stdout decoded with surrogateescape) is refused the same way
    text = data.decode("utf-8", "surrogateescape")
    with pytest.raises(TelemetryError, match=r"dev:t.jsonl:3: not UTF-8 text"):
        parse_telemetry(text, "dev:t.jsonl")


def test_line_separators_inside_strings_do_not_split_lines():
    s = dict(summary(1, 1), blend="poisson\u2028\x85")
    t = parse_telemetry(lines(frame(0, True), frame(1), s).replace("\\u2028", "\u2028"))
    assert t.summary["blend"] == "poisson\u2028\x85"


def _parse_and_use(text):
    """Parse, then use every derived value: a valid-looking result must not blow up later."""
    try:
        t = parse_telemetry(text, "fuzz:t.jsonl")
    except TelemetryError as e:
        assert "fuzz:t.jsonl" in str(e)
        return
    t.stage_ms(include_warmup=True), t.detection_rate(), t.rss_mb()


def test_fuzz_arbitrary_text_and_bytes():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(st.text(), st.binary()))
    def run(data):
        _parse_and_use(data)

    run()


def test_fuzz_structured_mutations():
    """Valid telemetry with any field replaced by any JSON-ish value, including the hostile
    ones (huge ints, floats out of range, NaN literals, deep nesting)."""
    from hypothesis import given, settings
    from hypothesis import strategies as st

    leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                       st.sampled_from(["9" * 400, "1e999", "NaN", "-Infinity", "[" * 3000]))
    values = st.recursive(leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                          st.dictionaries(st.text(max_size=4),
                                                                          inner, max_size=3)),
                          max_leaves=10)
    raw_literals = {"9" * 400, "1e999", "NaN", "-Infinity", "[" * 3000}

    def encode(v):
        if isinstance(v, str) and v in raw_literals:
            return v  # spliced in raw, as a device could write it
        if isinstance(v, list):
            return "[" + ",".join(encode(x) for x in v) + "]"
        if isinstance(v, dict):
            return "{" + ",".join(f"{json.dumps(k)}:{encode(x)}" for k, x in v.items()) + "}"
        return json.dumps(v)  # floats: NaN/Infinity literals as Python writes them

    @settings(max_examples=300, deadline=None)
    @given(st.integers(0, 3), st.sampled_from(["index", "warmup", "faces", "stage_ns", "mode",
                                               "rss_kb", "frames", "peak_rss_kb", "build",
                                               "model_load_ms", "type", "schema",
                                               "stage_ns.total", "stage_ns.blend"]),
           values)
    def run(which, key, value):
        objs = [frame(0, True), frame(1), frame(2), summary(2, 1)]
        obj = objs[which]
        if key.startswith("stage_ns.") and "stage_ns" in obj:
            obj["stage_ns"][key.split(".")[1]] = value
        else:
            obj[key] = value
        text = "\n".join(encode(o) for o in objs) + "\n"
        _parse_and_use(text)

    run()


def face(**over):
    f = {"box": [10.0, 20.0, 110.0, 120.0], "score": 0.93, "detected": True, "selected": True,
         "presence": 0.99, "swapped": True, "smoothed": False,
         "stage_ns": {s: 1000 for s in ("landmarks", "align", "warp", "color", "mask", "blend")},
         "color": {"de_before": 6.0, "de_after": 2.0, "tone_compensated": True}}
    f.update(over)
    return f


def frame2(i, faces):
    return {**frame(i), "schema": "swaplab.telemetry/2", "faces_swapped": 1,
            "detector": "face_detection_short_range", "light_luma": 120.5,
            "light_region": "faces", "per_face": faces}


def test_schema_2_per_face_is_read_and_schema_1_still_is():
    s2 = {**summary(frames=1, warmup=0), "schema": "swaplab.telemetry/2",
          "faces_policy": "all", "smoothing": "one-euro", "detector_fallback": None}
    t = parse_telemetry(lines(frame2(0, [face(), face(swapped=False, selected=False)]), s2))
    assert len(t.frames[0]["per_face"]) == 2
    assert parse_telemetry(lines(frame(0), summary(frames=1, warmup=0))).summary


@pytest.mark.parametrize("bad, needle", [
    (face(box=[1.0, 2.0, 3.0]), "per_face[0]: field 'box'"),
    (face(swapped="yes"), "per_face[0]: field 'swapped'"),
    (face(stage_ns={"landmarks": -5}), "per_face[0]: stage_ns.landmarks"),
    ({"box": [0, 0, 1, 1]}, "per_face[0]: missing field 'score'"),
])
def test_bad_per_face_names_the_face_and_field(bad, needle):
    s2 = {**summary(frames=1, warmup=0), "schema": "swaplab.telemetry/2"}
    with pytest.raises(TelemetryError) as e:
        parse_telemetry(lines(frame2(0, [bad]), s2), "dev:t.jsonl")
    assert needle in str(e.value) and "dev:t.jsonl:1" in str(e.value)


def test_bad_faces_policy_in_the_summary_is_refused():
    s2 = {**summary(frames=1, warmup=0), "schema": "swaplab.telemetry/2", "faces_policy": "some"}
    with pytest.raises(TelemetryError, match="faces_policy"):
        parse_telemetry(lines(frame(0), s2))


def test_telemetry_from_before_the_convert_stage_reads_it_as_0():
    """`convert` (camera input's YUV -> BGR) joined schema 1 later: an older runner's lines
    without it still parse, with convert = 0; a bad value is still refused."""
    old = frame(0)
    old["stage_ns"].pop("convert", None)
    tel = parse_telemetry(lines(frame(0, warmup=True), old, summary(frames=1, warmup=1)))
    assert tel.stage_ms()["convert"] == [0.0] and tel.frames_dropped() is None
    bad = frame(0)
    bad["stage_ns"]["convert"] = -1
    with pytest.raises(TelemetryError, match="stage_ns.convert"):
        parse_telemetry(lines(bad, summary(frames=1, warmup=0)))


def test_fallback_switch_lines_are_validated_and_kept():
    sw = {"type": "fallback_switch", "schema": "swaplab.telemetry/1", "index": 0, "rung": "fps",
          "from": "30", "to": "15", "temp_c": 80.0, "reason": "above_limit", "skipped": False}
    s = dict(summary(frames=1, warmup=0), camera_fps=30, frames_dropped=2)
    tel = parse_telemetry(lines(sw, frame(0), s))
    assert tel.fallback_switches == [sw] and tel.frames_dropped() == 2
    with pytest.raises(TelemetryError, match="rung"):
        parse_telemetry(lines(dict(sw, rung="heat"), frame(0), s))
