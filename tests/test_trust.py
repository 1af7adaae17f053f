"""Run-level guards on verdicts (harness.stats.trust) and the health they read
(harness.record.health): a run's false-alarm budget is per run (Holm), changes below the
timing resolution never regress, and runs whose environment differed are "unknown"."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import numpy as np
from helpers.records import make_record, seed_history

from harness.history import compare as C
from harness.history import store as H
from harness.record.health import HealthMonitor, _descendants_cpu_s
from harness.stats.gate import VerdictRow
from harness.stats.trust import apply_floor, disturbed, holm, mark_disturbed


def row(metric="latency_mask_ms", verdict="regressed", p=0.001, base=10.0, cand=10.8,
        unit="ms", device="host-1"):
    return VerdictRow(device=device, profile="host", test="t", metric=metric, unit=unit,
                      direction="lower", baseline_run="B", candidate_run="C", verdict=verdict,
                      reason="r", median_base=base, median_cand=cand,
                      change=cand / base - 1, p_value=p)


def test_holm_keeps_the_false_alarm_budget_per_run():
    """48 comparisons each at p=0.005 (each 'significant' at alpha 0.01) are, as a
    family, no evidence: none may fail the run; a strong one still does."""
    rows = [row(p=0.005) for _ in range(47)] + [row(metric="latency_total_ms", p=1e-6)]
    out = holm(rows, 0.01)
    assert [r.verdict for r in out[:47]] == ["unknown"] * 47
    assert "Holm" in out[0].reason and "48 comparisons" in out[0].reason
    assert out[47].verdict == "regressed"
    assert holm([row(p=0.005)], 0.01)[0].verdict == "regressed"  # alone it stands


def test_a_tiny_stage_never_regresses():
    """The enhance stage (0.025 ms) moving 20% is below the resolution floor; the blend
    stage moving 1 ms of a 40 ms frame is not."""
    rows = [row("latency_enhance_ms", base=0.025, cand=0.030),
            row("latency_blend_ms", base=5.0, cand=6.0),
            row("latency_color_ms", base=2.0, cand=2.3),    # 0.3 ms < 1% of 40 ms = 0.4
            row("memory_peak_mb", base=40.0, cand=40.01, unit="mb")]
    out = apply_floor(rows, {"host-1": 40.0})
    assert [r.verdict for r in out] == ["unknown", "regressed", "unknown", "regressed"]
    assert "below the resolution floor 0.4 ms" in out[0].reason


def test_disturbed_environment_names_the_evidence():
    quiet = {"cores": 2, "other_cpu_cores_mean": 0.05, "steal_cores_mean": 0.0}
    busy = {"cores": 2, "other_cpu_cores_mean": 0.98, "steal_cores_mean": 0.0}
    assert disturbed(quiet, quiet) is None
    assert disturbed(None, busy) is None  # an old run without health: nothing to say
    why = disturbed(quiet, busy)
    assert why.startswith("environment disturbed (other processes used 0.98 of 2 cores")
    rows = mark_disturbed([row(), row(device="phone", verdict="regressed"),
                           row(verdict="same")], ["host-1"], why)
    assert [r.verdict for r in rows] == ["unknown", "regressed", "same"]
    assert rows[0].reason.startswith("environment disturbed") and "was: regressed" in \
        rows[0].reason


def test_runs_with_different_host_cpu_parallelism_cannot_be_compared():
    """A parallel run (harness.fleet) where 3 devices measured on this host's CPU at once
    against a plain run: the host-CPU devices' verdicts are unknown, not regressed."""
    quiet = {"cores": 2, "other_cpu_cores_mean": 0.05, "steal_cores_mean": 0.0}
    assert disturbed(quiet, {**quiet, "host_cpu_parallel": 1}) is None  # old runs: 1
    why = disturbed(quiet, {**quiet, "host_cpu_parallel": 3})
    assert why == ("host CPU shared by 3 device(s) measuring at once in the candidate "
                   "run, 1 in the baseline")
    assert disturbed({**quiet, "host_cpu_parallel": 3},
                     {**quiet, "host_cpu_parallel": 3}) is None


def _with_health(rec: dict, other: float) -> dict:
    rec["environment"]["health"] = {"cores": 2, "other_cpu_cores_mean": other,
                                    "steal_cores_mean": 0.0}
    for d in rec["devices"].values():
        d["kind"], d["cpu_shared"] = "local", True
    return rec


