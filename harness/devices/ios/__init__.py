"""iOS devices over usbmuxd with pymobiledevice3 (see README.md).

Discovery asks the usbmuxd at DiscoveryOptions.usbmux (`--usbmux ADDRESS`), else
$USBMUXD_SOCKET_ADDRESS, else the system's (/var/run/usbmuxd): a Unix socket path or
HOST:PORT, as libimobiledevice reads it. For each device it opens lockdown without pairing
(autopair off: discovery never pops the Trust dialog) and reads ProductType, HardwareModel,
ChipID, ProductVersion. A device this host is not paired with is skipped with a message
naming it and saying how to pair."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

from harness.devices.base import Device

log = logging.getLogger("swaplab.devices.ios")
DEFAULT_USBMUXD = "/var/run/usbmuxd"


def usbmux_address(options=None) -> str | None:
    addr = getattr(options, "usbmux", None) or os.environ.get("USBMUXD_SOCKET_ADDRESS")
    return addr or None


def _strip(text: str) -> str:
    return "".join(c for c in str(text) if c.isprintable())


async def _probe(address: str | None) -> tuple[list[tuple[str, dict]], list[str]]:
    # lazy: pymobiledevice3 takes ~1.5 s to import; only when a usbmuxd is there to ask
    from pymobiledevice3.lockdown import create_using_usbmux
    from pymobiledevice3.usbmux import list_devices  # lazy: as above

    from harness.devices.ios.device import untrusted_message  # lazy: imports pymobiledevice3
    found, skipped = [], []
    for mux in await list_devices(usbmux_address=address):
        try:
            ld = await create_using_usbmux(mux.serial, autopair=False, usbmux_address=address)
        except Exception as e:  # noqa: BLE001 - one bad device must not hide the others
            skipped.append(f"iOS device {_strip(mux.serial)}: lockdown failed: "
                           f"{type(e).__name__}: {_strip(e)}; skipped")
            continue
        try:
            values = dict(ld.all_values or {})
            if not ld.paired:
                name = _strip(values.get("DeviceName") or values.get("ProductType") or "?")
                skipped.append(untrusted_message(_strip(mux.serial), name))
                continue
            found.append((mux.serial, values))
        finally:
            await ld.close()
    return found, skipped


def discover(options=None) -> list[Device]:
    """Paired iOS devices behind usbmuxd. Never raises; no usbmuxd means no devices."""
    address = usbmux_address(options)
    path = address if address and ":" not in address else (None if address else DEFAULT_USBMUXD)
    if path and not os.path.exists(path):
        log.info("no usbmuxd socket at %s", path)
        return []
    try:
        # lazy: pymobiledevice3 (~1.5 s to import) only when a usbmuxd is there to ask
        from harness.devices.ios.device import IosDevice
    except ImportError as e:
        log.info("iOS backend unavailable: %s", e)
        return []
    try:
        found, skipped = asyncio.run(_probe(address))
    except Exception as e:  # noqa: BLE001 - discovery never raises
        log.warning("usbmuxd at %s: %s", address or DEFAULT_USBMUXD, e)
        return []
    for msg in skipped:
        log.warning("%s", msg)
        print(f"SwapLab: {msg}", file=sys.stderr)
    work = getattr(options, "work_root", None)
    return [IosDevice(udid, values, address, work_root=Path(work) / "ios" if work else None)
            for udid, values in found]
