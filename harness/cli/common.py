"""What the subcommands share: the lab output / profile folder options and the error line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import REPO_ROOT
from harness.terminal import printable


def add_lab_out_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lab-out", type=Path, default=Path("reports"),
                   help="lab output folder holding runs/ and history.sqlite "
                        "(default: reports)")
    p.add_argument("--profiles-dir", type=Path, default=REPO_ROOT / "device_profiles",
                   help="profiles whose [regression] tables set the thresholds")


def error(msg: str) -> int:
    """Print `swaplab: error: MSG` to stderr; the exit status 1."""
    print(printable(f"swaplab: error: {msg}", keep_newlines=True), file=sys.stderr)
    return 1
