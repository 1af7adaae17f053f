"""A/B interleaved mode on this host: --ab-runner alternates a baseline runner build with
this one in ABBA rounds; measurements carry extra["ab"]; the session compares the arms."""

import json

from conftest import REPO, run_pytest_subprocess
from harness.runner import build_runner


def test_ab_interleaved_run(tmp_path, fast_profiles):
    binary = build_runner("x86_64", progress=lambda m: None)  # cached: same build as A and B
    out = tmp_path / "out"
    r = run_pytest_subprocess(
        [str(REPO / "suites" / "test_ab.py"), "--profiles-dir", str(fast_profiles),
         "--lab-out", str(out), "--ab-runner", str(binary), "--ab-rounds", "8",
         "--ab-frames", "3", "-p", "no:randomly"], cwd=tmp_path,
        env={"SWAPLAB_BACKENDS": "local"})
    record = json.loads(((out / "latest").resolve() / "record.json").read_text())
    comp = record["comparison"]
    regressed = comp["gate"]["exit_status"] == 1
    assert r.returncode == (1 if regressed else 0), r.stdout[-3000:] + r.stderr[-2000:]
    assert "SwapLab gate (A/B interleaved)" in r.stdout
    ms = [m for m in record["measurements"] if (m.get("extra") or {}).get("ab")]
    assert len(ms) == 16
    rounds = [(m["extra"]["ab"]["round"], m["extra"]["ab"]["arm"]) for m in ms]
    assert rounds[:4] == [(0, "baseline"), (0, "candidate"), (1, "candidate"), (1, "baseline")]
    assert comp["ab"] is True and len(comp["rows"]) == 1
    row = comp["rows"][0]
    assert row["metric"] == "latency_total_ms" and row["baseline_run"].endswith(":baseline")
    assert row["verdict"] in ("same", "unknown", "improved", "regressed")
    html = ((out / "latest").resolve() / "index.html").read_text()
    assert "A/B interleaved" in html and 'class="chart overlay"' in html


def test_ab_suite_skips_without_option(tmp_path, fast_profiles):
    r = run_pytest_subprocess(
        [str(REPO / "suites" / "test_ab.py"), "--profiles-dir", str(fast_profiles),
         "--lab-out", str(tmp_path / "out"), "-rs"], cwd=tmp_path,
        env={"SWAPLAB_BACKENDS": "local"})
    assert r.returncode == 0 and "needs --ab-runner" in r.stdout, r.stdout[-2000:]
