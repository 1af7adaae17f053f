"""The report: charts are well-formed SVG, untrusted text is escaped, the pytest-benchmark
export is readable by pytest-benchmark; and the report renders for a real run."""

import json
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from helpers.lab import REPO, run_pytest_subprocess

from harness.record.run_record import RunRecord
from harness.report import write_reports
from harness.report.svg import histogram_bins, histogram_cdf, nice_ticks, stacked_bars
from harness.stats.descriptive import summarize

pytestmark = pytest.mark.usefixtures("local_only")

EVIL = '<script>alert("x")</script>'


def test_svg_charts_parse_and_escape():
    bars = stacked_bars([(EVIL, {"detect": 3.0, "blend": 5.0})], title="t & t")
    ET.fromstring(bars)
    assert "<script>" not in bars and "&lt;script&gt;" in bars
    hist = histogram_cdf([1.0, 2.0, 2.5, 3.0, 10.0], markers={"p95": 8.0, "target": 1e6})
    root = ET.fromstring(hist)
    assert root.find("{http://www.w3.org/2000/svg}polyline") is not None
    assert "off chart" in hist
    assert histogram_cdf([]) == "" and stacked_bars([]) == ""
    ET.fromstring(histogram_cdf([5.0]))


def test_histogram_bins_count_everything():
    edges, counts = histogram_bins([1, 2, 3, 4, 100])
    assert sum(counts) == 5 and len(edges) == len(counts) + 1
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]


def _synthetic_run(tmp_path) -> Path:
    rec = RunRecord.create(tmp_path, {"host": {"hostname": EVIL}, "git": {"commit": "abc"}})
    rec.add_device("local", {"kind": "local", "serial": "local", "name": EVIL, "abi": "x86_64",
                             "profile": "host", "properties": {"k": EVIL}})
    samples = [10.0, 12.0, 11.0, 30.0]
    for metric, stage in (("latency_total_ms", "total"), ("latency_detect_ms", "detect"),
                          ("latency_blend_ms", "blend")):
        rec.add_measurement({"test": "suites/test_latency.py::test_latency[local]",
                             "device": "local", "profile": "host", "metric": metric, "unit": "ms",
                             "direction": "lower", "samples": samples,
                             "summary": summarize(samples),
                             "target": {"key": "latency_p95_ms", "statistic": "p95",
                                        "value": 20.0, "measured": 27.3, "verdict": "fail"}
                             if stage == "total" else None,
                             "time": "t", "extra": {"variant": "mode=small", "stage": stage}})
    img = rec.run_dir / "artifacts" / "local" / "out_1.jpg"
    img.parent.mkdir(parents=True)
    shutil.copy(REPO / "models" / "test_images" / "grace_hopper.jpg", img)
    rec.add_artifact("local", "t", "output_frame", img, label=EVIL)
    rec.add_test("suites/test_latency.py::test_latency[local]", "local", "failed", 1.0, EVIL)
    rec.finish()
    return rec.run_dir


def test_report_of_synthetic_run(tmp_path):
    run_dir = _synthetic_run(tmp_path)
    html = write_reports(run_dir).read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert html.index('class="verdicts"') < html.index("Per-stage breakdown")
    assert '<span class="verdict fail">fail</span>' in html
    assert html.count("<svg") >= 2 and 'src="artifacts/local/out_1.jpg"' in html
    bench = json.loads((run_dir / "benchmarks.json").read_text())
    assert {"machine_info", "commit_info", "benchmarks", "datetime", "version"} <= set(bench)
    b = bench["benchmarks"][0]
    for key in ("min", "max", "mean", "stddev", "rounds", "median", "iqr", "q1", "q3",
                "iqr_outliers", "stddev_outliers", "outliers", "ld15iqr", "hd15iqr", "ops",
                "total", "data"):
        assert key in b["stats"], key
    assert b["stats"]["rounds"] == 4 and b["stats"]["min"] == pytest.approx(0.010)
    # pytest-benchmark's own tool reads it
    r = subprocess.run([str(Path(sys.executable).parent / "pytest-benchmark"), "compare",
                        str(run_dir / "benchmarks.json")], capture_output=True, text=True,
                       timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    assert "latency_total_ms" in r.stdout


def test_report_renders_for_a_real_run(tmp_path, fast_profiles):
    """Runs the real runner and models on this host (few frames), then checks the report."""
    out = tmp_path / "out"
    r = run_pytest_subprocess(
        [str(REPO / "suites" / "test_latency.py"), str(REPO / "suites" / "test_memory.py"),
         "--profiles-dir", str(fast_profiles), "--lab-out", str(out), "-p", "no:randomly"],
        cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("SwapLab report: ") and last.endswith("index.html"), last
    run_dir = (out / "latest").resolve()
    assert (tmp_path / last.split(": ", 1)[1]).resolve() == (run_dir / "index.html").resolve()
    record = json.loads((run_dir / "record.json").read_text())
    assert record["status"] == "finished"
    assert record["environment"]["runner_builds"]["x86_64"]["abi"] == "x86_64"
    assert record["environment"]["models"]["manifest.json"]
    metrics = {m["metric"] for m in record["measurements"]}
    assert {"latency_total_ms", "latency_blend_ms", "memory_peak_mb"} <= metrics
    total = next(m for m in record["measurements"] if m["metric"] == "latency_total_ms")
    assert len(total["samples"]) == 3 and total["target"]["verdict"] == "pass"
    html = (run_dir / "index.html").read_text()
    assert 'class="verdicts"' in html and "latency_total_ms" in html
    assert "<svg" in html and "<img" in html
    frames = [a for a in record["artifacts"] if a["kind"] == "output_frame"]
    assert frames and all((run_dir / a["path"]).is_file() for a in frames)
    bench = json.loads((run_dir / "benchmarks.json").read_text())
    assert any(b["group"] == "latency_total_ms" for b in bench["benchmarks"])


def test_untrusted_device_serial_is_escaped(tmp_path):
    """The serial comes from the device (adb, usbmux): the report escapes it wherever it
    appears (verdict table, device sections, artifact captions)."""
    rec = RunRecord.create(tmp_path, {"host": {"hostname": "h"}, "git": {"commit": "abc"}})
    rec.add_device(EVIL, {"kind": "android", "serial": EVIL, "name": "phone", "abi": "x86_64",
                          "profile": "host"})
    samples = [10.0, 12.0, 11.0]
    rec.add_measurement({"test": f"suites/test_latency.py::test_latency[{EVIL}]",
                         "device": EVIL, "profile": "host", "metric": "latency_total_ms",
                         "unit": "ms", "direction": "lower", "samples": samples,
                         "summary": summarize(samples), "target": None, "time": "t",
                         "extra": {"stage": "total"}})
    rec.add_test(f"suites/test_latency.py::test_latency[{EVIL}]", EVIL, "passed", 1.0)
    rec.finish()
    html = write_reports(rec.run_dir).read_text()
    assert "<script>" not in html
    assert html.count("&lt;script&gt;") >= 2
