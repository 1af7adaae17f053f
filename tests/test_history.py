"""harness.history.store: import, idempotency, concurrency, baselines, series, compare, gate."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from helpers.git import git
from helpers.records import make_record, seed_history

from harness.history import baseline as B
from harness.history import compare as C
from harness.history import store as H
from harness.stats import thresholds as T


@pytest.fixture()
def db(tmp_path):
    return tmp_path / "reports" / "history.sqlite"


def test_import_dict_and_file_and_idempotent(db, tmp_path):
    rec = make_record("R1")
    r = H.import_record(db, rec)
    assert r == {"run_id": "R1", "measurements": 2, "replaced": False}
    run_dir = tmp_path / "reports" / "runs" / "R1"
    run_dir.mkdir(parents=True)
    (run_dir / "record.json").write_text(json.dumps(rec))
    for _ in range(3):                                   # re-import: same rows, no duplicates
        r = H.import_record(db, run_dir)
    assert r["replaced"] is True
    with H.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 1
    info = H.run_info(db, "R1")
    assert info["commit"] == "a" * 40 and info["branch"] == "main"
    assert info["devices"]["emu-1"]["name"] == "<b>evil</b>"
    assert info["record_path"].endswith("record.json")
    s = H.samples_for(db, "R1", "emu-1", "latency_total_ms")
    assert s == pytest.approx(rec["measurements"][0]["samples"])
    m = H.measurements_for(db, "R1", metric="latency_total_ms")[0]
    assert m["direction"] == "lower" and m["n"] == 100 and m["target"]["verdict"] == "pass"


def test_reimport_of_growing_record_replaces_rows(db):
    rec = make_record("R1", status="running")
    rec["measurements"] = rec["measurements"][:1]
    H.import_record(db, rec)
    rec2 = make_record("R1", status="finished")
    H.import_record(db, rec2)
    assert len(H.measurements_for(db, "R1")) == 2
    assert H.run_info(db, "R1")["status"] == "finished"


def test_import_rejects_foreign_json(db):
    with pytest.raises(ValueError, match="schema"):
        H.import_record(db, {"schema": "other/1", "run_id": "x"})
    with pytest.raises(ValueError, match="run_id"):
        H.import_record(db, {"schema": "swaplab.record/1"})


def test_sync_runs_imports_new_and_changed(db, tmp_path):
    runs = tmp_path / "reports" / "runs"
    for i in range(3):
        d = runs / f"R{i}"
        d.mkdir(parents=True)
        (d / "record.json").write_text(json.dumps(make_record(f"R{i}", seed=i)))
    (runs / "junk").mkdir()
    (runs / "junk" / "record.json").write_text("{not json")
    assert sorted(H.sync_runs(db, runs)) == ["R0", "R1", "R2"]
    assert H.sync_runs(db, runs) == []                    # unchanged: nothing to do
    p = runs / "R1" / "record.json"
    p.write_text(json.dumps(make_record("R1", seed=9)))
    os.utime(p, (1e9, 1e9))
    assert H.sync_runs(db, runs) == ["R1"]


WORKER = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, sys.argv[1])
    from harness.history import store as H
    db, prefix, n = sys.argv[2], sys.argv[3], int(sys.argv[4])
    recs = json.load(open(sys.argv[5]))
    open(sys.argv[6] + "." + prefix, "w").close()          # ready
    while not os.path.exists(sys.argv[6]):                   # start together
        time.sleep(0.01)
    for i in range(n):
        rec = dict(recs["own"], run_id=f"{prefix}-{i}")
        H.import_record(db, rec)
        H.import_record(db, recs["shared"])               # both write the same run too
    print("ok")
""")


def test_two_processes_importing_at_once_lose_nothing(db, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    recs = tmp_path / "recs.json"
    recs.write_text(json.dumps({"own": make_record("x", extra_metrics=20),
                                "shared": make_record("SHARED", seed=3)}))
    n = 30                                   # no pre-created db: both create it
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, str(worker), str(ROOT), str(db), p, str(n),
                               str(recs), str(go)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for p in ("A", "B")]
    deadline = time.monotonic() + 60
    while not all((tmp_path / f"go.{p}").exists() for p in ("A", "B")):
        assert time.monotonic() < deadline and all(p.poll() is None for p in procs)
        time.sleep(0.01)
    go.touch()
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert out.strip() == "ok"
    with H.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 2 * n + 1
        per_run = dict(conn.execute("SELECT run_id, COUNT(*) FROM measurements GROUP BY run_id"))
    assert len(per_run) == 2 * n + 1
    assert all(v == 22 for k, v in per_run.items() if k != "SHARED")
    assert per_run["SHARED"] == 2




