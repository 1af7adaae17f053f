"""The run record: atomic writes, interrupted detection, and a run killed mid-way keeps
what it measured."""

import itertools
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
                    json.loads(record_path.read_text())
                except json.JSONDecodeError:
                    pytest.fail("record.json was not valid JSON mid-run")
                if len(load_record(record_path.parent)["measurements"]) == 2:
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
        rec.finish()
        old = json.loads(reader.read())
    assert old["measurements"] == [] and old["status"] == "running"
    assert os.stat(rec.path).st_ino != before
    assert len(json.loads(rec.path.read_text())["measurements"]) == 1
    assert sorted(f.name for f in rec.run_dir.iterdir()) == ["record.journal", "record.json"]


# --- the journal: O(1) per result, record.json produced from it -------------------------

def test_a_result_appends_one_line_and_leaves_record_json_alone(tmp_path):
    rec = RunRecord.create(tmp_path, {"host": {"hostname": "h"}})
    stat = os.stat(rec.path)
    sizes = []
    for i in range(50):
        rec.add_measurement({"metric": f"m{i:03d}", "samples": [1.5] * 100})
        sizes.append(rec.journal_path.stat().st_size)
    # record.json untouched while running: each result costs one appended line, not a rewrite
    assert (os.stat(rec.path).st_ino, os.stat(rec.path).st_mtime_ns) == (stat.st_ino,
                                                                          stat.st_mtime_ns)
    steps = {b - a for a, b in itertools.pairwise(sizes)}
    assert len(steps) == 1  # the same bytes per result, the 50th as the 1st
    assert len(rec.journal_path.read_text().splitlines()) == 51
    assert [m["metric"] for m in load_record(rec.run_dir)["measurements"]] == \
        [f"m{i:03d}" for i in range(50)]
    rec.finish()
    on_disk = json.loads(rec.path.read_text())
    assert len(on_disk["measurements"]) == 50 and on_disk["status"] == "finished"
    assert on_disk["schema"] == "swaplab.record/1" and "effective_status" not in on_disk


def test_a_crash_mid_append_loses_only_that_line(tmp_path):
    rec = RunRecord.create(tmp_path, {"host": {"hostname": "h"}})
    rec.add_measurement({"metric": "a", "samples": [1.0]})
    rec.add_test("t::a", "local", "passed", 1.0)
    with open(rec.journal_path, "ab") as f:  # what a SIGKILL mid-write leaves
        f.write(b'{"op":"add_measurement","args":{"measurement":{"metric":"b","sam')
    data = load_record(rec.run_dir)
    assert [m["metric"] for m in data["measurements"]] == ["a"]
    assert data["tests"][0]["nodeid"] == "t::a" and data["status"] == "running"


def test_recover_record_rewrites_a_stale_record_json(tmp_path):
    from harness.record.run_record import recover_record

    rec = RunRecord.create(tmp_path, {"host": {"hostname": "h"}})
    rec.add_measurement({"metric": "a", "samples": [1.0]})
    os.utime(rec.path, ns=(0, 0))  # as if written long before the journal's last line
    assert json.loads(rec.path.read_text())["measurements"] == []
    assert recover_record(rec.run_dir) is True
    assert json.loads(rec.path.read_text())["measurements"][0]["metric"] == "a"
    assert recover_record(rec.run_dir) is False


def test_an_invalid_value_is_refused_and_nothing_else_lost(tmp_path):
    rec = RunRecord.create(tmp_path, {"host": {"hostname": "h"}})
    rec.add_measurement({"metric": "a", "samples": [1.0]})
    with pytest.raises(ValueError):
        rec.add_measurement({"metric": "b", "samples": [float("nan")]})
    rec.finish()
    data = load_record(rec.run_dir)
    assert [m["metric"] for m in data["measurements"]] == ["a"]
    assert json.loads(rec.path.read_text())["status"] == "finished"


FULL_DISK = r"""
import json, os, sys
from pathlib import Path
from harness.record.run_record import RunRecord, RecordWriteError, load_record
from harness.files import atomic_write_json

root = Path(sys.argv[1])
rec = RunRecord.create(root, {"host": {"hostname": "h"}})
added = 0
try:
    for i in range(10_000):
        rec.add_measurement({"metric": f"m{i}", "samples": [float(i)] * 50})
        added += 1
    sys.exit("the disk never filled")
except RecordWriteError as e:
    message = str(e)
try:
    rec.finish()
except OSError as e:
    finish_error = str(e)
else:
    finish_error = None
try:
    atomic_write_json(rec.run_dir / "trace.json", {"x": "y" * 100_000})
except OSError:
    pass
data = load_record(rec.run_dir)
print(json.dumps({"added": added, "message": message, "finish_error": finish_error,
                  "recorded": len(data["measurements"]),
                  "metrics_in_order": [m["metric"] for m in data["measurements"]]
                  == [f"m{i}" for i in range(added)],
                  "files": sorted(os.listdir(rec.run_dir))}))
"""


def test_full_disk_keeps_what_was_measured_and_leaves_no_temp_files(tmp_path):
    """A tiny tmpfs in a private mount namespace (`unshare -m`, root here): the journal
    append that hits ENOSPC fails with a message naming the file, record.json / trace.json
    writes leave no .tmp files, and everything appended before is still there."""
    import shutil

    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a tmpfs privately")
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(FULL_DISK)
    repo = Path(__file__).resolve().parents[1]
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c",
         f'mount -t tmpfs -o size=64k tmpfs "$1" && exec "{sys.executable}" "$2" "$1"',
         "sh", str(disk), str(script)],
        capture_output=True, text=True, timeout=120, check=False, cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)})
    if r.returncode != 0 and "mount" in r.stderr and "permission" in r.stderr.lower():
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["added"] > 10
    assert "record.journal: cannot append to the run record" in out["message"]
    assert "No space left on device" in out["message"]
    assert out["recorded"] == out["added"] and out["metrics_in_order"]
    assert out["files"] == ["record.journal", "record.json"]  # no .record.json.*.tmp
