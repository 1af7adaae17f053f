"""`swaplab virtual-device start --profile NAME [--port P] [--abi x86_64|arm64-v8a]
[--fault SPEC ...] [--root DIR]`: run a virtual Android device until Ctrl-C.
With `--usbmux SOCK|HOST:PORT` a virtual iPhone instead (harness/virtual_device/ios/).
`swaplab virtual-device stf --profile NAME [--profile NAME ...]`: an STF stand-in (stf.py)
handing out such devices, for trying `--stf` without a farm.

`swaplab virtual-device ...` (harness/cli/) delegates to `main(argv)`;
`python -m harness.virtual_device` runs it directly.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from harness.profiles import VIRTUAL_ABIS

from .adbauth import AuthKeyError
from .faults import FaultSpecError, parse_faults
from .privileges import PrivilegeError
from .profile import ProfileError, load_virtual_profile
from .server import VirtualDevice
from .stf import StfServer


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="swaplab virtual-device",
                                 description="A virtual Android device speaking the adb protocol")
    sub = ap.add_subparsers(dest="action", required=True)
    st = sub.add_parser("start", help="start a virtual device (runs until Ctrl-C)")
    st.add_argument("--profile", required=True, help="profile name or .toml path")
    st.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0 = free port)")
    st.add_argument("--abi", choices=VIRTUAL_ABIS, help="override the profile's [virtual] abi")
    st.add_argument("--fault", action="append", default=[], metavar="SPEC",
                    help="fault injection, see harness/virtual_device/faults.py")
    st.add_argument("--root", type=Path, help="sandbox folder (default: a temp folder)")
    st.add_argument("--profiles-dir", type=Path)
    st.add_argument("--usbmux", metavar="SOCK|HOST:PORT",
                    help="serve a virtual iPhone (usbmuxd + lockdownd) at this Unix socket or "
                         "TCP address instead of an adb device (harness/virtual_device/ios/)")
    st.add_argument("--trusted-keys", type=Path, action="append", default=None, metavar="FILE",
                    help="adb public keys to accept (adbkey.pub format, one per line; "
                         "repeatable; default: ~/.android/adbkey.pub of the user starting it)")
    st.add_argument("-v", "--verbose", action="store_true")
    stf = sub.add_parser("stf", help="an STF stand-in handing out virtual devices (stf.py; "
                                     "runs until Ctrl-C)")
    stf.add_argument("--profile", action="append", required=True, metavar="NAME",
                     help="a virtual device of this profile (repeatable: one device each)")
    stf.add_argument("--port", type=int, default=0, help="HTTP port on 127.0.0.1 (0 = free)")
    stf.add_argument("--token-env", default="SWAPLAB_STF_TOKEN", metavar="NAME",
                     help="environment variable holding the access token clients must send "
                          "(default SWAPLAB_STF_TOKEN, the one `--stf` reads)")
    stf.add_argument("--profiles-dir", type=Path)
    stf.add_argument("--trusted-keys", type=Path, action="append", default=None,
                     metavar="FILE", help="adb public keys the devices accept (as for start)")
    stf.add_argument("-v", "--verbose", action="store_true")
    return ap


def make_device(profile: str, port: int = 0, abi: str | None = None, faults=(),
                root: Path | None = None, profiles_dir: Path | None = None,
                tick_s: float = 0.5, trusted_keys=None) -> VirtualDevice:
    prof = load_virtual_profile(profile, profiles_dir)
    abi = abi or prof["abi"]
    props = dict(prof["properties"])
    props["ro.product.cpu.abi"] = abi
    props["ro.product.cpu.abilist"] = abi
    if root is None:
        root = Path(tempfile.mkdtemp(prefix=f"swaplab-vdev-{prof['name']}-"))
        root.chmod(0o711)  # device programs run as another account (privileges.py)
    return VirtualDevice(root, props, abi=abi, port=port, faults=parse_faults(list(faults)),
                         sim_config=prof["sensors"], tick_s=tick_s, trusted_keys=trusted_keys)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(message)s")
    if args.action == "stf":
        return main_stf(args)
    if args.usbmux:
        # lazy: the iOS device (and its TLS pairing) only when asked for
        from .ios.launch import main_ios
        return main_ios(args)
    try:
        dev = make_device(args.profile, args.port, args.abi, args.fault, args.root,
                          args.profiles_dir, trusted_keys=args.trusted_keys)
    except (ProfileError, FaultSpecError, AuthKeyError, PrivilegeError) as e:
        print(f"swaplab virtual-device: error: {e}", file=sys.stderr)
        return 2
    try:
        dev.start_in_thread()
    except OSError as e:
        print(f"swaplab virtual-device: error: cannot listen on 127.0.0.1:{args.port}: {e}",
              file=sys.stderr)
        return 2
    print(f"virtual device {dev.serial} (profile {args.profile}, abi {dev.abi}, "
          f"SIMULATED sensors) root {dev.sandbox.root}", flush=True)
    if dev.faults.describe():
        print(f"faults: {', '.join(dev.faults.describe())}", flush=True)
    print(f"trusted adb keys: {', '.join(dev.trusted_keys.sources) or 'none'}", flush=True)
    print(f"connect with: adb connect {dev.serial}", flush=True)
    _wait_for_signal()
    dev.stop()
    return 0


def _wait_for_signal() -> None:
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(1):
        pass


def main_stf(args) -> int:
    """The STF stand-in with one virtual device per --profile (serials VDEV-1, VDEV-2...)."""
    token = os.environ.get(args.token_env, "")
    if not token:
        print(f"swaplab virtual-device stf: error: set ${args.token_env} to the access token "
              "clients must send", file=sys.stderr)
        return 2
    devices = []
    try:
        for profile in args.profile:
            devices.append(make_device(profile, 0, None, (), None, args.profiles_dir,
                                       trusted_keys=args.trusted_keys).start_in_thread())
        stf = StfServer({token: "swaplab@localhost"}).start(args.port)
    except (ProfileError, AuthKeyError, PrivilegeError, OSError) as e:
        for d in devices:
            d.stop()
        print(f"swaplab virtual-device stf: error: {e}", file=sys.stderr)
        return 2
    for i, (profile, dev) in enumerate(zip(args.profile, devices, strict=True), 1):
        stf.add_virtual(dev, f"VDEV-{i}")
        print(f"STF device VDEV-{i}: virtual {profile} at {dev.serial} (SIMULATED sensors)",
              flush=True)
    print(f"STF stand-in at {stf.url} (token from ${args.token_env})", flush=True)
    print(f"use with: ./run lab --stf {stf.url}", flush=True)
    _wait_for_signal()
    stf.stop()
    for d in devices:
        d.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
