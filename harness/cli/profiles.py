"""`swaplab profiles check [DIR]`: validate every device profile, every table of it, the way
a run does."""

from __future__ import annotations

import argparse
from pathlib import Path

from harness import REPO_ROOT
from harness.cli.common import error
from harness.profiles import ProfileError, load_profiles

HELP = "device profile tools"


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="profiles_command", required=True)
    check = sub.add_parser("check", help="validate every profile")
    check.add_argument("dir", nargs="?", type=Path, default=REPO_ROOT / "device_profiles")


def run(args: argparse.Namespace) -> int:
    try:
        profiles = load_profiles(args.dir)
    except ProfileError as e:
        return error(str(e))
    for p in profiles.values():
        targets = ", ".join(f"{k}={v:g}" for k, v in p.targets.items()) or "no targets"
        print(f"{p.name}\tmarker={p.marker}\t{p.platform}\t{targets}")
    print(f"{len(profiles)} profiles OK in {args.dir}")
    return 0
