"""The per-run calibration of the CI gate on this host (benchmarks/host_calibration.py,
docs/statistics.md): real lab runs of unchanged code never fail the gate, and a slowdown
planted in the runner (SWAPLAB_PLANT_SLOWDOWN_PCT) reaches a "regressed" verdict.

No timing assertions: only verdicts. A planted run on a disturbed host may be "unknown:
environment disturbed", but then the reason must say the rule saw the regression
("was: regressed"); a run of unchanged code must never be "regressed"."""

from __future__ import annotations

import importlib.util
import json
import subprocess

from helpers.paths import REPO

FIXTURE = REPO / "tests" / "fixtures" / "calibration" / "host_calibration.json"

_spec = importlib.util.spec_from_file_location("host_calibration",
                                               REPO / "benchmarks" / "host_calibration.py")
HC = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(HC)


def _caught(row: dict) -> bool:
    """The gate says regressed, or would have but for the environment it names."""
    return row["verdict"] == "regressed" or (
        row["verdict"] == "unknown" and row["reason"].startswith("environment disturbed")
        and "was: regressed" in row["reason"])


def test_plan_alternates_quiet_and_neighbour_runs_with_planted_ones():
    steps = HC.plan(5, 20, 4)
    assert [s["kind"] for s in steps[:5]] == ["history"] * 5
    aa = [s for s in steps if s["kind"] == "aa"]
    assert len(aa) == 20 and sum(s["neighbour"] for s in aa) == 10
    planted = [i for i, s in enumerate(steps) if s["kind"] == "planted"]
    assert len(planted) == 4 and planted[0] < len(steps) // 2  # spread, not all at the end
    two = HC.plan(0, 4, 1, (10.0, 50.0))
    assert [s.get("pct") for s in two if s["kind"] == "planted"] == [10.0, 50.0]


def test_recorded_calibration_has_no_false_alarm_per_run(tmp_path):
    """Re-gate the recorded real runs (docs/statistics.md's table) with the current code:
    no A/A pair may fail the gate, and every planted pair must be caught by the rule."""
    data = json.loads(FIXTURE.read_text())
    assert len([r for r in data["results"] if r["kind"] == "aa"]) >= 20
    results = HC.replay(data, tmp_path / "history.sqlite")
    aa = [r for r in results if r["kind"] == "aa"]
    assert sum(r["neighbour"] for r in aa) >= 10 and sum(not r["neighbour"] for r in aa) >= 10
    for r in aa:
        assert not [x for x in r["rows"] if x["verdict"] == "regressed"], r
    planted = [r for r in results if r["kind"] == "planted"]
    assert planted
    for r in planted:
        total = next(x for x in r["rows"] if x["metric"] == "latency_total_ms")
        assert _caught(total) or total["reason"].startswith("inconclusive"), total
    # recorded on a quiet host (docs/statistics.md): every planted run fails the gate, the
    # 10% ones included (on the stage the slowdown is in; the frame total's run-to-run
    # noise here is larger than 10%)
    assert data["results"] and max(x for r in results for x in [r["health_cand"]
                                    ["other_cpu_cores_mean"] or 0] if not r["neighbour"]) < 0.25
    for r in planted:
        assert any(x["verdict"] == "regressed" for x in r["rows"]), r
    # the replay is the published table: the recorded verdicts are the current ones
    assert [[x["verdict"] for x in r["rows"]] for r in results] == \
        [[x["verdict"] for x in r["rows"]] for r in data["results"]]


def test_tiny_calibration_on_this_host(tmp_path, runner_binary):
    """Real lab runs: 5 quiet runs of history, two A/A comparisons (the second run with a
    CPU neighbour), then a run with a large planted slowdown: the gate fails only that."""
    profiles = HC.host_profiles(tmp_path / "profiles", frames=12, warmup=1)
    lab = tmp_path / "lab"
    db = lab / "history.sqlite"
    runs = [HC.lab_run(lab, profiles, log=lambda *_: None) for _ in range(5)]
    runs.append(HC.lab_run(lab, profiles, busy=True, log=lambda *_: None))
    planted = HC.lab_run(lab, profiles, plant_pct=300, log=lambda *_: None)
    for base, cand in ((runs[3], runs[4]), (runs[4], runs[5])):
        g = HC.gate_pair(db, base, cand)
        assert not [x for x in g["rows"] if x["verdict"] == "regressed"], g
    g = HC.gate_pair(db, runs[4], planted)  # the newest quiet run
    total = next(x for x in g["rows"] if x["metric"] == "latency_total_ms")
    assert _caught(total), total
    assert total["change"] > 0.5
    # the planted run says so in its record, and is comparable (not a runner setting)
    rec = json.loads((lab / "runs" / planted / "record.json").read_text())
    assert rec["environment"]["runner_builds"]["x86_64"]["planted_slowdown_pct"] == 300
    assert not total["reason"].startswith("runner settings differ")


def test_invalid_planted_slowdown_is_a_clear_runner_error(runner_binary):
    r = subprocess.run([str(runner_binary), "--version"], capture_output=True, text=True,
                       env={"SWAPLAB_PLANT_SLOWDOWN_PCT": "ten", "OMP_WAIT_POLICY": "PASSIVE"},
                       timeout=60, check=False)
    assert r.returncode == 2
    assert "SWAPLAB_PLANT_SLOWDOWN_PCT: expected a percentage from 0 to 1000, got 'ten'" \
        in r.stderr
    r = subprocess.run([str(runner_binary), "--version"], capture_output=True, text=True,
                       env={"OMP_WAIT_POLICY": "PASSIVE"}, timeout=60, check=False)
    assert r.returncode == 0 and "planted_slowdown_pct" not in r.stdout