def test_a_neighbour_in_one_run_gives_unknown_not_regressed(tmp_path):
    """The issue's case: the same commit twice, the second with a neighbour on one core,
    about 28% slower: `regressed` before, `unknown: environment disturbed` now."""
    db = tmp_path / "history.sqlite"
    base = _with_health(make_record("BASE", started="2026-11-22T10:00:00Z", seed=1), 0.05)
    H.import_record(db, base)
    seed_history(db, base, 4)  # enough history: only the neighbour stands in the way
    cand = _with_health(make_record("CAND", started="2026-11-23T10:00:00Z", seed=2), 1.0)
    for m in cand["measurements"]:
        if m["metric"] == "latency_total_ms":
            m["samples"] = [v * 1.28 for v in m["samples"]]
            m["summary"]["p95"] = float(np.percentile(m["samples"], 95))
    H.import_record(db, cand)
    comp = C.compare(db, "CAND", baseline_run_id="BASE")
    by = {r.metric: r for r in comp.rows}
    assert by["latency_total_ms"].verdict == "unknown"
    assert by["latency_total_ms"].reason.startswith("environment disturbed")
    assert comp.exit_status == 0 and not any(ln.startswith("REGRESSED") for ln in comp.gate_lines)
    # the same slowdown between two quiet runs is still a regression
    H.import_record(db, _with_health(make_record("QUIET", started="2026-11-24T10:00:00Z",
                                                 seed=3, latency=45.0 * 1.28), 0.05))
    comp = C.compare(db, "QUIET", baseline_run_id="BASE")
    assert {r.metric: r for r in comp.rows}["latency_total_ms"].verdict == "regressed"
    assert comp.exit_status == 1


def test_health_counts_our_children_as_ours_and_neighbours_as_other():
    burn = ("import time\nt = time.process_time()\n"
            "while time.process_time() - t < 1.0: pass\ntime.sleep(30)")
    busy = subprocess.Popen([sys.executable, "-c", burn])
    try:
        deadline = time.monotonic() + 60
        while _descendants_cpu_s(os.getpid()) < 0.9 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _descendants_cpu_s(os.getpid()) >= 0.9  # a live child's CPU is ours
    finally:
        busy.kill()
        busy.wait()
    # a neighbour outside our process tree (reparented to init) burns a core for 4 s
    subprocess.run(["sh", "-c", "(timeout 4 sh -c 'while :; do :; done' &)"], check=True)
    mon = HealthMonitor(interval_s=0.5).start()
    time.sleep(3)
    summary = mon.stop()
    assert summary["other_cpu_cores_mean"] >= 0.5, summary
    assert summary["cores"] == os.cpu_count() and summary["windows"]


def test_compare_applies_holm_over_every_row_of_the_run(tmp_path, monkeypatch):
    db = tmp_path / "history.sqlite"
    H.import_record(db, make_record("BASE", started="2026-11-22T10:00:00Z", seed=1))
    H.import_record(db, make_record("CAND", started="2026-11-23T10:00:00Z", seed=2))
    families = []
    real = C.holm
    monkeypatch.setattr(C, "holm", lambda rows, alpha: families.append(len(rows))
                        or real(rows, alpha))
    comp = C.compare(db, "CAND", baseline_run_id="BASE")
    assert families == [len(comp.rows)] and families[0] >= 2


def test_baseline_main_skips_partial_and_unfinished_runs(tmp_path):
    """--baseline main picked a quality-only partial run; now only a finished run that
    measured everything the candidate measured is a baseline."""
    from harness.history.baseline import BaselineError, resolve_baseline

    db = tmp_path / "history.sqlite"
    H.import_record(db, make_record("FULL", started="2026-11-20T10:00:00Z", seed=1))
    partial = make_record("PARTIAL", started="2026-11-21T10:00:00Z", seed=2)
    partial["measurements"] = [m for m in partial["measurements"] if m["metric"] == "fps"]
    H.import_record(db, partial)
    H.import_record(db, make_record("CUT", started="2026-11-22T10:00:00Z", seed=3,
                                    status="interrupted"))
    H.import_record(db, make_record("CAND", started="2026-11-23T10:00:00Z", seed=4))
    assert resolve_baseline(db, "main", exclude_run_id="CAND") == "FULL"
    assert resolve_baseline(db, "PARTIAL", exclude_run_id="CAND") == "PARTIAL"  # asked for
    only = tmp_path / "only.sqlite"
    H.import_record(only, partial)
    H.import_record(only, make_record("CAND", started="2026-11-23T10:00:00Z", seed=4))
    try:
        resolve_baseline(only, "main", exclude_run_id="CAND")
    except BaselineError as e:
        assert "none is comparable" in str(e)
    else:
        raise AssertionError("a partial run was taken as the baseline")


