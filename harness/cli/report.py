"""`swaplab report RUN [--compare OTHER] [--screenshot [PNG]] [--lab-out DIR]`: re-render
index.html, benchmarks.json and trace.json of a run; with --compare, compare RUN
(candidate) against OTHER (baseline) first and render the verdicts.

RUN / OTHER: a run folder, a record.json, a run id under `<lab-out>/runs`, or (for the
baseline) any --baseline spec: "latest", "main" (latest run on branch main), a git ref.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import add_lab_out_args, error
from harness.history.baseline import BaselineError
from harness.history.compare import compare_specs, find_run_dir
from harness.history.store import history_db_for_run, sync_runs
from harness.record.run_record import RunRecord, load_record, recover_record
from harness.report import write_reports
from harness.report.chromium import ChromiumError, check_report
from harness.terminal import printable

HELP = "render the report of a run (optionally compared with another run)"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", metavar="RUN", help="run folder or run id")
    p.add_argument("--compare", metavar="OTHER", default=None,
                   help="baseline run (folder, run id, 'latest', branch or git ref) to "
                        "compare RUN against")
    p.add_argument("--screenshot", nargs="?", const="", default=None, metavar="PNG",
                   help="also load the report in headless Chromium (fails on console "
                        "errors) and save a screenshot (default <run>/report.png)")
    add_lab_out_args(p)


def run(args: argparse.Namespace) -> int:
    run_dir = find_run_dir(args.run_dir, args.lab_out)
    if run_dir is None:
        return error(f"{args.run_dir}/record.json not found (nor a run id under "
                     f"{args.lab_out}/runs)")
    try:  # a run killed half-way: its record.json from the journal, for every reader
        recover_record(run_dir)
    except (ValueError, OSError) as e:
        return error(str(e))
    try:  # trends need the history: bring it up to date with the run folders
        sync_runs(history_db_for_run(run_dir), run_dir.resolve().parent)
    except Exception as e:  # noqa: BLE001 - a report without trends is still a report
        print(f"swaplab: warning: history not updated: {e}", file=sys.stderr)
    if args.compare:
        status = _store_comparison(args, run_dir)
        if status:
            return status
    try:
        path = write_reports(run_dir)
    except (ValueError, OSError) as e:
        return error(str(e))
    print(path)
    if args.screenshot is not None:
        return _screenshot(path, Path(args.screenshot) if args.screenshot
                           else run_dir / "report.png")
    return 0


def _store_comparison(args: argparse.Namespace, run_dir: Path) -> int:
    """Compare the run against --compare and keep the verdicts in its record."""
    lab_out = run_dir.resolve().parent.parent
    try:
        comp, _ = compare_specs(history_db_for_run(run_dir), lab_out, args.compare,
                                str(run_dir), args.profiles_dir)
    except (BaselineError, ValueError, OSError) as e:
        return error(f"--compare {args.compare}: {e}")
    try:
        data = load_record(run_dir)
    except (ValueError, OSError) as e:
        return error(str(e))
    data.pop("effective_status", None)
    RunRecord(run_dir, data).set_field("comparison", comp.as_record())
    for line in comp.gate_lines:
        print(printable(line))
    return 0


def _screenshot(path: Path, shot: Path) -> int:
    """Load the report in headless Chromium: fail on console errors, save a screenshot."""
    try:
        check = check_report(path, screenshot=shot)
    except ChromiumError as e:
        return error(str(e))
    for line in check.console_errors:
        print(printable(f"console: {line}"), file=sys.stderr)
    print(shot)
    if check.console_errors:
        return error(f"{len(check.console_errors)} console error(s) in {path}")
    return 0
