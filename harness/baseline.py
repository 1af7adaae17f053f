"""Run history + baseline comparison + CI gate for one finished run (used by the plugin
at session end and by `swaplab report --compare` / `swaplab compare`).

The result is stored in the run record as ``record["comparison"]``:

    {"baseline_spec": "main" | null, "baseline_run": "<run id>" | null,
     "error": "<why the baseline could not be resolved>" | null,
     "ab": true | false,             # verdicts of an A/B interleaved run
     "rows": [VerdictRow.as_dict() + {"line": "..."}],
     "gate": {"lines": [...], "exit_status": 0 | 1, "regressions": n, "target_failures": n}}
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HISTORY_NAME = "history.sqlite"


def history_db(out_root: Path | str) -> Path:
    """The history database of a lab output folder (`<lab-out>/history.sqlite`)."""
    return Path(out_root) / HISTORY_NAME


def history_db_for_run(run_dir: Path | str) -> Path:
    """`<lab-out>/runs/<run>` -> `<lab-out>/history.sqlite`."""
    return history_db(Path(run_dir).resolve().parent.parent)


def thresholds_for(profiles: Mapping[str, Any] | None) -> dict[str, Any]:
    """Relative thresholds from the profiles' `[regression]` tables (Profile objects or
    plain dicts)."""
    from harness.history import thresholds_from_profiles
    data = {}
    for name, p in (profiles or {}).items():
        extra = getattr(p, "extra", None)
        reg = (extra or {}).get("regression") if extra is not None else \
            (p or {}).get("regression")
        if reg:
            data[name] = {"regression": dict(reg)}
    return thresholds_from_profiles(data)


def _finite(d: dict) -> dict:
    """NaN / inf -> None: the record is strict JSON."""
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in d.items()}


def _has_ab(measurements) -> bool:
    from harness.stats.ab import ab_arm
    return any(ab_arm(m) for m in measurements)


def compare(db: Path | str, candidate_run_id: str, *, baseline_spec: str | None = None,
            baseline_run_id: str | None = None, thresholds: Mapping[str, Any] | None = None,
            git_cwd: str | os.PathLike | None = None,
            fail_on_unknown: bool = False) -> dict:
    """Gate the candidate (already imported into `db`) against a baseline given as a spec
    (resolved with harness.history.resolve_baseline, never the candidate itself) or a run
    id; neither: absolute targets only. A/B-tagged measurements of the candidate are
    compared arm against arm. Returns the ``record["comparison"]`` dict."""
    from harness.history import BaselineError, gate_runs, measurements_for, resolve_baseline
    from harness.stats.gate import gate
    out: dict[str, Any] = {"baseline_spec": baseline_spec, "baseline_run": baseline_run_id,
                           "error": None, "ab": False}
    base = baseline_run_id
    if base is None and baseline_spec:
        try:
            base = resolve_baseline(db, baseline_spec, git_cwd,
                                    exclude_run_id=candidate_run_id)
        except BaselineError as e:
            out["error"] = str(e)
    out["baseline_run"] = base
    rows, result = gate_runs(db, base, candidate_run_id, thresholds=thresholds,
                             fail_on_unknown=fail_on_unknown)
    cand = measurements_for(db, candidate_run_id)
    if _has_ab(cand):
        from harness.stats.ab import ab_arm, compare_ab_measurements
        ab_rows = compare_ab_measurements(cand, run_id=candidate_run_id, thresholds=thresholds)
        out["ab"] = True
        rows = list(ab_rows) + list(rows)
        result = gate(rows, [m for m in cand if ab_arm(m) != "baseline"],
                      fail_on_unknown=fail_on_unknown)
    out["rows"] = [_finite({**r.as_dict(), "line": r.line()}) for r in rows]
    out["ab_hint"] = _ab_hint(db, base, rows) if not out["ab"] else None
    out["gate"] = {"lines": list(result.lines), "exit_status": result.exit_status,
                   "regressions": len(result.regressions),
                   "target_failures": len(result.target_failures)}
    return out


def _ab_hint(db, base: str | None, rows) -> str | None:
    """When two separate runs could not decide (the run-to-run noise of the device is
    larger than the change), the command that can: an A/B run against the baseline's
    commit (docs/statistics.md, "A/B interleaved runs")."""
    from harness.history import run_info
    n = sum(1 for r in rows if r.verdict == "unknown" and r.reason.startswith("inconclusive"))
    commit = (run_info(db, base) or {}).get("commit") if base else None
    if not n or not commit:
        return None
    return (f"{n} verdict(s) inconclusive: the run-to-run noise is larger than the change. "
            f"An A/B interleaved run decides: pytest suites/test_ab.py --ab-runner "
            f"{commit[:12]}")


def finish_run(run_dir: Path | str, *, db: Path | str | None = None,
               baseline_spec: str | None = None, profiles: Mapping[str, Any] | None = None,
               git_cwd: str | os.PathLike | None = None) -> dict:
    """Import a run folder's record into the history and gate it; the comparison is
    returned (the caller stores it in the record)."""
    from harness.history import import_record
    run_dir = Path(run_dir)
    db = Path(db) if db is not None else history_db_for_run(run_dir)
    run_id = import_record(db, run_dir)["run_id"]
    return compare(db, run_id, baseline_spec=baseline_spec, thresholds=thresholds_for(profiles),
                   git_cwd=git_cwd)
