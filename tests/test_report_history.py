"""History + baseline gate at session end, the full report (comparison, overlays, trends,
quality, raw links, escaping), the Perfetto trace export, and `swaplab report/compare`."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers.records import EVIL, QUOTED, make_run, seed_history

from harness.cli import main as swaplab
from harness.history.compare import finish_run, thresholds_for
from harness.history.store import history_db, import_record, list_runs
from harness.profiles import ProfileError, load_profile
from harness.record.run_record import RunRecord, load_record
from harness.report import write_reports
from harness.report.charts import cpu_freq_chart, distribution_overlay, trend_chart
from harness.report.trace import build_trace

# --- profiles: the [regression] table ---------------------------------------------------


def _profile(tmp_path, table: str) -> Path:
    p = tmp_path / "p.toml"
    p.write_text('name = "p"\nmarker = "p"\ndescription = "d"\nplatform = "linux"\n'
                 "[match]\nkind = [\"local\"]\n[targets]\n[run]\n" + table)
    return p


def test_regression_table_is_validated(tmp_path):
    prof = load_profile(_profile(tmp_path, '[regression]\nthreshold = 0.04\n'
                                           'latency_total_ms = "6%"\n'))
    assert thresholds_for({"p": prof}) == {"p:*": 0.04, "p:latency_total_ms": "6%"}
    for bad, key in (('threshold = 4', "regression.threshold"),
                     ('threshold = "lots"', "regression.threshold"),
                     ('"Bad Key" = 0.1', "regression.Bad Key")):
        with pytest.raises(ProfileError, match=re.escape(key)):
            load_profile(_profile(tmp_path, f"[regression]\n{bad}\n"))


# --- history + gate at the end of a run -------------------------------------------------


def test_finish_run_imports_and_gates(tmp_path):
    base = make_run(tmp_path, scale=1.0, seed=1)
    same = make_run(tmp_path, scale=1.0, seed=2)
    slow = make_run(tmp_path, scale=1.2, seed=3)
    db = history_db(tmp_path)
    # the 5 runs of history a "regressed" needs (the runs made here start in the same
    # second as the candidates, so they are not "before" them)
    seed_history(db, base, 5)
    c0 = finish_run(base, db=db)  # no baseline: targets only
    assert c0.baseline_run is None and c0.rows == [] and c0.exit_status == 0
    c1 = finish_run(same, db=db, baseline_spec=base.name)
    assert c1.baseline_run == base.name and c1.exit_status == 0
    tot = next(r for r in c1.rows if r.metric == "latency_total_ms")
    assert tot.verdict in ("same", "unknown")
    c2 = finish_run(slow, db=db, baseline_spec=base.name)
    tot = next(r for r in c2.rows if r.metric == "latency_total_ms")
    assert tot.verdict == "regressed" and c2.exit_status == 1
    assert any(line.startswith("REGRESSED latency_total_ms on local") for line in
               c2.gate_lines)
    json.dumps(c2.as_record(), allow_nan=False)  # storable in the strict-JSON record
    # a threshold from the profile's [regression] table lets 20% through
    c3 = finish_run(slow, db=db, baseline_spec=base.name,
                    profiles={"host": {"regression": {"latency_total_ms": 0.5}}})
    assert next(r for r in c3.rows if r.metric == "latency_total_ms").verdict \
        != "regressed"
    assert c1.ab_hint is None
    # 5% slower on a device whose runs differ by 3%: two runs cannot tell that from
    # run-to-run noise; the comparison names the A/B run that can, against the
    # baseline's commit
    noisy = tmp_path / "noisy.sqlite"
    import_record(noisy, base)
    seed_history(noisy, base, 5, noise=0.03)
    c5 = finish_run(make_run(tmp_path, scale=1.05, seed=4), db=noisy, baseline_spec=base.name)
    tot = next(r for r in c5.rows if r.metric == "latency_total_ms")
    assert tot.verdict == "unknown" and tot.reason.startswith("inconclusive")
    assert c5.ab_hint.endswith("pytest suites/test_ab.py --ab-runner " + "a" * 12)
    # an unknown baseline is reported, not raised
    c4 = finish_run(slow, db=db, baseline_spec="no-such-branch-xyz")
    assert c4.error and c4.baseline_run is None
    assert {r["run_id"] for r in list_runs(db)} >= {base.name, same.name, slow.name}


SUITE = '''
import os, random
from harness.fixtures import LAB_KEY
from harness.stats.descriptive import summarize

def test_measure(request):
    lab = request.config.stash[LAB_KEY]
    rng = random.Random(int(os.environ["SEED"]))
    s = [20.0 * float(os.environ["SCALE"]) * (1 + rng.gauss(0, 0.01)) for _ in range(60)]
    lab.record.add_measurement({"test": "t::m", "device": "local", "profile": "host",
        "metric": "latency_total_ms", "unit": "ms", "direction": "lower", "samples": s,
        "summary": summarize(s), "target": None, "time": "t", "extra": {}})
'''


def _lab_run(pytester, monkeypatch, out, scale, seed, *args):
    monkeypatch.setenv("SCALE", str(scale))
    monkeypatch.setenv("SEED", str(seed))
    result = pytester.runpytest("--lab-out", str(out), "-p", "no:randomly", *args)
    run_dir = (out / "latest").resolve()
    return result, run_dir


def test_plugin_baseline_gate_and_exit_status(pytester, monkeypatch, tmp_path, fast_profiles):
    pytester.makepyfile(test_suite=SUITE)
    out = tmp_path / "lab"
    prof = ["--profiles-dir", str(fast_profiles)]
    r1, run1 = _lab_run(pytester, monkeypatch, out, 1.0, 1, *prof)
    assert r1.ret == 0
    assert (out / "history.sqlite").is_file()
    assert load_record(run1)["comparison"]["rows"] == []
    seed_history(out / "history.sqlite", run1, 4)  # the history a "regressed" needs
    r2, run2 = _lab_run(pytester, monkeypatch, out, 1.25, 2, "--baseline", run1.name, *prof)
    rows = load_record(run2)["comparison"]["rows"]
    busy = [r["reason"] for r in rows if r["reason"].startswith("environment disturbed")]
    if busy:  # real runs on a shared machine: the gate rightly will not judge them
        pytest.skip(f"this machine was busy during the lab runs: {busy[0]}")
    assert r2.ret == 1, repr(rows) + r2.stdout.str()
    r2.stdout.fnmatch_lines(["*SwapLab gate vs baseline*", "REGRESSED latency_total_ms on local*"])
    comp = load_record(run2)["comparison"]
    assert comp["baseline_run"] == run1.name and comp["gate"]["exit_status"] == 1
    assert "REGRESSED" in (run2 / "index.html").read_text()
    r3, _run3 = _lab_run(pytester, monkeypatch, out, 1.0, 3, "--baseline", run1.name, *prof)
    assert r3.ret == 0, r3.stdout.str()
    r3.stdout.fnmatch_lines(["*no regression*"])
    r4, _ = _lab_run(pytester, monkeypatch, out, 1.0, 4, "--baseline", "nope-nothing", *prof)
    assert r4.ret == 0
    r4.stdout.fnmatch_lines(["*baseline 'nope-nothing'*"])


# --- the report ---------------------------------------------------------------------------


def test_charts_parse_and_escape():
    svg = distribution_overlay([1, 2, 3, 4], [2, 3, 4, 5], title=EVIL, labels=(EVIL, "c"))
    ET.fromstring(svg)
    assert "<script>" not in svg
    pts = [{"run_id": EVIL, "median": v, "commit": "c"} for v in (10, 10.1, 9.9, 12, 12.1, 12)]
    svg = trend_chart(pts, [{"index": 3, "change": 0.2, "run_id": EVIL}],
                      [(0, 3, 10.0), (3, 6, 12.0)], unit="ms", title=EVIL)
    root = ET.fromstring(svg)
    assert root.findall(".//{http://www.w3.org/2000/svg}line")
    assert "<script>" not in svg and "+20.0%" in svg
    assert distribution_overlay([], []) == "" and trend_chart([]) == ""
    doc = {"samples": [{"t_s": i, "cpu_khz": {EVIL: 1_800_000 - i * 1000, "4": 2_400_000}}
                       for i in range(10)], "mode_switches": [{"t_s": 3.0}]}
    svg = cpu_freq_chart(doc, EVIL)
    ET.fromstring(svg)
    assert "<script>" not in svg and svg.count("<polyline") == 2
    assert cpu_freq_chart({"samples": [{"t_s": 0, "cpu_khz": {}}]}) == ""


def _compared_run(tmp_path) -> tuple[Path, Path]:
    db = history_db(tmp_path)
    runs = [make_run(tmp_path, scale=1.0 + 0.001 * i, seed=i) for i in range(3)]
    for r in runs:
        import_record(db, r)
    seed_history(db, runs[0], 5)  # the history a "regressed" needs
    cand = make_run(tmp_path, scale=1.2, seed=9)
    comp = finish_run(cand, db=db, baseline_spec=runs[-1].name)
    data = load_record(cand)
    rec = RunRecord(cand, {k: v for k, v in data.items() if k != "effective_status"})
    rec.set_field("comparison", comp.as_record())
    return runs[-1], cand


def test_full_report_with_comparison(tmp_path):
    _base, cand = _compared_run(tmp_path)
    html = write_reports(cand).read_text()
    # verdicts first, then the per-device sections
    assert html.index('class="verdicts"') < html.index('class="comparison"') \
        < html.index('class="device"') < html.index("Per-stage breakdown")
    assert '<span class="verdict regressed">regressed</span>' in html
    assert "Latency: baseline vs this run" in html and 'class="chart overlay"' in html
    assert "Per-frame latency over time" in html and "temperature" in html and "mode" in html
    assert "Trends across runs" in html and 'class="chart trend"' in html
    assert 'src="quality/local-forward/source.jpg"' in html
    assert 'href="trace.json"' in html and 'href="record.json"' in html
    assert 'href="artifacts/local/test_latency_local/latency.telemetry.jsonl"' in html
    # every untrusted string is escaped: device name, properties, file names
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert QUOTED not in html
    assert "quality/local-forward/it%27s%20%22q%22%20%3Cb%3E.png" in html  # a URL, encoded
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "<script" not in html.lower()  # offline, no scripts at all
    for svg in re.findall(r"<svg.*?</svg>", html, re.DOTALL):
        ET.fromstring(svg)


def test_report_without_history_or_baseline(tmp_path):
    run = make_run(tmp_path / "x", evil=False)
    html = write_reports(run).read_text()
    assert 'class="device"' in html and "Trends across runs" not in html
    assert 'class="comparison"' not in html


# --- Perfetto / Chrome trace ---------------------------------------------------------------


def test_trace_export(tmp_path):
    run = make_run(tmp_path)
    write_reports(run)
    doc = json.loads((run / "trace.json").read_text())
    ev = doc["traceEvents"]
    names = {(e["name"], e["args"]["name"]) for e in ev if e["ph"] == "M"
             and e["name"] in ("process_name", "thread_name")}
    assert ("process_name", f"local {EVIL}") in names
    assert ("thread_name", "test_latency[local] · latency") in names
    frames = [e for e in ev if e["ph"] == "X" and e["cat"] == "frame"]
    stages = [e for e in ev if e["ph"] == "X" and e["cat"] == "stage"]
    assert len(frames) == 14 and sum("warm-up" in f["name"] for f in frames) == 2
    assert {s["name"] for s in stages} >= {"decode", "detect", "blend", "other"}
    for f in frames:  # stages nest inside their frame; ts/dur in microseconds
        inner = [s for s in stages if f["ts"] <= s["ts"] < f["ts"] + f["dur"] - 1e-2]
        assert inner and all(s["ts"] + s["dur"] <= f["ts"] + f["dur"] + 2e-3 for s in inner)
        assert 1000 < f["dur"] < 100_000
    assert [e["name"] for e in ev if e["ph"] == "i"] == ["mode base -> small"]
    assert all(isinstance(e["pid"], int) and isinstance(e["tid"], int) for e in ev)


def test_trace_skips_bad_telemetry(tmp_path):
    run = make_run(tmp_path)
    (run / "artifacts/local/test_latency_local/latency.telemetry.jsonl").write_text("junk\n")
    doc = build_trace(load_record(run), run)
    assert doc["metadata"]["skipped"] and not doc["traceEvents"]


# --- swaplab report / compare ----------------------------------------------------------------


def test_cli_compare_and_report(tmp_path, capsys):
    lab = tmp_path / "lab"
    base = make_run(lab, seed=1, evil=False)
    same = make_run(lab, seed=2, evil=False)
    slow = make_run(lab, scale=1.2, seed=3, evil=False)
    seed_history(history_db(lab), base, 5)  # the history a "regressed" needs
    assert swaplab(["compare", base.name, same.name, "--lab-out", str(lab)]) == 0
    out = capsys.readouterr().out
    assert "latency_total_ms on local" in out and "# baseline " + base.name in out
    assert swaplab(["compare", str(base), str(slow), "--lab-out", str(lab)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSED latency_total_ms on local" in out and "gate FAILED" in out
    assert swaplab(["compare", "nothing-like-this", slow.name, "--lab-out", str(lab)]) == 1
    assert "swaplab: error:" in capsys.readouterr().err
    # report of a run id, compared with another run
    assert swaplab(["report", slow.name, "--compare", base.name, "--lab-out", str(lab)]) == 0
    out = capsys.readouterr().out
    assert "REGRESSED latency_total_ms" in out and out.strip().endswith("index.html")
    html = (slow / "index.html").read_text()
    assert "regressed" in html and base.name in html
    assert load_record(slow)["comparison"]["baseline_run"] == base.name
    assert (slow / "trace.json").is_file() and (slow / "benchmarks.json").is_file()
    assert swaplab(["report", str(tmp_path / "nope")]) == 1
