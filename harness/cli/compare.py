"""`swaplab compare BASELINE CANDIDATE [--lab-out DIR] [--fail-on-unknown]`: one verdict
line per device x test x metric; exit 1 on a regression or a failed target of the
candidate, else 0.

BASELINE / CANDIDATE: a run folder, a record.json, a run id under `<lab-out>/runs`, or
(for the baseline) any --baseline spec: "latest", "main" (latest run on branch main), a
git ref.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness.cli.common import add_lab_out_args, error
from harness.history.baseline import BaselineError
from harness.history.compare import compare_specs
from harness.history.store import HISTORY_NAME
from harness.terminal import printable

HELP = "compare two runs: verdict lines, exit 1 on a regression"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("baseline", help="baseline run (folder, run id, 'latest', branch, git ref)")
    p.add_argument("candidate", help="candidate run (folder or run id)")
    p.add_argument("--fail-on-unknown", action="store_true",
                   help="also fail on 'unknown' verdicts (too few samples, inconclusive)")
    p.add_argument("--db", type=Path, default=None,
                   help="history database (default <lab-out>/history.sqlite)")
    add_lab_out_args(p)


def run(args: argparse.Namespace) -> int:
    db = args.db or args.lab_out / HISTORY_NAME
    try:
        comp, _ = compare_specs(db, args.lab_out, args.baseline, args.candidate,
                                args.profiles_dir, fail_on_unknown=args.fail_on_unknown)
    except (BaselineError, ValueError, OSError) as e:
        return error(str(e))
    for r in comp.rows:  # serials and names come from records on disk: untrusted
        print(printable(r.line()))
    print(f"# baseline {comp.baseline_run}: " + (", ".join(
        f"{n} {v}" for v, n in sorted(comp.verdict_counts().items())) or "nothing to compare"))
    if comp.exit_status:
        print(f"# gate FAILED: {len(comp.gate.regressions)} regression(s), "
              f"{len(comp.gate.target_failures)} failed target(s)")
        for line in comp.gate_lines:
            print(printable(line), file=sys.stderr)
    return int(comp.exit_status)