def test_resolve_baseline(db, tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    (repo / "f").write_text("1")
    git(repo, "add", "f")
    git(repo, "commit", "-q", "-m", "one")
    c1 = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1")
    (repo / "f").write_text("2")
    git(repo, "commit", "-q", "-am", "two")
    c2 = git(repo, "rev-parse", "HEAD")

    H.import_record(db, make_record("R-old", started="2026-11-20T10:00:00Z", commit=c1))
    H.import_record(db, make_record("R-c1b", started="2026-11-21T10:00:00Z", commit=c1))
    H.import_record(db, make_record("R-c1-broken", started="2026-11-21T11:00:00Z", commit=c1,
                                    status="interrupted"))
    H.import_record(db, make_record("R-main", started="2026-11-22T10:00:00Z", commit=c2))
    H.import_record(db, make_record("R-feat", started="2026-11-23T10:00:00Z", commit="f" * 40,
                                    branch="feature/x"))

    assert B.resolve_baseline(db, "R-old") == "R-old"                     # run id
    assert B.resolve_baseline(db, "main") == "R-main"                     # latest on main
    assert B.resolve_baseline(db, "latest:main") == "R-main"
    assert B.resolve_baseline(db, "latest") == "R-feat"
    assert B.resolve_baseline(db, "latest", exclude_run_id="R-feat") == "R-main"
    assert B.resolve_baseline(db, "main", exclude_run_id="R-main") == "R-c1b"
    # git refs: newest *finished* run of that commit
    assert B.resolve_baseline(db, "v1", git_cwd=repo) == "R-c1b"
    assert B.resolve_baseline(db, "HEAD~1", git_cwd=repo) == "R-c1b"
    assert B.resolve_baseline(db, "HEAD", git_cwd=repo) == "R-main"
    assert B.resolve_baseline(db, c1[:10]) == "R-c1b"                     # commit prefix
    folder = tmp_path / "runs" / "R-folder"                                # a run folder
    folder.mkdir(parents=True)
    (folder / "record.json").write_text(json.dumps(make_record("R-folder")))
    assert B.resolve_baseline(db, str(folder)) == "R-folder"
    assert B.resolve_baseline(db, str(folder / "record.json")) == "R-folder"
    with pytest.raises(B.BaselineError, match="no run recorded on branch"):
        B.resolve_baseline(db, "latest:nope")
    with pytest.raises(B.BaselineError):
        B.resolve_baseline(db, "no-such-thing", git_cwd=repo)
    with pytest.raises(B.BaselineError, match="invalid"):
        B.resolve_baseline(db, "--output=/tmp/x", git_cwd=repo)
    (repo / "f").write_text("3")
    git(repo, "commit", "-q", "-am", "three")
    with pytest.raises(B.BaselineError, match="no run recorded for 'HEAD'"):
        B.resolve_baseline(db, "HEAD", git_cwd=repo)


def test_series_trend_and_run_noise(db):
    for i in range(30):
        lat = 45.0 if i < 20 else 50.0                                    # step at run 20
        H.import_record(db, make_record(f"R{i:02d}", started=f"2026-11-{1 + i // 24:02d}T"
                                        f"{i % 24:02d}:00:00Z", latency=lat, seed=i))
    s = H.series(db, "latency_total_ms", device="emu-1")
    assert [p["run_id"] for p in s] == [f"R{i:02d}" for i in range(30)]
    assert s[0]["commit"] == "a" * 40 and s[0]["n"] == 100
    # a limit keeps the newest runs (still oldest first), never the oldest ones
    assert [p["run_id"] for p in H.series(db, "latency_total_ms", profile="host", limit=5)] \
        == [f"R{i:02d}" for i in range(25, 30)]
    assert H.series(db, "latency_total_ms", device="other") == []
    t = H.trend(db, "latency_total_ms", device="emu-1")
    assert [c["run_id"] for c in t["change_points"]] == ["R20"]
    assert t["change_points"][0]["change"] == pytest.approx(0.111, abs=0.02)
    noise = H.run_noise_for(db, "latency_total_ms", "emu-1")
    assert noise is not None and noise.sd < 0.02 and noise.runs == 20                            # robust to the step


def test_threshold_for():
    th = {"host:latency_total_ms": 0.05, "latency_total_ms": "4%", "host:*": 0.06, "*": 0.02}
    assert T.threshold_for(th, "host", "latency_total_ms") == 0.05
    assert T.threshold_for(th, "sd6", "latency_total_ms") == 0.04
    assert T.threshold_for(th, "host", "fps") == 0.06
    assert T.threshold_for(th, "sd6", "fps") == 0.02
    assert T.threshold_for(None, "host", "fps") is None


def test_compare_runs_and_gate(db):
    base = make_record("BASE", started="2026-11-22T10:00:00Z", latency=45.0, seed=1,
                       devices=("emu-1", "emu-2"))
    H.import_record(db, base)
    seed_history(db, base, 4)  # with BASE, the 5 runs a two-run "regressed" needs
    cand = make_record("CAND", started="2026-11-23T10:00:00Z", latency=45.0, seed=2,
                       devices=("emu-1", "emu-2"), p95_target=50.0)
    # emu-1: 12% slower (so fps drops); emu-2 unchanged; a new metric only in the candidate
    for m in cand["measurements"]:
        if m["device"] == "emu-1" and m["metric"] == "latency_total_ms":
            m["samples"] = [v * 1.12 for v in m["samples"]]
            m["target"]["verdict"] = "fail"
            m["summary"]["p95"] = float(np.percentile(m["samples"], 95))
        if m["device"] == "emu-1" and m["metric"] == "fps":
            m["samples"] = [v / 1.12 for v in m["samples"]]
    cand["measurements"].append({"test": "t_new", "device": "emu-1", "profile": "host",
                                 "metric": "power_avg_w", "unit": "w", "direction": "lower",
                                 "samples": [1.0] * 20, "summary": {"n": 20}})
    H.import_record(db, cand)
    rows = C.compare_runs(db, "BASE", "CAND")
    by = {(r.device, r.metric): r for r in rows}
    assert by[("emu-1", "latency_total_ms")].verdict == "regressed"
    assert by[("emu-1", "fps")].verdict == "regressed"                   # higher is better
    assert by[("emu-2", "latency_total_ms")].verdict == "same"
    assert by[("emu-1", "power_avg_w")].verdict == "unknown"
    assert by[("emu-1", "power_avg_w")].reason == "no baseline measurement"
    # a per-metric threshold above the change turns the regression off
    rows2 = C.compare_runs(db, "BASE", "CAND", thresholds={"latency_total_ms": 0.2, "fps": 0.2})
    assert {r.verdict for r in rows2 if r.device == "emu-1"} <= {"same", "unknown"}

    rows, g = C.gate_runs(db, "BASE", "CAND")
    assert g.exit_status == 1
    assert sum(line.startswith("REGRESSED") for line in g.lines) == 2
    assert sum(line.startswith("TARGET FAILED") for line in g.lines) == 1
    assert any(re.search(r"^REGRESSED latency_total_ms on emu-1 .*\(\+1[12]\.\d%", line)
               for line in g.lines)
    _, g0 = C.gate_runs(db, None, "BASE")
    assert g0.exit_status == 0 and g0.lines == []
    with pytest.raises(B.BaselineError):
        C.compare_runs(db, "NOPE", "CAND")


def test_thresholds_from_profiles():
    th = T.thresholds_from_profiles({"sd6": {"regression": {"threshold": 0.04,
                                                            "latency_total_ms": "6%"}},
                                     "host": {"targets": {}}})
    assert th == {"sd6:*": 0.04, "sd6:latency_total_ms": "6%"}
    assert T.threshold_for(th, "sd6", "latency_total_ms") == 0.06
    assert T.threshold_for(th, "sd6", "fps") == 0.04
    assert T.threshold_for(th, "host", "fps") is None


def test_series_gives_one_point_per_ab_run_from_the_candidate_arm(db):
    rec = make_record("AB1", started="2026-11-24T01:00:00Z")
    rec["measurements"] = [
        {"test": "suites/test_ab.py::test_ab_latency[emu-1]", "device": "emu-1",
         "profile": "host", "metric": "latency_total_ms", "unit": "ms", "direction": "lower",
         "samples": [v] * 10, "summary": {"n": 10},
         "extra": {"ab": {"arm": arm, "round": r, "build": arm}}}
        for r, (base, cand) in enumerate([(10.0, 20.0), (11.0, 21.0), (12.0, 22.0)])
        for arm, v in (("baseline", base), ("candidate", cand))]
    H.import_record(db, rec)
    pts = H.series(db, "latency_total_ms", test="suites/test_ab.py::test_ab_latency[emu-1]",
                   include_samples=True)
    assert len(pts) == 1 and pts[0]["run_id"] == "AB1"
    assert pts[0]["median"] == 21.0 and pts[0]["n"] == 30 and len(pts[0]["samples"]) == 30
    # between two A/B runs only the candidate arms are compared
    rec2 = json.loads(json.dumps(rec))
    rec2["run_id"], rec2["started"] = "AB2", "2026-11-24T02:00:00Z"
    H.import_record(db, rec2)
    rows = C.compare_runs(db, "AB1", "AB2")
    assert [(r.metric, r.median_base, r.median_cand) for r in rows] == [
        ("latency_total_ms", 21.0, 21.0)]
