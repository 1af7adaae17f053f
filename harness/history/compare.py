"""Comparison of runs: a candidate against a baseline run (between runs), the arms of an
A/B interleaved run (inside one run), and the CI gate over both plus the absolute targets.

One typed result, :class:`Comparison`; the run record keeps it as
``record["comparison"]`` (:meth:`Comparison.as_record`):

    {"baseline_spec": "main" | null, "baseline_run": "<run id>" | null,
     "error": "<why the baseline could not be resolved>" | null,
     "ab": true | false,             # verdicts of an A/B interleaved run
     "rows": [VerdictRow.as_dict() + {"line": "..."}],
     "gate": {"lines": [...], "exit_status": 0 | 1, "regressions": n, "target_failures": n},
     "ab_hint": "<the command that decides an inconclusive comparison>" | null}

Used by the plugin at session end (:func:`finish_run`) and by `swaplab report --compare` /
`swaplab compare` (:func:`compare_specs`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness import REPO_ROOT
from harness.history.baseline import BaselineError, resolve_baseline
from harness.history.store import (
    history_db_for_run,
    history_medians,
    import_record,
    measurements_for,
    opened,
    run_info,
    sync_runs,
)
from harness.profiles import ProfileError, load_profiles
from harness.runner.settings import effective_settings
from harness.stats.ab_arms import ab_arm, compare_ab_measurements
from harness.stats.changepoint import run_noise_from_medians
from harness.stats.compare import DEFAULT_RULE, RuleConfig, compare_samples
from harness.stats.gate import GateResult, VerdictRow, gate
from harness.stats.thresholds import threshold_for, thresholds_from_profiles
from harness.stats.trust import (
    MIN_HISTORY,
    apply_floor,
    disturbed,
    holm,
    mark_disturbed,
    mark_not_comparable,
    require_history,
    run_disturbed,
    settings_differ,
)

__all__ = ["Comparison", "compare", "compare_runs", "compare_specs", "find_run_dir",
           "finish_run", "gate_runs", "min_history_for", "thresholds_for"]


@dataclasses.dataclass
class Comparison:
    """The verdicts of one candidate run: against a baseline run and/or between the arms
    of its A/B rounds, and the gate over them and the candidate's absolute targets."""

    baseline_spec: str | None = None
    baseline_run: str | None = None
    #: why the baseline could not be resolved, or why the comparison failed
    error: str | None = None
    #: the verdicts include those of an A/B interleaved run
    ab: bool = False
    rows: list[VerdictRow] = dataclasses.field(default_factory=list)
    gate: GateResult = dataclasses.field(
        default_factory=lambda: GateResult([], 0, [], []))
    #: when two runs could not decide: the A/B command that can
    ab_hint: str | None = None

    @property
    def exit_status(self) -> int:
        return self.gate.exit_status

    @property
    def gate_lines(self) -> list[str]:
        return list(self.gate.lines)

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for r in self.rows:
            counts[r.verdict] = counts.get(r.verdict, 0) + 1
        return counts

    def as_record(self) -> dict:
        """The ``record["comparison"]`` layout (strict JSON: NaN / inf -> null)."""
        return {"baseline_spec": self.baseline_spec, "baseline_run": self.baseline_run,
                "error": self.error, "ab": self.ab,
                "rows": [_finite({**r.as_dict(), "line": r.line()}) for r in self.rows],
                "ab_hint": self.ab_hint,
                "gate": {"lines": list(self.gate.lines), "exit_status": self.gate.exit_status,
                         "regressions": len(self.gate.regressions),
                         "target_failures": len(self.gate.target_failures)}}


def thresholds_for(profiles: Mapping[str, Any] | None) -> dict[str, Any]:
    """Relative thresholds from the profiles' `[regression]` tables (Profile objects or
    plain dicts)."""
    data = {}
    for name, p in (profiles or {}).items():
        extra = getattr(p, "extra", None)
        reg = (extra or {}).get("regression") if extra is not None else \
            (p or {}).get("regression")
        if reg:
            data[name] = {"regression": dict(reg)}
    return thresholds_from_profiles(data)


