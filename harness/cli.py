"""`swaplab` console script.

  swaplab devices [--profiles-dir DIR] [--no-local-device] [--adb-server HOST:PORT]
  swaplab profiles check [DIR]
  swaplab report RUN [--compare OTHER] [--screenshot [PNG]]
                                    re-render index.html, benchmarks.json, trace.json of a
                                    run; with --compare, compare RUN against OTHER first
  swaplab compare BASELINE CANDIDATE
                                    verdict lines; exit 1 on a regression / failed target
  swaplab score --source S --target T --output O [--json]
                                    every quality score of one swapped frame; exit 1 on a fail
  swaplab lab [pytest args]         run the suites (same as `pytest suites`)
  swaplab virtual-device start --profile NAME [--port P] [--abi ABI] [--fault SPEC ...]
                                    run SwapLab's virtual Android device until Ctrl-C
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import REPO_ROOT, cache_root


def _cmd_devices(args) -> int:
    from harness.devices import DiscoveryOptions
    from harness.session import LabSession
    lab = LabSession(profiles_dir=args.profiles_dir, models_dir=REPO_ROOT / "models",
                     out_root=Path("reports"),
                     discovery=DiscoveryOptions(remote_adb_servers=args.adb_server,
                                                adb_port=args.adb_port,
                                                include_local=not args.no_local_device,
                                                work_root=str(cache_root() / "devices")))
    assignments = lab.assignments()
    for a in assignments:
        d = a.device
        prof = f"{a.profile.name} (marker {a.profile.marker}; {a.reason})" if a.profile \
            else "no matching profile"
        print(f"{d.serial}\t{d.kind}\t{d.name}\t{d.abi}\t{prof}")
    for backend, note in sorted(lab.discover().notes.items()):
        print(f"# backend {backend}: {note}", file=sys.stderr)
    if not assignments:
        print("no devices found", file=sys.stderr)
        return 1
    return 0


def _cmd_profiles_check(args) -> int:
    from harness.profiles import ProfileError, load_profiles
    try:
        profiles = load_profiles(args.dir)
    except ProfileError as e:
        print(f"swaplab: error: {e}", file=sys.stderr)
        return 1
    for p in profiles.values():
        targets = ", ".join(f"{k}={v:g}" for k, v in p.targets.items()) or "no targets"
        print(f"{p.name}\tmarker={p.marker}\t{p.platform}\t{targets}")
    print(f"{len(profiles)} profiles OK in {args.dir}")
    return 0


def _cmd_report(args) -> int:
    from harness.report_cli import cmd_report
    return cmd_report(args)


def _cmd_lab(args, rest) -> int:
    import pytest
    return int(pytest.main([str(REPO_ROOT / "suites"), *rest]))


def _cmd_virtual_device(rest: list[str]) -> int:
    from harness.virtual_device.cli import main as vd_main
    return int(vd_main(rest) or 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swaplab", description="SwapLab device lab")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("devices", help="list devices and the profile each matches")
    p.add_argument("--profiles-dir", type=Path, default=REPO_ROOT / "device_profiles")
    p.add_argument("--adb-server", action="append", default=[])
    p.add_argument("--adb-port", type=int, default=None)
    p.add_argument("--no-local-device", action="store_true")
    p = sub.add_parser("profiles", help="device profile tools")
    psub = p.add_subparsers(dest="profiles_command", required=True)
    pc = psub.add_parser("check", help="validate every profile")
    pc.add_argument("dir", nargs="?", type=Path, default=REPO_ROOT / "device_profiles")
    from harness.report_cli import add_compare_args, add_report_args
    p = sub.add_parser("report", help="render the report of a run (optionally compared "
                                      "with another run)")
    add_report_args(p)
    p = sub.add_parser("compare", help="compare two runs: verdict lines, exit 1 on a "
                                       "regression")
    add_compare_args(p)
    from harness.quality.score_cli import add_score_args
    add_score_args(sub.add_parser("score", help="score one swapped frame; exit 1 on a failure"))
    sub.add_parser("lab", help="run the suites; extra args go to pytest", add_help=False)
    sub.add_parser("virtual-device", add_help=False,
                   help="a virtual Android device speaking the adb protocol "
                        "(swaplab virtual-device start --help)")
    args, rest = parser.parse_known_args(argv)
    if args.command == "lab":
        return _cmd_lab(args, rest)
    if args.command == "virtual-device":
        return _cmd_virtual_device(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "devices":
        return _cmd_devices(args)
    if args.command == "profiles":
        return _cmd_profiles_check(args)
    if args.command == "score":
        from harness.quality.score_cli import cmd_score
        return cmd_score(args)
    if args.command == "compare":
        from harness.report_cli import cmd_compare
        return cmd_compare(args)
    return _cmd_report(args)


if __name__ == "__main__":
    sys.exit(main())
