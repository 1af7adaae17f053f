"""Device backends and discovery.

Each backend is a module in this folder (`local`), or a package with a `device` module
(`android/`, `ios/`), exposing `discover(options: DiscoveryOptions) -> list[Device]`. Backends are imported lazily; a
backend that is missing or fails to import is reported and skipped, and `discover` must
return [] (never raise) when it finds no devices.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import os
from collections.abc import Callable

from harness.devices.base import Device, DeviceDisconnected, DeviceError  # noqa: F401

log = logging.getLogger("swaplab.devices")

#: Backend modules, in discovery order. Other parts append to this (or call
#: `register_backend`); a name is a module under `harness.devices` or a dotted path.
BACKENDS: list[str] = ["local", "android", "ios"]


def register_backend(module: str) -> None:
    if module not in BACKENDS:
        BACKENDS.append(module)


@dataclasses.dataclass
class DiscoveryOptions:
    """What discovery may look at. `include_local`: offer this host as a device."""

    remote_adb_servers: list[str] = dataclasses.field(default_factory=list)  # "host:port"
    #: remote adb serials (HOST:PORT) to `adb connect` on the local adb server before the
    #: android backend lists its devices: where devices claimed from a farm (DeviceFarmer
    #: STF's remoteConnect) join the run; a dropped one is reconnected the same way
    adb_connect: list[str] = dataclasses.field(default_factory=list)
    adb_port: int | None = None
    #: usbmuxd to ask for iOS devices: socket path or HOST:PORT (default:
    #: $USBMUXD_SOCKET_ADDRESS, else the system's)
    usbmux: str | None = None
    include_local: bool = True
    #: folder where backends keep per-device work folders (local device, virtual device)
    work_root: str | None = None
    #: backends to ask (default: $SWAPLAB_BACKENDS, comma-separated, else all of BACKENDS)
    backends: list[str] | None = None
    #: anything else a backend wants (e.g. virtual devices to start), by backend name
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class DiscoveryResult:
    devices: list[Device]
    #: backend -> why it contributed nothing / failed (for "which devices were found")
    notes: dict[str, str]


def _import_backend(name: str):
    module = importlib.import_module(name if "." in name else f"harness.devices.{name}")
    if not hasattr(module, "discover") and hasattr(module, "__path__"):
        # a platform package (android/, ios/): its backend is the `device` module
        module = importlib.import_module(f"{module.__name__}.device")
    return module


def discover_devices(options: DiscoveryOptions | None = None,
                     warn: Callable[[str], None] | None = None) -> DiscoveryResult:
    """Ask every backend for its devices; duplicates (same serial) keep the first."""
    options = options or DiscoveryOptions()
    devices: list[Device] = []
    notes: dict[str, str] = {}
    seen: set[str] = set()
    names = options.backends
    if names is None and os.environ.get("SWAPLAB_BACKENDS"):
        names = [b.strip() for b in os.environ["SWAPLAB_BACKENDS"].split(",") if b.strip()]
    for name in names if names is not None else list(BACKENDS):
        try:
            backend = _import_backend(name)
        except ModuleNotFoundError as e:
            if e.name and (e.name.endswith(f"devices.{name}") or e.name == name):
                notes[name] = "backend not installed"
            else:
                notes[name] = f"backend unavailable: missing module {e.name}"
            log.debug("device backend %s: %s", name, notes[name])
            continue
        except Exception as e:  # noqa: BLE001 - a broken backend must not hide the others
            notes[name] = f"backend failed to import: {type(e).__name__}: {e}"
            if warn:
                warn(f"SwapLab: device backend {name!r} {notes[name]}")
            continue
        discover = getattr(backend, "discover", None)
        if discover is None:
            notes[name] = "backend has no discover()"
            continue
        try:
            found = list(discover(options))
        except Exception as e:  # noqa: BLE001
            notes[name] = f"discovery failed: {type(e).__name__}: {e}"
            if warn:
                warn(f"SwapLab: device backend {name!r} {notes[name]}")
            continue
        if not found:
            notes.setdefault(name, "no devices")
        for d in found:
            if d.serial in seen:
                continue
            seen.add(d.serial)
            devices.append(d)
    return DiscoveryResult(devices, notes)
