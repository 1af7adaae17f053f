"""IosDevice: an iPhone behind usbmuxd, driven with pymobiledevice3 (asyncio; one event
loop thread per device so the harness's synchronous Device API can call it).

  files     house_arrest VendContainer + AFC into the runner app's container; workdir is its
            Documents/. AFC has no hash command: a manifest (Documents/.swaplab-manifest.json,
            sha256 and size per file) says what the container holds; a file is skipped when
            its hash matches the manifest and its size the device's stat.
  app       installation_proxy Lookup (skip when CFBundleVersion matches) / Install (.ipa via
            AFC PublicStaging), as `pymobiledevice3 apps install` does.
  run       DVT processcontrol launch with the app contract of runner/ios/README.md
            (--swaplab-run-dir DIR; telemetry to DIR/telemetry.jsonl; DIR/exit_status.json),
            polled until the status appears, the pid is gone (crash) or the timeout (then
            sendSignal SIGKILL); sysmontap samples the app's CPU and footprint meanwhile.
            stdout returned = the app's stdout + the telemetry file (the summary line gains
            the app's thermal_state), so harness/runner/invoke.py is unchanged.
  sensors   diagnostics_relay IORegistry AppleSmartBattery; the last run's sysmontap usage
            and thermal state.
iOS 17+: developer services (DVT) need the RemoteXPC tunnel (`pymobiledevice3 remote
tunneld`); the backend asks tunneld for the device and says how to start it when absent."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import posixpath
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from pymobiledevice3.exceptions import (
    AfcException,
    AfcFileNotFoundError,
    AppInstallError,
    ConnectionTerminatedError,
    MuxException,
)
from pymobiledevice3.lockdown import create_using_usbmux
from pymobiledevice3.services.afc import AfcError
from pymobiledevice3.services.diagnostics import DiagnosticsService
from pymobiledevice3.services.dvt.instruments.dvt_provider import DvtProvider
from pymobiledevice3.services.house_arrest import HouseArrestService
from pymobiledevice3.services.installation_proxy import InstallationProxyService
from pymobiledevice3.tunneld.api import get_tunneld_device_by_udid
from pymobiledevice3.usbmux import list_devices

from harness.devices.base import (
    BackgroundProcess,
    Device,
    DeviceDisconnected,
    DeviceError,
    RunResult,
    SensorReading,
    SyncReport,
)
from harness.devices.ios import app as A
from harness.devices.ios import apprun as R
from harness.devices.ios import sensors as S

log = logging.getLogger("swaplab.devices.ios")

WORKDIR = "Documents"
MANIFEST = ".swaplab-manifest.json"
RUNS_DIR = ".swaplab-runs"
RUNNER_NAME = "swap_runner"
CHUNK = 1 << 20
POLL_S = 0.3
PROCESS_ATTRIBUTES = ["pid", "name", "cpuUsage", "physFootprint"]
SYSTEM_ATTRIBUTES = ["vmFreeCount"]


def _version_tuple(v: str) -> tuple[int, ...]:
    out = []
    for p in str(v).split("."):
        out.append(int(p) if p.isdigit() else 0)
    return tuple(out)


class _Loop:
    """One asyncio loop in a daemon thread; `call(coro, timeout)` runs a coroutine there."""

    def __init__(self, name: str):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self.thread.start()

    def call(self, coro, timeout_s: float | None = None):
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return fut.result(timeout_s)

    def close(self) -> None:
        if self.loop.is_closed():
            return
        with contextlib.suppress(Exception):
            self.call(self.loop.shutdown_asyncgens(), 10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


class IosDevice(Device):
    kind = "ios"

    def __init__(self, udid: str, values: Mapping, usbmux_address: str | None,
                 app_package: Path | None = None, work_root: Path | None = None):
        virtual = bool(values.get("SwapLabVirtual"))
        props = {k: str(values[k]) for k in ("ProductType", "HardwareModel", "ChipID",
                                              "ProductVersion", "BuildVersion", "DeviceClass",
                                              "CPUArchitecture", "DeviceName", "SwapLabProfile")
                 if k in values}
        # the virtual iPhone's app runs the host runner build; a phone runs an Xcode-built app
        abi = "x86_64" if virtual else "ios-arm64"
        # the phone's name is user-set text: no control characters reach a terminal or log
        name = "".join(c for c in str(values.get("DeviceName") or values.get("ProductType")
                                      or udid) if c.isprintable())
        super().__init__(udid, name, "ios", abi, props, WORKDIR)
        self.virtual = virtual
        if virtual:
            self.kind = "virtual"
        self.usbmux_address = usbmux_address
        self.product_version = str(values.get("ProductVersion", "0"))
        self._app_package = app_package
        self.work_root = Path(work_root) if work_root else None
        self._loop = _Loop(f"ios-{udid[:8]}")
        self._lockdown = None
        self.last_run: dict = {}

    @property
    def simulated(self) -> bool:
        return self.virtual

    def describe(self) -> dict:
        d = super().describe()
        d.update({"virtual": self.virtual, "usbmux": self.usbmux_address or "default",
                  "ios_version": self.product_version, "workdir": f"{A.BUNDLE_ID}:{WORKDIR}",
                  "developer_services": "RemoteXPC tunnel" if self._needs_tunnel()
                  else "lockdown (DVTSecureSocketProxy)"})
        return d

    # --- connection -------------------------------------------------------------------
    def _errors(self):
        return (ConnectionError, OSError, EOFError, asyncio.IncompleteReadError,
                ConnectionTerminatedError, MuxException, asyncio.TimeoutError)

    def _still_attached(self) -> bool:

        async def listed():
            return [d.serial for d in await list_devices(usbmux_address=self.usbmux_address)]
        try:
            return self.serial in self._loop.call(listed(), 10)
        except Exception:  # noqa: BLE001 - no usbmuxd at all: not attached
            return False

    def _lost(self, what: str, err: BaseException) -> DeviceError:
        if self._lockdown is not None:
            with contextlib.suppress(Exception):  # the connection is broken: just release it
                self._loop.call(self._lockdown.close(), 10)
            self._lockdown = None
        msg = f"device {self.serial} ({self.name}) "
        if not self._still_attached():
            return DeviceDisconnected(msg + f"disconnected during {what}: "
                                      f"{type(err).__name__}: {err} [no longer listed by usbmuxd]")
        return DeviceError(msg + f"failure during {what}: {type(err).__name__}: {err}")

    async def _ld(self):
        if self._lockdown is None:
            ld = await create_using_usbmux(self.serial, autopair=False,
                                           usbmux_address=self.usbmux_address)
            if not ld.paired:
                await ld.close()
                raise DeviceError(untrusted_message(self.serial, self.name))
            self._lockdown = ld
        return self._lockdown

    def _call(self, what: str, coro_fn, timeout_s: float = 600):
        try:
            return self._loop.call(coro_fn(), timeout_s)
        except DeviceError:
            raise
        except self._errors() as e:
            raise self._lost(what, e) from e

    def _needs_tunnel(self) -> bool:
        return not self.virtual and _version_tuple(self.product_version) >= (17,)

    async def _dvt_provider(self):
        if self._needs_tunnel():
            try:
                rsd = await get_tunneld_device_by_udid(self.serial)
            except Exception as e:  # noqa: BLE001 - tunneld not running
                rsd, why = None, f"{type(e).__name__}: {e}"
            else:
                why = "tunneld has no tunnel to it"
            if rsd is None:
                raise DeviceError(
                    f"device {self.serial} ({self.name}) runs iOS {self.product_version}: "
                    "developer services need the RemoteXPC tunnel (iOS 17+), and " + why +
                    ". Start it with `sudo pymobiledevice3 remote tunneld` (docs: "
                    "harness/devices/ios/README.md) and enable Developer Mode on the phone.")
            return DvtProvider(rsd)
        return DvtProvider(await self._ld())

    # --- app ---------------------------------------------------------------------------------
    def app_package(self) -> Path | None:
        """The runner .ipa for a real iPhone (None: the virtual iPhone wraps the host build)."""
        if self.virtual:
            return None
        p = self._app_package or (Path(os.environ["SWAPLAB_IOS_APP"])
                                  if os.environ.get("SWAPLAB_IOS_APP") else None)
        if p is None or not p.is_file():
            raise DeviceError(
                f"device {self.serial} ({self.name}): no runner app to install"
                + (f" ({p} does not exist)" if p else "") + ": build runner/ios "
                "(runner/ios/BUILD.md) and pass the .ipa with SWAPLAB_IOS_APP=PATH")
        return p

    def install_app(self, ipa: Path) -> bool:
        """Install the .ipa unless the same CFBundleVersion is installed; True if installed."""
        try:
            info = A.ipa_info(ipa)
        except A.AppPackageError as e:
            raise DeviceError(f"device {self.serial}: {e}") from None
        bundle, version = info["CFBundleIdentifier"], info["CFBundleVersion"]

        async def go():
            ld = await self._ld()
            async with InstallationProxyService(lockdown=ld) as ip:
                found = await ip.lookup({"BundleIDs": [bundle],
                                         "ReturnAttributes": ["CFBundleIdentifier",
                                                              "CFBundleVersion"]}) or {}
                if (found.get(bundle) or {}).get("CFBundleVersion") == version:
                    return False
                try:
                    await ip.install_from_local(ipa)
                except AppInstallError as e:
                    raise DeviceError(f"device {self.serial} ({self.name}) refused to install "
                                      f"{ipa.name} ({bundle} {version}): {e}") from None
                return True
        return self._call(f"install of {ipa.name}", go, 900)

    # --- files -------------------------------------------------------------------------------
    def _rel(self, path: str) -> str:
        """Container path of a workdir-relative path (untrusted names are clamped)."""
        p = posixpath.normpath("/" + WORKDIR + "/" + path.lstrip("/")) if not path.startswith(
            "/") else posixpath.normpath(path)
        if not p.startswith(f"/{WORKDIR}"):
            raise DeviceError(f"device {self.serial}: {path!r} is outside the app's {WORKDIR}/")
        return p

    def _house_arrest(self, ld):
        return HouseArrestService.create(ld, A.BUNDLE_ID)

    def sync(self, files: Mapping[str, Path]) -> SyncReport:
        app_files = {r: Path(p) for r, p in files.items() if r.startswith("bin/")}
        data = {r.lstrip("/"): Path(p) for r, p in files.items() if not r.startswith("bin/")}
        for rel in data:
            if ".." in Path(rel).parts:
                raise DeviceError(f"{self.serial}: refusing to sync path outside workdir: {rel}")
        pushed, skipped, nbytes = [], [], 0
        if app_files:
            ipa = self.app_package()
            if ipa is None:
                out = (self.work_root or Path(os.environ.get("TMPDIR", "/tmp"))) / "ios-apps"
                ipa = A.wrap_host_build(app_files, out)
            if self.install_app(ipa):
                pushed.append(f"app:{A.BUNDLE_ID}")
                nbytes += ipa.stat().st_size
            else:
                skipped.append(f"app:{A.BUNDLE_ID}")
        wanted = {}
        for rel, local in data.items():
            h = hashlib.sha256()
            with open(local, "rb") as f:
                for chunk in iter(lambda: f.read(CHUNK), b""):
                    h.update(chunk)
            wanted[rel] = (local, h.hexdigest(), local.stat().st_size)

        async def go():
            ld = await self._ld()
            afc = await self._house_arrest(ld)
            async with afc:
                try:
                    manifest = json.loads(await afc.get_file_contents(f"/{WORKDIR}/{MANIFEST}"))
                    if not isinstance(manifest, dict):
                        manifest = {}
                except (AfcFileNotFoundError, AfcException, ValueError):
                    manifest = {}
                made: set[str] = set()
                try:
                    for rel in sorted(wanted):
                        local, digest, size = wanted[rel]
                        remote = f"/{WORKDIR}/{rel}"
                        entry = manifest.get(rel) or {}
                        if entry.get("sha256") == digest:
                            try:
                                if (await afc.stat(remote))["st_size"] == size:
                                    skipped.append(rel)
                                    continue
                            except AfcFileNotFoundError:
                                pass
                        parent = posixpath.dirname(remote)
                        if parent not in made:
                            await afc.makedirs(parent)
                            made.add(parent)
                        manifest.pop(rel, None)
                        await self._push(afc, local, remote, rel, size)
                        manifest[rel] = {"sha256": digest, "size": size}
                        pushed.append(rel)
                finally:
                    await afc.set_file_contents(f"/{WORKDIR}/{MANIFEST}",
                                                json.dumps(manifest, sort_keys=True).encode())
        self._call("push of models and inputs", go, 3600)
        nbytes += sum(wanted[r][2] for r in pushed if r in wanted)
        return SyncReport(tuple(pushed), tuple(skipped), nbytes)

    async def _push(self, afc, local: Path, remote: str, rel: str, size: int) -> None:
        try:
            h = await afc.fopen(remote, "w")
            try:
                with open(local, "rb") as f:  # noqa: ASYNC230 - 1 MiB local reads between AFC writes
                    for chunk in iter(lambda: f.read(CHUNK), b""):
                        await afc.fwrite(h, chunk)
            finally:
                await afc.fclose(h)
        except AfcException as e:
            if getattr(e, "status", None) == AfcError.NO_SPACE_LEFT:
                try:
                    await afc.rm_single(remote, force=True)
                except AfcException:
                    pass
                raise DeviceError(f"device {self.serial} ({self.name}): storage full while "
                                  f"pushing {rel} ({size} bytes) into the app container "
                                  f"({remote}): AFC NO_SPACE_LEFT; free space on the phone"
                                  ) from None
            raise DeviceError(f"device {self.serial}: push of {rel} to {remote} failed: {e}") \
                from None

    def pull(self, remote_path: str, local_path: Path) -> None:
        src = self._rel(remote_path)
        Path(local_path).parent.mkdir(parents=True, exist_ok=True)

        async def go():
            ld = await self._ld()
            async with await self._house_arrest(ld) as afc:
                try:
                    return await afc.get_file_contents(src)
                except AfcException as e:
                    raise DeviceError(f"device {self.serial}: cannot pull {src}: {e}") from None
        Path(local_path).write_bytes(self._call(f"pull of {src}", go))

    def listdir(self, remote_path: str) -> list[str]:
        path = self._rel(remote_path)

        async def go():
            ld = await self._ld()
            async with await self._house_arrest(ld) as afc:
                try:
                    return await afc.listdir(path)
                except AfcException as e:
                    raise DeviceError(f"device {self.serial}: cannot list {path}: {e}") from None
        return self._call(f"listdir {path}", go)

    def remove(self, remote_path: str) -> None:
        path = self._rel(remote_path)
        if path.rstrip("/") == f"/{WORKDIR}":
            raise DeviceError(f"{self.serial}: refusing to remove {path}")

        async def go():
            ld = await self._ld()
            async with await self._house_arrest(ld) as afc:
                if await afc.exists(path):
                    await afc.rm(path, force=True)
        self._call(f"remove {path}", go)

    # --- processes ---------------------------------------------------------------------------
    def app_arguments(self, argv: Sequence[str], run_dir: str) -> list[str]:
        return R.app_arguments(f"{self.serial} ({self.name})", argv, run_dir)

    def run(self, argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None = None,
            cpu_list: str | None = None) -> RunResult:
        """The runner app with `argv`'s arguments (apprun.py); `cpu_list` has no effect."""
        run_dir = f"{R.RUNS_DIR}/{uuid.uuid4().hex[:12]}"
        args = self.app_arguments(argv, run_dir)
        t0 = time.monotonic()

        async def go():
            ld = await self._ld()
            dvt = await self._dvt_provider()
            async with await self._house_arrest(ld) as afc:
                return await R.run_app(dvt, afc, args, dict(env or {}), run_dir, timeout_s)
        outcome = self._call(f"run of {argv[0]}", go, timeout_s + 300)
        result, self.last_run = R.run_result(self.serial, tuple(argv), outcome,
                                             time.monotonic() - t0, timeout_s)
        return result

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None
              ) -> BackgroundProcess:
        raise DeviceError(f"device {self.serial} ({self.name}): iOS runs no background "
                          "programs besides the runner app (use run())")

    # --- sensors -----------------------------------------------------------------------------
    def read_sensors(self) -> list[SensorReading]:
        sim = self.simulated

        async def go():
            ld = await self._ld()
            async with DiagnosticsService(ld) as diag:
                return await diag.ioregistry(name="AppleSmartBattery")
        try:
            battery = self._call("battery read", go, 60)
            reason = ""
        except DeviceDisconnected:
            raise
        except Exception as e:  # noqa: BLE001 - a sensor that cannot be read is skipped
            battery, reason = None, f"diagnostics_relay IORegistry failed: {e}"
        if battery is not None and "SwapLabSimulated" in battery:
            sim = True
        out = S.battery_readings(battery, sim, reason)
        lr = self.last_run
        usage = lr.get("usage") or {}
        why = lr.get("sysmontap_error") or ("no run yet" if not lr else "sysmontap saw no sample")
        for key, name in (("cpu_mean_pct", "app_cpu_mean_pct"),
                          ("footprint_peak_mb", "app_footprint_peak_mb")):
            v = usage.get(key)
            # sysmontap measures the app process (on the virtual iPhone: the real host process)
            out.append(SensorReading(name, v, False, "" if v is not None else why))
        level = S.thermal_level(lr.get("thermal_state"))
        out.append(SensorReading("thermal_state_level", level,
                                 bool(lr.get("thermal_state_simulated")),
                                 "" if level is not None else "no app run reported a thermal state"))
        return out

    def close(self) -> None:
        """Close the lockdown connection and stop this device's event loop thread."""
        if self._lockdown is not None:
            with contextlib.suppress(Exception):  # closing a dead connection may fail
                self._loop.call(self._lockdown.close(), 10)
            self._lockdown = None
        self._loop.close()


def untrusted_message(udid: str, name: str) -> str:
    return (f"iOS device {udid} ({name}) is not paired with this host (untrusted): unlock it, "
            "tap 'Trust' and enter the passcode, or run `pymobiledevice3 lockdown pair`; skipped")
