"""SIGTERM (how CI cancels a job) and Ctrl-C mid-run: the run finishes its record as
"interrupted", renders index.html, benchmarks.json and trace.json, keeps every measurement
made before, runs the interrupted test's clean-up, and exits non-zero."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from harness.record.run_record import load_record

pytestmark = pytest.mark.usefixtures("local_only")

SUITE = """
import time

def test_first(swap, recorder):
    run = swap("first", warmup=1, frames=2)   # the real runner: telemetry for trace.json
    recorder.measure("latency_total_ms", run.stage_ms["total"])

def test_second(recorder, tmp_path_factory):
    recorder.measure("memory_peak_mb", 42.0)
    marker = tmp_path_factory.getbasetemp().parent / "cleanup-ran"
    try:
        (marker.parent / "sleeping").write_text("")
        time.sleep(120)
    finally:
        marker.write_text("stopped what it started")
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_mid_run_finishes_record_and_report(tmp_path, sig):
    (tmp_path / "test_slow.py").write_text(SUITE)
    out = tmp_path / "out"
    base = tmp_path / "pytest-tmp"
    base.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_slow.py",
         "--lab-out", str(out), "--basetemp", str(base / "b")], cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        # a shell's background job (nohup ... &) inherits SIGINT ignored, and Python keeps
        # it so: Ctrl-C must reach the run as it does from a terminal
        # (preexec_fn: the test starts no threads before this call)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # noqa: PLW1509
    try:
        # generous: the loop ends as soon as the run is where it must be; on a loaded 2-core
        # machine the run's start (collection, runner build check, device) took 75 s
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            found = list(out.glob("runs/*/record.json"))
            if found:
                try:  # the record as it stands mid-run (record.json + the journal)
                    data = load_record(found[0])
                except (OSError, ValueError):
                    data = {"measurements": []}
                if len(data["measurements"]) == 2 and (base / "sleeping").exists():
                    break
            time.sleep(0.2)
        else:
            proc.send_signal(signal.SIGKILL)
            pytest.fail("the run never recorded its second measurement:\n"
                        + proc.communicate(timeout=60)[0][-3000:])
        proc.send_signal(sig)
        stdout, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode != 0, stdout[-3000:]
    run_dir = found[0].parent
    data = json.loads((run_dir / "record.json").read_text())
    assert data["status"] == "interrupted" and data["finished"], stdout[-3000:]
    assert [m["metric"] for m in data["measurements"]] == ["latency_total_ms", "memory_peak_mb"]
    assert [t["outcome"] for t in data["tests"]][:1] == ["passed"]
    for name in ("index.html", "benchmarks.json", "trace.json"):
        assert (run_dir / name).is_file(), name
    assert "interrupted" in (run_dir / "index.html").read_text()
    assert (base / "cleanup-ran").is_file(), stdout[-3000:]
    assert (base / "cleanup-ran").read_text() == "stopped what it started"
    assert stdout.strip().splitlines()[-1].startswith("SwapLab report: "), stdout[-2000:]