def test_disturbed_runs_do_not_count_as_the_host_noise(tmp_path):
    """The gate's between-run noise comes from the history before the candidate. On a
    device that shares this host's CPU, runs with a neighbour (slow ones and, once it
    left, fast ones) would make it the neighbour's: they are left out
    (harness.stats.trust.run_disturbed), and a 28% slowdown between quiet runs regresses."""
    db = tmp_path / "history.sqlite"

    def run(i, latency, other_cpu):
        rec = _with_health(make_record(f"R{i:02d}", started=f"2026-11-{10 + i:02d}T10:00:00Z",
                                       seed=i, latency=latency), other_cpu)
        H.import_record(db, rec)

    for i in range(12):
        if i % 2:  # a neighbour in every second run: 0.6x or 1.7x the quiet time
            run(i, 45.0 * (1.7 if i % 4 == 1 else 0.6), 1.0)
        else:
            run(i, 45.0 * (1.0 + 0.01 * (i % 3)), 0.05)
    run(12, 45.0 * 1.28, 0.05)
    quiet = H.history_medians(db, "latency_total_ms", "emu-1", before="2026-11-22T10:00:00Z",
                              exclude=("R12",), skip_disturbed=True)
    assert len(quiet) == 6 and max(quiet) < 47.0
    assert len(H.history_medians(db, "latency_total_ms", "emu-1",
                                 before="2026-11-22T10:00:00Z", exclude=("R12",))) == 12
    comp = C.compare(db, "R12", baseline_run_id="R10")
    row = {r.metric: r for r in comp.rows}["latency_total_ms"]
    assert row.verdict == "regressed", row.reason


def test_a_disturbed_candidate_keeps_the_whole_history_and_says_disturbed(tmp_path):
    """On a host busy all the time every run is disturbed: the verdict names the
    environment (and what the rule saw), not a history too short to judge."""
    db = tmp_path / "history.sqlite"
    for i in range(6):
        H.import_record(db, _with_health(make_record(
            f"R{i:02d}", started=f"2026-11-{10 + i:02d}T10:00:00Z", seed=i), 1.0))
    H.import_record(db, _with_health(make_record(
        "CAND", started="2026-11-20T10:00:00Z", seed=9, latency=45.0 * 1.5), 1.0))
    row = {r.metric: r for r in C.compare(db, "CAND", baseline_run_id="R05").rows}[
        "latency_total_ms"]
    assert row.verdict == "unknown" and row.reason.startswith("environment disturbed"), row
    assert row.reason.endswith("was: regressed"), row.reason


def test_too_few_quiet_runs_fall_back_to_the_whole_history(tmp_path):
    """A quiet candidate whose history has fewer quiet runs than the minimum (a busy CI
    machine now and then) is judged on the whole history, not refused for too little."""
    db = tmp_path / "history.sqlite"
    for i in range(6):  # 3 quiet, 3 disturbed
        H.import_record(db, _with_health(make_record(
            f"R{i:02d}", started=f"2026-11-{10 + i:02d}T10:00:00Z", seed=i), 1.0 if i % 2 else 0.05))
    H.import_record(db, _with_health(make_record(
        "CAND", started="2026-11-20T10:00:00Z", seed=9, latency=45.0 * 1.5), 0.05))
    row = {r.metric: r for r in C.compare(db, "CAND", baseline_run_id="R04").rows}[
        "latency_total_ms"]
    assert row.verdict == "regressed", row.reason


def test_a_baseline_started_in_the_same_second_is_history(tmp_path):
    """Run stamps have whole seconds: a fast candidate can start in the baseline's second.
    The baseline is then still history before the candidate (it was left out once, and a
    two-run gate with four earlier runs said "unknown: too little history")."""
    db = tmp_path / "history.sqlite"
    base = make_record("BASE", started="2026-11-30T06:31:32Z", seed=1, latency=45.0)
    H.import_record(db, base)
    seed_history(db, base, 4)
    H.import_record(db, make_record("CAND", started="2026-11-30T06:31:32Z", seed=2,
                                    latency=45.0 * 1.25))
    assert len(H.history_medians(db, "latency_total_ms", "emu-1", before="2026-11-30T06:31:32Z",
                                 exclude=("CAND",))) == 5
    row = {r.metric: r for r in C.compare(db, "CAND", baseline_run_id="BASE").rows}[
        "latency_total_ms"]
    assert row.verdict == "regressed", row.reason
