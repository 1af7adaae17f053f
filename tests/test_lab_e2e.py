"""The README's lab command, end to end: `./run lab` with the shipped profiles and the real
runner, models and inputs on this host. Every suite runs (latency, cold start, memory,
modes, low light, quality, power); the record, the report and the exit status say so.

This is the run a new user makes first; no stand-in runner, no fast profile."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from helpers.paths import REPO

#: every suite that must pass on this host with the shipped host profile
HOST_SUITES = {"test_latency.py", "test_cold_start.py", "test_memory.py", "test_modes.py",
               "test_low_light.py", "test_quality.py", "test_power.py", "test_gpu.py"}
#: suites that skip on this host, and what their reason must name
HOST_SKIPS = {"test_thermal.py": "thermal_limit_c", "test_ab.py": "--ab-runner"}
#: the product's colour gate (design: tone compensation when CIEDE2000 > 5)
TONE_GATE_DE = 5.0


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory, runner_binary):
    # runner_binary: a cold cache builds ncnn and the runner first (minutes), outside the
    # lab's own time limit: the limit is for measuring, not for compiling
    out = tmp_path_factory.mktemp("lab") / "reports"
    env = dict(os.environ, SWAPLAB_BACKENDS="local", OMP_WAIT_POLICY="PASSIVE")
    r = subprocess.run(["bash", str(REPO / "run"), "lab", "--lab-out", str(out),
                        "-p", "no:cacheprovider", "-rs"],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=2400,
                       check=False)
    return r, out


def test_lab_command_ends_with_the_report_path(lab_run):
    r, out = lab_run
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("SwapLab report: ") and last.endswith("index.html"), last
    report = Path(last.split(": ", 1)[1])
    report = report if report.is_absolute() else REPO / report
    assert report.resolve() == (out / "latest" / "index.html").resolve()


def test_every_suite_ran_with_the_real_runner(lab_run):
    _, out = lab_run
    record = json.loads((out / "latest" / "record.json").read_text())
    assert record["status"] == "finished"
    assert record["devices"]["local"]["profile"] == "host"
    build = record["environment"]["runner_builds"]["x86_64"]
    assert build["abi"] == "x86_64" and build.get("compiler") != "fake"
    by_file: dict[str, set[str]] = {}
    for t in record["tests"]:
        by_file.setdefault(t["nodeid"].split("::")[0].rsplit("/", 1)[-1], set()).add(
            t["outcome"])
    for suite in HOST_SUITES:
        assert by_file.get(suite) == {"passed"}, (suite, by_file.get(suite), record["tests"])
    for suite, needle in HOST_SKIPS.items():
        skipped = [t for t in record["tests"] if t["nodeid"].startswith(f"suites/{suite}")]
        assert skipped and all(t["outcome"] == "skipped" and needle in t["message"]
                               for t in skipped), skipped
    metrics = {m["metric"] for m in record["measurements"]}
    for metric in ("latency_total_ms", "latency_blend_ms", "cold_start_ms", "model_load_ms",
                   "memory_peak_mb", "low_light_detection_rate_enhanced"):
        assert metric in metrics, metric
    modes = {m["extra"].get("variant") for m in record["measurements"]
             if m["metric"] == "latency_total_ms"}
    assert {"mode=tiny", "mode=small", "mode=base"} <= modes, modes
    assert any(m["metric"].startswith("quality_") for m in record["measurements"])
    # how the runner ran goes with each measurement (runs with other settings are not
    # comparable: harness.runner.settings)
    lat = next(m for m in record["measurements"] if m["metric"] == "latency_total_ms"
               and m["test"].startswith("suites/test_latency.py"))
    assert lat["extra"]["runner"]["threads"] == "1" and lat["extra"]["runner"]["mode"] == "small"
    assert record["devices"]["local"]["runner_settings"]["build.abi"] == "x86_64"
    # the host has no battery: the sustained run records latency over time (and CPU
    # energy where RAPL is readable)
    assert any(m["metric"] == "latency_total_ms" for m in record["measurements"]
               if m["test"].startswith("suites/test_power.py")), sorted(metrics)


def test_report_shows_verdicts_frames_and_charts(lab_run):
    _, out = lab_run
    run_dir = (out / "latest").resolve()
    html = (run_dir / "index.html").read_text()
    assert 'class="verdicts"' in html and "latency_total_ms" in html
    assert html.count("<svg") >= 3 and "<img" in html
    for name in ("benchmarks.json", "trace.json"):
        json.loads((run_dir / name).read_text())
    record = json.loads((run_dir / "record.json").read_text())
    frames = [a for a in record["artifacts"] if a["kind"] == "output_frame"]
    assert frames and all((run_dir / a["path"]).is_file() for a in frames)


def test_runner_tone_gate_is_de_5(lab_run):
    """Every frame the real runner blended says whether it compensated the tone: exactly
    those whose dE before exceeded 5 (the product's colour gate)."""
    _, out = lab_run
    run_dir = (out / "latest").resolve()
    record = json.loads((run_dir / "record.json").read_text())
    checked = 0
    for a in record["artifacts"]:
        if a["kind"] != "telemetry":
            continue
        for line in (run_dir / a["path"]).read_text().splitlines():
            f = json.loads(line)
            if f.get("type") != "frame" or f.get("de_before") is None:
                continue
            assert f["tone_compensated"] == (f["de_before"] > TONE_GATE_DE), (a["path"], f)
            checked += 1
    assert checked > 0
