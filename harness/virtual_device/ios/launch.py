"""Start virtual iPhones behind a virtual usbmuxd: `swaplab virtual-device start --profile
iphone15pro --usbmux SOCK` (harness/virtual_device/launch.py hands over here) and tests."""

from __future__ import annotations

import logging
import signal
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Self

from harness.virtual_device.profile import ProfileError, load_virtual_profile

from .device import FaultError, IosFaults, VirtualIPhone
from .usbmuxd import VirtualUsbmuxd

log = logging.getLogger("swaplab.virtual_device.ios")


def make_iphone(profile: str, faults=(), root: Path | None = None,
                profiles_dir: Path | None = None, tick_s: float = 0.5, buid: str = ""
                ) -> VirtualIPhone:
    prof = load_virtual_profile(profile, profiles_dir)
    values = dict(prof["properties"])
    if "ProductType" not in values:
        raise ProfileError(f"profile {prof['name']!r}: [virtual.properties] has no ProductType "
                           "(an iOS profile needs ProductType, HardwareModel, ChipID, "
                           "ProductVersion)")
    values["SwapLabProfile"] = prof["name"]
    if root is None:
        root = Path(tempfile.mkdtemp(prefix=f"swaplab-vios-{prof['name']}-"))
    return VirtualIPhone(root, values, IosFaults(list(faults)), prof["sensors"], tick_s, buid)


class IosLab:
    """A virtual usbmuxd at `address` (default: a socket in `tmp`) with virtual iPhones.

        with IosLab(tmp_path) as lab:
            phone = lab.iphone("iphone15pro")
            # clients: usbmux_address=lab.address, or USBMUXD_SOCKET_ADDRESS=lab.address
    """

    def __init__(self, tmp: Path, address: str | None = None):
        self.tmp = Path(tmp)
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.mux = VirtualUsbmuxd(address or str(self.tmp / "usbmuxd.sock"),
                                  str(uuid.uuid4()).upper())
        self.phones: list[VirtualIPhone] = []

    @property
    def address(self) -> str:
        return self.mux.address

    def __enter__(self) -> Self:
        self.mux.start()
        return self

    def iphone(self, profile: str, faults=(), profiles_dir: Path | None = None,
               tick_s: float = 0.5) -> VirtualIPhone:
        root = self.tmp / f"iphone{len(self.phones)}"
        phone = make_iphone(profile, faults, root, profiles_dir, tick_s, self.mux.buid)
        self.mux.add(phone)
        self.phones.append(phone)
        return phone

    def __exit__(self, *exc) -> None:
        self.mux.stop()
        for phone in self.phones:  # an unplugged phone is no longer the usbmuxd's
            phone.stop()


def main_ios(args) -> int:
    """The CLI path for --usbmux (args from harness/virtual_device/launch.py)."""
    mux = VirtualUsbmuxd(args.usbmux, str(uuid.uuid4()).upper())
    try:
        phone = make_iphone(args.profile, args.fault, args.root, args.profiles_dir,
                            buid=mux.buid)
    except (ProfileError, FaultError) as e:
        print(f"swaplab virtual-device: error: {e}", file=sys.stderr)
        return 2
    try:
        mux.start()
    except OSError as e:
        phone.stop()
        print(f"swaplab virtual-device: error: cannot serve usbmuxd at {args.usbmux}: {e}",
              file=sys.stderr)
        return 2
    mux.add(phone)
    v = phone.values
    print(f"virtual iPhone {phone.udid} ({v.get('ProductType')}, iOS {v.get('ProductVersion')}, "
          f"profile {v.get('SwapLabProfile')}, SIMULATED sensors) root {phone.root}", flush=True)
    if phone.faults.describe():
        print(f"faults: {', '.join(phone.faults.describe())}", flush=True)
    print(f"usbmuxd at {mux.address}: swaplab devices --usbmux {mux.address}  "
          f"(or USBMUXD_SOCKET_ADDRESS={mux.address})", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    while not done.wait(1):
        pass
    mux.stop()
    return 0
