"""Reconnecting an Android device that dropped (harness.fleet: reconnect once, then offline).

A serial HOST:PORT is a device over TCP (Wi-Fi adb, a virtual device, a remote serial such
as DeviceFarmer STF's remoteConnect hands out): the adb server is told to forget the dead
transport and `adb connect` it again. Any other serial is a USB device: the adb server is
asked to reconnect its transport (what `adb -s SERIAL reconnect` sends). Either way the
device counts as back only when the server says "device" and a shell command answers.
"""

from __future__ import annotations

import contextlib
import logging
import time

from harness.devices.base import DeviceError

log = logging.getLogger("swaplab.devices.android")


def is_tcp_serial(serial: str) -> bool:
    host, sep, port = serial.rpartition(":")
    return bool(sep and host and port.isdigit())


def connect_serials(client, serials) -> None:
    """`adb connect` each remote serial (HOST:PORT) on the local adb server before discovery
    lists its devices: where a farm's claimed devices join the run (DiscoveryOptions.
    adb_connect; DeviceFarmer STF's remoteConnect gives such serials). A serial that does
    not connect is logged and left out; discovery never raises."""
    for serial in serials:
        try:
            log.info("adb connect %s: %s", serial, client.connect(serial, timeout=20).strip())
        except Exception as e:  # noqa: BLE001 - discovery never raises
            log.warning("adb connect %s failed: %s", serial, e)


def reconnect_device(serial: str, client, adb_device, timeout_s: float = 20.0) -> str:
    """Bring `serial` back on the adb server of `client` (adbutils); returns what was
    done, raises DeviceError naming the device when it does not come back."""
    if is_tcp_serial(serial):
        with contextlib.suppress(Exception):  # the transport may be gone already
            client.disconnect(serial)
        try:
            how = f"adb connect {serial}: {client.connect(serial, timeout=timeout_s).strip()}"
        except Exception as e:  # noqa: BLE001 - adbutils raises several kinds
            raise DeviceError(f"device {serial}: adb connect failed: {e}") from None
    else:
        try:
            with client.make_connection() as c:
                c.send_command(f"host-serial:{serial}:reconnect")
                c.check_okay()
            how = f"adb reconnect {serial}"
        except Exception as e:  # noqa: BLE001
            raise DeviceError(f"device {serial}: adb reconnect failed: {e}") from None
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if adb_device.get_state() == "device" and \
                    "ok" in adb_device.shell("echo ok", timeout=10):
                return how
        except Exception as e:  # noqa: BLE001 - not back yet
            last = f"{type(e).__name__}: {e}"
        time.sleep(0.5)
    raise DeviceError(f"device {serial} did not come back within {timeout_s:g} s after "
                      f"{how} ({last or 'not in state device'})")
