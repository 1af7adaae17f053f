"""`swaplab devices [--profiles-dir DIR] [--no-local-device] [--adb-server HOST:PORT]
[--usbmux SOCK|HOST:PORT]`: list the devices discovery finds and the profile each matches."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import REPO_ROOT, cache_root
from harness.devices import DiscoveryOptions
from harness.session import LabSession

HELP = "list devices and the profile each matches"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profiles-dir", type=Path, default=REPO_ROOT / "device_profiles")
    p.add_argument("--adb-server", action="append", default=[])
    p.add_argument("--adb-port", type=int, default=None)
    p.add_argument("--usbmux", default=None, metavar="SOCK|HOST:PORT",
                   help="usbmuxd for iOS devices (default: $USBMUXD_SOCKET_ADDRESS)")
    p.add_argument("--no-local-device", action="store_true")


def run(args: argparse.Namespace) -> int:
    lab = LabSession(profiles_dir=args.profiles_dir, models_dir=REPO_ROOT / "models",
                     out_root=Path("reports"),
                     discovery=DiscoveryOptions(remote_adb_servers=args.adb_server,
                                                adb_port=args.adb_port,
                                                usbmux=args.usbmux,
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