def min_history_for(profiles: Mapping[str, Any] | None) -> dict[str, int]:
    """Profile name -> `[regression] min_history` (runs of history a two-run "regressed"
    needs; harness.stats.trust.MIN_HISTORY where a profile does not set it)."""
    out = {}
    for name, p in (profiles or {}).items():
        extra = getattr(p, "extra", None)
        reg = (extra or {}).get("regression") if extra is not None else \
            (p or {}).get("regression")
        if reg and reg.get("min_history") is not None:
            out[name] = int(reg["min_history"])
    return out


def _settings(info: Mapping[str, Any] | None, device: str, m: Mapping[str, Any]) -> dict:
    return effective_settings(((info or {}).get("devices") or {}).get(device), m.get("extra"))


def _finite(d: dict) -> dict:
    """NaN / inf -> None: the record is strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in d.items()}


def compare_runs(db_path: str | os.PathLike | sqlite3.Connection, baseline_run_id: str,
                 candidate_run_id: str, *, thresholds: Mapping[str, Any] | None = None,
                 rule: RuleConfig | None = None, use_history: bool = True,
                 min_history: Mapping[str, int] | None = None) -> list[VerdictRow]:
    """Per device x test x metric verdicts of candidate vs baseline, candidate order.

    Measurements are matched on (device, test, metric); a candidate measurement without
    an exact match falls back to the baseline's only measurement of the same device x
    metric. Unmatched ones on either side get verdict "unknown" with the reason.
    use_history: estimate each metric's between-run noise from the runs before the
    candidate with the same runner settings (history_medians), and give "regressed" or
    "improved" only with at least `min_history[profile]` (default MIN_HISTORY) such runs;
    otherwise the rule's prior is used and no minimum applies. Measurements whose runner
    settings differ (harness.runner.settings) are "unknown: runner settings differ".
    """
    rule = rule or DEFAULT_RULE
    with opened(db_path) as conn:
        cand_info = run_info(conn, candidate_run_id)
        if cand_info is None:
            raise BaselineError(f"candidate run {candidate_run_id!r} is not in the history")
        base_info = run_info(conn, baseline_run_id)
        if base_info is None:
            raise BaselineError(f"baseline run {baseline_run_id!r} is not in the history")
        base = measurements_for(conn, baseline_run_id)
        cand = measurements_for(conn, candidate_run_id)

        def group(ms):
            g: dict[tuple, list[dict]] = {}
            for m in ms:
                if ab_arm(m) != "baseline":  # another build: compared inside its own run
                    g.setdefault((m["device"], m["test"], m["metric"]), []).append(m)
            return g

        gb, gc = group(base), group(cand)
        # a quiet candidate's noise comes from quiet runs; a disturbed one is "unknown:
        # environment disturbed" anyway (_between_runs_guards), with all history behind it
        quiet_cand = not run_disturbed((cand_info.get("environment") or {}).get("health"))
        by_dm: dict[tuple, list[tuple]] = {}
        for k in gb:
            by_dm.setdefault((k[0], k[2]), []).append(k)
        used: set = set()
        rows: list[VerdictRow] = []
        for key, ms in gc.items():
            device, test, metric = key
            m0 = ms[0]
            bkey = key if key in gb else None
            if bkey is None and len(by_dm.get((device, metric), [])) == 1:
                bkey = by_dm[(device, metric)][0]
            common = {"device": device, "profile": m0.get("profile"), "test": test,
                      "metric": metric, "unit": m0.get("unit"),
                      "direction": m0.get("direction") or "lower",
                      "baseline_run": baseline_run_id, "candidate_run": candidate_run_id}
            c_s = [v for m in ms for v in (m["samples"] or [])]
            if bkey is None:
                rows.append(VerdictRow(verdict="unknown", reason="no baseline measurement",
                                       n_cand=len(c_s), **common))
                continue
            used.add(bkey)
            b_s = [v for m in gb[bkey] for v in (m["samples"] or [])]
            thr = threshold_for(thresholds, m0.get("profile"), metric)
            c_set = _settings(cand_info, device, m0)
            differ = settings_differ(_settings(base_info, device, gb[bkey][0]), c_set)
            history = None
            need = (min_history or {}).get(m0.get("profile"), MIN_HISTORY)
            if use_history:
                # too few quiet runs: all of them, a wider (conservative) interval
                history = history_medians(conn, metric, device, bkey[1],
                                          before=cand_info.get("started"),
                                          exclude=(candidate_run_id,), runner=c_set,
                                          skip_disturbed=quiet_cand and _cpu_shared(
                                              cand_info, device), min_quiet=need)
            c = compare_samples(b_s, c_s, common["direction"], rule, threshold=thr,
                                run_noise=run_noise_from_medians(history or []))
            row = VerdictRow.from_samples(c, **common)
            if differ:
                row = mark_not_comparable(row, differ)
            elif history is not None:
                row = require_history(row, len(history), need)
            rows.append(row)
        for key in gb:
            if key in used or key in gc:
                continue
            m0 = gb[key][0]
            rows.append(VerdictRow(
                device=key[0], profile=m0.get("profile"), test=key[1], metric=key[2],
                unit=m0.get("unit"), direction=m0.get("direction") or "lower",
                baseline_run=baseline_run_id, candidate_run=candidate_run_id,
                verdict="unknown", reason="not measured in the candidate run",
                n_base=sum(m["n"] or 0 for m in gb[key])))
        return rows


def gate_runs(db_path: str | os.PathLike | sqlite3.Connection, baseline_run_id: str | None,
              candidate_run_id: str, *, thresholds: Mapping[str, Any] | None = None,
              rule: RuleConfig | None = None, fail_on_unknown: bool = False,
              min_history: Mapping[str, int] | None = None
              ) -> tuple[list[VerdictRow], GateResult]:
    """(rows, GateResult) of :func:`compare` with the baseline given as a run id (None:
    the candidate's absolute targets and A/B arms only)."""
    c = compare(db_path, candidate_run_id, baseline_run_id=baseline_run_id,
                thresholds=thresholds, rule=rule, fail_on_unknown=fail_on_unknown,
                min_history=min_history)
    return c.rows, c.gate


def compare(db: Path | str, candidate_run_id: str, *, baseline_spec: str | None = None,
            baseline_run_id: str | None = None, thresholds: Mapping[str, Any] | None = None,
            git_cwd: str | os.PathLike | None = None, rule: RuleConfig | None = None,
            fail_on_unknown: bool = False, min_history: Mapping[str, int] | None = None
            ) -> Comparison:
    """Gate the candidate (already imported into `db`) against a baseline given as a spec
    (resolved with resolve_baseline, never the candidate itself) or a run id; neither:
    absolute targets only. A/B-tagged measurements of the candidate are compared arm
    against arm."""
    out = Comparison(baseline_spec=baseline_spec, baseline_run=baseline_run_id)
    if out.baseline_run is None and baseline_spec:
        try:
            out.baseline_run = resolve_baseline(db, baseline_spec, git_cwd,
                                                exclude_run_id=candidate_run_id)
        except BaselineError as e:
            out.error = str(e)
    rows: list[VerdictRow] = []
    if out.baseline_run:
        rows = compare_runs(db, out.baseline_run, candidate_run_id, thresholds=thresholds,
                            rule=rule, min_history=min_history)
        rows = _between_runs_guards(db, out.baseline_run, candidate_run_id, rows)
    cand = measurements_for(db, candidate_run_id)
    if any(ab_arm(m) for m in cand):
        ab_rows = compare_ab_measurements(cand, run_id=candidate_run_id, thresholds=thresholds)
        out.ab = True
        rows = list(ab_rows) + list(rows)
    # one false-alarm budget per run: Holm over every comparison the run made
    rows = holm(rows, DEFAULT_RULE.alpha)
    out.gate = gate(rows, [m for m in cand if ab_arm(m) != "baseline"],
                    fail_on_unknown=fail_on_unknown)
    out.rows = list(rows)
    out.ab_hint = None if out.ab else _ab_hint(db, out.baseline_run, rows)
    return out


def _cpu_shared(info: Mapping[str, Any], device: str) -> bool:
    """Whether `device` of a run (run_info) measured on this host's CPU (local, virtual)."""
    d = (info.get("devices") or {}).get(device) or {}
    return bool(d.get("cpu_shared", d.get("kind") in ("local", "virtual")))


def _between_runs_guards(db, base: str, cand: str, rows: list[VerdictRow]
                         ) -> list[VerdictRow]:
    """Changes below the timing resolution never regress; runs whose environment
    differed (harness.record.health) give "unknown" on the devices that share this host's
    CPU (harness.stats.trust)."""
    totals = {r.device: r.median_base for r in rows
              if r.metric == "latency_total_ms" and r.median_base}
    rows = apply_floor(rows, totals)
    b_info, c_info = run_info(db, base) or {}, run_info(db, cand) or {}
    why = disturbed((b_info.get("environment") or {}).get("health"),
                    (c_info.get("environment") or {}).get("health"))
    if why:
        shared = [s for s in (c_info.get("devices") or {}) if _cpu_shared(c_info, s)]
        rows = mark_disturbed(rows, shared, why)
    return rows


def _ab_hint(db, base: str | None, rows: Sequence[VerdictRow]) -> str | None:
    """When two separate runs could not decide (the run-to-run noise of the device is
    larger than the change), the command that can: an A/B run against the baseline's
    commit (docs/statistics.md, "A/B interleaved runs")."""
    n = sum(1 for r in rows if r.verdict == "unknown" and r.reason.startswith("inconclusive"))
    commit = (run_info(db, base) or {}).get("commit") if base else None
    if not n or not commit:
        return None
    return (f"{n} verdict(s) inconclusive: the run-to-run noise is larger than the change. "
            f"An A/B interleaved run decides: pytest suites/test_ab.py --ab-runner "
            f"{commit[:12]}")


def finish_run(run_dir: Path | str, *, db: Path | str | None = None,
               baseline_spec: str | None = None, profiles: Mapping[str, Any] | None = None,
               git_cwd: str | os.PathLike | None = None) -> Comparison:
    """Import a run folder's record into the history and gate it; the comparison is
    returned (the caller stores it in the record)."""
    run_dir = Path(run_dir)
    db = Path(db) if db is not None else history_db_for_run(run_dir)
    run_id = import_record(db, run_dir)["run_id"]
    return compare(db, run_id, baseline_spec=baseline_spec, thresholds=thresholds_for(profiles),
                   git_cwd=git_cwd, min_history=min_history_for(profiles))


def find_run_dir(spec: str, lab_out: Path) -> Path | None:
    """A run folder from a folder, its record.json, or a run id under `<lab_out>/runs`."""
    p = Path(spec)
    if p.name == "record.json" and p.is_file():
        p = p.parent
    if (p / "record.json").is_file():
        return p
    cand = lab_out / "runs" / spec
    if (cand / "record.json").is_file():
        return cand
    return None


def _profile_settings(profiles_dir: Path) -> tuple[dict, dict]:
    """(thresholds, min_history) from the profiles' `[regression]` tables."""
    try:
        profiles = load_profiles(profiles_dir)
    except (ProfileError, OSError):
        return {}, {}
    return thresholds_for(profiles), min_history_for(profiles)


def compare_specs(db: Path, lab_out: Path, base_spec: str, cand_spec: str,
                  profiles_dir: Path, fail_on_unknown: bool = False
                  ) -> tuple[Comparison, str]:
    """Import what is needed, resolve both runs (folders, run ids, --baseline specs),
    gate. Returns (comparison, candidate run id)."""
    if (lab_out / "runs").is_dir():
        sync_runs(db, lab_out / "runs")
    cdir = find_run_dir(cand_spec, lab_out)
    if cdir is not None:
        cand = import_record(db, cdir)["run_id"]
    elif run_info(db, cand_spec) is not None:
        cand = cand_spec
    else:
        raise BaselineError(f"candidate {cand_spec!r}: no such run folder or run id")
    bdir = find_run_dir(base_spec, lab_out)
    base = import_record(db, bdir)["run_id"] if bdir is not None else \
        resolve_baseline(db, base_spec, REPO_ROOT, exclude_run_id=cand)
    if base == cand:
        raise BaselineError("baseline and candidate are the same run")
    thresholds, min_history = _profile_settings(profiles_dir)
    comp = compare(db, cand, baseline_run_id=base, thresholds=thresholds,
                   fail_on_unknown=fail_on_unknown, min_history=min_history)
    comp.baseline_spec = base_spec
    return comp, cand
