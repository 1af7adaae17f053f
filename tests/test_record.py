"""The run record: atomic writes, interrupted detection, and a run killed mid-way keeps
what it measured."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.files import atomic_write_json
from harness.record.run_record import RunRecord, effective_status, load_record

pytestmark = pytest.mark.usefixtures("local_only")


def test_atomic_write_leaves_no_temp(tmp_path):
    p = tmp_path / "x.json"
    atomic_write_json(p, {"a": 1})
    atomic_write_json(p, {"a": 2})
    assert json.loads(p.read_text()) == {"a": 2}
    assert [f.name for f in tmp_path.iterdir()] == ["x.json"]


def test_record_is_saved_after_every_result(tmp_path):
    rec = RunRecord.create(tmp_path, {"host": {"hostname": "h"}})
    assert load_record(rec.run_dir)["status"] == "running"
    rec.add_measurement({"metric": "latency_total_ms", "samples": [1.0]})
    assert len(load_record(rec.path)["measurements"]) == 1
    rec.add_test("t::x", "local", "passed", 1.0)
    rec.finish()
    data = load_record(rec.run_dir)
    assert data["status"] == "finished" and data["finished"] and data["tests"][0]["nodeid"] == "t::x"
    assert data["effective_status"] == "finished"


def test_running_record_of_dead_process_is_interrupted(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    data = {"status": "running", "process": {"hostname": os.uname().nodename, "pid": proc.pid}}
    assert effective_status(data) == "interrupted"
    data["process"]["pid"] = os.getpid()
    assert effective_status(data) == "running"
    data["process"]["hostname"] = "another-host"
    assert effective_status(data) == "running"


SLOW_SUITE = """
import time

def test_first(recorder):
    recorder.measure("latency_total_ms", [10.0, 11.0, 12.0])

def test_second(recorder):
    recorder.measure("memory_peak_mb", 42.0)
    time.sleep(120)
"""


def test_record_survives_sigkill_mid_run(tmp_path):
    (tmp_path / "test_slow.py").write_text(SLOW_SUITE)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "test_slow.py",
         "--lab-out", str(out)], cwd=tmp_path, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, start_new_session=True)
    record_path = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = list(out.glob("runs/*/record.json"))
            if found:
                record_path = found[0]
                try:
                    data = json.loads(record_path.read_text())
                except json.JSONDecodeError:
                    pytest.fail("record.json was not valid JSON mid-run")
                if len(data["measurements"]) == 2:
                    break
            time.sleep(0.2)
        else:
            pytest.fail("the run never recorded its second measurement")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    data = load_record(record_path)
    assert data["status"] == "running" and data["finished"] is None
    assert data["effective_status"] == "interrupted"
    assert [m["metric"] for m in data["measurements"]] == ["latency_total_ms", "memory_peak_mb"]
    assert data["measurements"][0]["samples"] == [10.0, 11.0, 12.0]
    assert data["measurements"][0]["summary"]["p50"] == 11.0
    assert [t["outcome"] for t in data["tests"]] == ["passed"]
    assert data["devices"]["local"]["profile"] == "host"
    assert not list(record_path.parent.glob(".*.tmp"))

    # the report of the killed run renders and says it was interrupted
    r = subprocess.run([sys.executable, "-m", "harness.cli", "report", str(record_path.parent)],
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    html = Path(r.stdout.strip()).read_text()
    assert "interrupted" in html and "latency_total_ms" in html


def test_save_replaces_the_file_never_writes_in_place(tmp_path):
    """A reader that opened record.json before a save still reads the complete old file:
    the save wrote a new file and renamed it over (an in-place write would truncate the
    reader's file and keep its inode)."""
    rec = RunRecord.create(tmp_path, {"host": {"hostname": "h"}})
    before = os.stat(rec.path).st_ino
    with open(rec.path, encoding="utf-8") as reader:
        rec.add_measurement({"metric": "latency_total_ms", "samples": [1.0] * 1000})
        old = json.loads(reader.read())
    assert old["measurements"] == []
    assert os.stat(rec.path).st_ino != before
    assert len(load_record(rec.path)["measurements"]) == 1
    assert sorted(f.name for f in rec.run_dir.iterdir()) == ["record.json"]
