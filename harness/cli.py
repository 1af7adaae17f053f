"""`swaplab` console script.

  swaplab devices [--profiles-dir DIR] [--no-local-device] [--adb-server HOST:PORT]
  swaplab profiles check [DIR]
  swaplab report RUN_DIR            re-render index.html + benchmarks.json of a run
  swaplab lab [pytest args]         run the suites (same as `pytest suites`)
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
    from harness.report import write_reports
    run_dir = Path(args.run_dir)
    if not (run_dir / "record.json").is_file():
        print(f"swaplab: error: {run_dir}/record.json not found", file=sys.stderr)
        return 1
    try:
        path = write_reports(run_dir)
    except (ValueError, OSError) as e:
        print(f"swaplab: error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _cmd_lab(args, rest) -> int:
    import pytest
    return int(pytest.main([str(REPO_ROOT / "suites"), *rest]))


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
    p = sub.add_parser("report", help="render the report of a run folder")
    p.add_argument("run_dir")
    sub.add_parser("lab", help="run the suites; extra args go to pytest", add_help=False)
    args, rest = parser.parse_known_args(argv)
    if args.command == "lab":
        return _cmd_lab(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "devices":
        return _cmd_devices(args)
    if args.command == "profiles":
        return _cmd_profiles_check(args)
    return _cmd_report(args)


if __name__ == "__main__":
    sys.exit(main())
