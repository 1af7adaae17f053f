"""`swaplab report` and `swaplab compare` (wired into harness/cli.py).

  swaplab report RUN [--compare OTHER] [--screenshot [PNG]] [--lab-out DIR]
      re-render index.html, benchmarks.json and trace.json of a run; with --compare,
      compare RUN (candidate) against OTHER (baseline) first and render the verdicts.
  swaplab compare BASELINE CANDIDATE [--lab-out DIR] [--fail-on-unknown]
      one verdict line per device x test x metric; exit 1 on a regression or a failed
      target of the candidate, else 0.

RUN / OTHER / BASELINE / CANDIDATE: a run folder, a record.json, a run id under
`<lab-out>/runs`, or (for the baseline) any --baseline spec: "latest", "main"
(latest run on branch main), a git ref.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import REPO_ROOT


def add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lab-out", type=Path, default=Path("reports"),
                   help="lab output folder holding runs/ and history.sqlite "
                        "(default: reports)")
    p.add_argument("--profiles-dir", type=Path, default=REPO_ROOT / "device_profiles",
                   help="profiles whose [regression] tables set the thresholds")


def add_report_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder or run id")
    p.add_argument("--compare", metavar="OTHER", default=None,
                   help="baseline run (folder, run id, 'latest', branch or git ref) to "
                        "compare RUN against")
    p.add_argument("--screenshot", nargs="?", const="", default=None, metavar="PNG",
                   help="also load the report in headless Chromium (fails on console "
                        "errors) and save a screenshot (default <run>/report.png)")
    add_common(p)


def add_compare_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("baseline", help="baseline run (folder, run id, 'latest', branch, git ref)")
    p.add_argument("candidate", help="candidate run (folder or run id)")
    p.add_argument("--fail-on-unknown", action="store_true",
                   help="also fail on 'unknown' verdicts (too few samples, inconclusive)")
    p.add_argument("--db", type=Path, default=None,
                   help="history database (default <lab-out>/history.sqlite)")
    add_common(p)


def _err(msg: str) -> int:
    print(f"swaplab: error: {msg}", file=sys.stderr)
    return 1


def _run_dir(spec: str, lab_out: Path) -> Path | None:
    p = Path(spec)
    if p.name == "record.json" and p.is_file():
        p = p.parent
    if (p / "record.json").is_file():
        return p
    cand = lab_out / "runs" / spec
    if (cand / "record.json").is_file():
        return cand
    return None


def _thresholds(profiles_dir: Path) -> dict:
    from harness.baseline import thresholds_for
    from harness.profiles import ProfileError, load_profiles
    try:
        return thresholds_for(load_profiles(profiles_dir))
    except (ProfileError, OSError):
        return {}


def _compare(db: Path, lab_out: Path, base_spec: str, cand_spec: str, profiles_dir: Path,
             fail_on_unknown: bool = False) -> tuple[dict, str]:
    """Import what is needed, resolve both runs, gate. Returns (comparison, cand id)."""
    from harness.baseline import compare
    from harness.history import BaselineError, import_record, resolve_baseline, run_info, sync_runs
    if (lab_out / "runs").is_dir():
        sync_runs(db, lab_out / "runs")
    cdir = _run_dir(cand_spec, lab_out)
    if cdir is not None:
        cand = import_record(db, cdir)["run_id"]
    elif run_info(db, cand_spec) is not None:
        cand = cand_spec
    else:
        raise BaselineError(f"candidate {cand_spec!r}: no such run folder or run id")
    bdir = _run_dir(base_spec, lab_out)
    base = import_record(db, bdir)["run_id"] if bdir is not None else \
        resolve_baseline(db, base_spec, REPO_ROOT, exclude_run_id=cand)
    if base == cand:
        raise BaselineError("baseline and candidate are the same run")
    comp = compare(db, cand, baseline_run_id=base, thresholds=_thresholds(profiles_dir),
                   fail_on_unknown=fail_on_unknown)
    comp["baseline_spec"] = base_spec
    return comp, cand


def cmd_report(args) -> int:
    from harness.history import BaselineError
    from harness.record import atomic_write_json, load_record
    from harness.report import write_reports
    run_dir = _run_dir(args.run_dir, args.lab_out)
    if run_dir is None:
        return _err(f"{args.run_dir}/record.json not found (nor a run id under "
                    f"{args.lab_out}/runs)")
    from harness.baseline import history_db_for_run
    try:  # trends need the history: bring it up to date with the run folders
        from harness.history import sync_runs
        sync_runs(history_db_for_run(run_dir), run_dir.resolve().parent)
    except Exception as e:  # noqa: BLE001 - a report without trends is still a report
        print(f"swaplab: warning: history not updated: {e}", file=sys.stderr)
    if args.compare:
        lab_out = run_dir.resolve().parent.parent
        try:
            comp, _ = _compare(history_db_for_run(run_dir), lab_out, args.compare,
                               str(run_dir), args.profiles_dir)
        except (BaselineError, ValueError, OSError) as e:
            return _err(f"--compare {args.compare}: {e}")
        try:
            data = load_record(run_dir)
        except (ValueError, OSError) as e:
            return _err(str(e))
        data.pop("effective_status", None)
        data["comparison"] = comp
        atomic_write_json(run_dir / "record.json", data)
        for line in comp["gate"]["lines"]:
            print(line)
    try:
        path = write_reports(run_dir)
    except (ValueError, OSError) as e:
        return _err(str(e))
    print(path)
    if args.screenshot is not None:
        from harness.report.chromium import ChromiumError, check_report
        shot = Path(args.screenshot) if args.screenshot else run_dir / "report.png"
        try:
            check = check_report(path, screenshot=shot)
        except ChromiumError as e:
            return _err(str(e))
        for line in check.console_errors:
            print(f"console: {line}", file=sys.stderr)
        print(shot)
        if check.console_errors:
            return _err(f"{len(check.console_errors)} console error(s) in {path}")
    return 0


def cmd_compare(args) -> int:
    from harness.history import BaselineError
    db = args.db or args.lab_out / "history.sqlite"
    try:
        comp, _ = _compare(db, args.lab_out, args.baseline, args.candidate, args.profiles_dir,
                           fail_on_unknown=args.fail_on_unknown)
    except (BaselineError, ValueError, OSError) as e:
        return _err(str(e))
    for r in comp["rows"]:
        print(r["line"])
    counts: dict[str, int] = {}
    for r in comp["rows"]:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    print(f"# baseline {comp['baseline_run']}: " + (", ".join(
        f"{n} {v}" for v, n in sorted(counts.items())) or "nothing to compare"))
    if comp["gate"]["exit_status"]:
        print(f"# gate FAILED: {comp['gate']['regressions']} regression(s), "
              f"{comp['gate']['target_failures']} failed target(s)")
        for line in comp["gate"]["lines"]:
            print(line, file=sys.stderr)
    return int(comp["gate"]["exit_status"])
