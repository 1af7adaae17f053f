"""One virtual iPhone: identity (lockdown values from the profile), pairing, the port map
behind usbmuxd's Connect, its services, apps, storage, simulated battery, and faults.

Faults (`--fault`, repeatable):
  drop-after=S[:PATTERN]  S s after an app launch whose arguments contain PATTERN (default
                          "--frames"; "launch=N": the N-th launch): unplugged (usbmuxd Detached, every connection cut,
                          Connect answers BADDEV); the app keeps running, as on a phone
  kill-app=S[:PATTERN]    S s after such a launch the app crashes (SIGSEGV; no exit status)
  full-storage=BYTES      writes beyond BYTES in total fail with AFC NO_SPACE_LEFT
  untrusted               never paired with this host: no pair record, StartSession
                          answers InvalidHostID
  no-battery              the IORegistry has no AppleSmartBattery (a sensor that is missing)
  hot=C, battery=PCT, charging   start state of the simulation"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import threading
from pathlib import Path

from harness.virtual_device.simulation import SensorSimulation

from .afc import AfcServer, Storage
from .apps import AppHost
from .framing import close_quietly
from .instruments import InstrumentsServer
from .lockdownd import LOCKDOWN_PORT, serve_lockdown
from .pairing import make_pairing
from .services import serve_diagnostics, serve_house_arrest, serve_installation_proxy

log = logging.getLogger("swaplab.virtual_device.ios.device")

DVT_SERVICE = "com.apple.instruments.remoteserver.DVTSecureSocketProxy"
SERVICES = ("com.apple.afc", "com.apple.mobile.house_arrest",
            "com.apple.mobile.installation_proxy", "com.apple.mobile.diagnostics_relay",
            DVT_SERVICE)
INT_VALUES = ("ChipID", "BoardId", "UniqueChipID")


class FaultError(ValueError):
    pass


class IosFaults:
    def __init__(self, specs: list[str]):
        self.drop: tuple[float, str] | None = None
        self.kill: tuple[float, str] | None = None
        self.full_storage: int | None = None
        self.untrusted = False
        self.no_battery = False
        self.hot_c: float | None = None
        self.battery_pct: float | None = None
        self.charging = False
        for spec in specs:
            key, _, value = spec.partition("=")
            try:
                if key in ("drop-after", "kill-app"):
                    s, _, pat = value.partition(":")
                    entry = (float(s), pat or "--frames")
                    if key == "drop-after":
                        self.drop = entry
                    else:
                        self.kill = entry
                elif key == "full-storage":
                    self.full_storage = int(value)
                elif key == "untrusted" and not value:
                    self.untrusted = True
                elif key == "no-battery" and not value:
                    self.no_battery = True
                elif key == "hot":
                    self.hot_c = float(value)
                elif key == "battery":
                    self.battery_pct = float(value)
                elif key == "charging" and not value:
                    self.charging = True
                else:
                    raise FaultError(f"unknown iOS fault {spec!r}")
            except ValueError as e:
                if isinstance(e, FaultError):
                    raise
                raise FaultError(f"bad fault {spec!r}: {e}") from None

    def describe(self) -> list[str]:
        out = []
        if self.drop:
            out.append(f"unplugged {self.drop[0]:g} s after a launch with {self.drop[1]!r}")
        if self.kill:
            out.append(f"app crashes {self.kill[0]:g} s after a launch with {self.kill[1]!r}")
        if self.full_storage is not None:
            out.append(f"storage full after {self.full_storage} bytes")
        if self.untrusted:
            out.append("not paired with this host (untrusted)")
        if self.no_battery:
            out.append("no AppleSmartBattery in the IORegistry")
        return out


class VirtualIPhone:
    def __init__(self, root: Path, values: dict, faults: IosFaults | None = None,
                 sim_config: dict | None = None, tick_s: float = 0.5, buid: str = ""):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.faults = faults or IosFaults([])
        v = dict(values)
        for k in INT_VALUES:
            if k in v:
                v[k] = int(str(v[k]), 0)
        ecid = random.getrandbits(52)
        chip = int(v.get("ChipID", 0x8130))
        self.udid = f"{chip:08X}-{ecid:016X}"
        v.setdefault("DeviceClass", "iPhone")
        v.setdefault("ProductName", "iPhone OS")
        v.setdefault("CPUArchitecture", "arm64e")
        v.setdefault("DeviceName", "SwapLab virtual iPhone")
        v.update({"UniqueDeviceID": self.udid, "UniqueChipID": ecid, "SerialNumber":
                  f"SWL{ecid % 10**9:09d}", "SwapLabVirtual": True})
        self.values = v
        self.name = str(v["DeviceName"])
        self.trusted = not self.faults.untrusted
        self.pairing = make_pairing(buid or "00000000-0000-0000-0000-000000000000")
        self.values["WiFiAddress"] = self.pairing.wifi_mac
        (self.root / "media" / "PublicStaging").mkdir(parents=True, exist_ok=True)
        self.storage = Storage(self.faults.full_storage)
        self.sim = SensorSimulation(self.root / ".sim", {"p_idle_w": 0.4, "p_core_w": 1.2,
                                                          **(sim_config or {})},
                                    hot_c=self.faults.hot_c, battery_pct=self.faults.battery_pct,
                                    charging=self.faults.charging, tick_s=tick_s)
        self.apps = AppHost(self.root, self.sim)
        self.apps.on_launch.append(self._launch_faults)
        self._ports: dict[int, str] = {}
        self._lock = threading.Lock()
        self._fds: set[int] = set()
        self._mux = None
        self._dev_id: int | None = None
        self.gone = False
        self._tls: ssl.SSLContext | None = None
        self._timers: list[threading.Timer] = []
        self._launches = 0
        self.sim.start()

    # --- identity -----------------------------------------------------------------
    def lockdown_values(self) -> dict:
        return dict(self.values)

    def domain_values(self, domain: str) -> dict:
        if domain == "com.apple.mobile.battery":
            return {"BatteryCurrentCapacity": round(self.sim.level),
                    "BatteryIsCharging": self.sim.charging, "ExternalConnected": self.sim.charging}
        if domain == "com.apple.disk_usage":
            free = self.storage.free_bytes if self.storage.free_bytes is not None else 64 << 30
            return {"TotalDiskCapacity": 128 << 30, "AmountDataAvailable": free}
        return {}

    def battery_ioregistry(self) -> dict | None:
        """AppleSmartBattery as iOS reports it: Temperature in 1/100 C, Voltage in mV,
        InstantAmperage in mA (negative while discharging). SIMULATED values."""
        if self.faults.no_battery:
            return None
        s = self.sim
        v = s.voltage_v
        amps = 1.0 if s.charging else -s.power_w / v
        return {"Temperature": round(s.t_batt * 100), "Voltage": round(v * 1000),
                "InstantAmperage": round(amps * 1000), "Amperage": round(amps * 1000),
                "CurrentCapacity": round(s.level), "MaxCapacity": 100,
                "IsCharging": s.charging, "ExternalConnected": s.charging,
                "DesignCapacity": 3274, "CycleCount": 42, "SwapLabSimulated": True}

    # --- TLS -------------------------------------------------------------------------
    def tls_server_context(self) -> ssl.SSLContext:
        if self._tls is None:
            pem = self.root / ".lockdown" / "device.pem"
            pem.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(pem, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(self.pairing.device_cert_pem + self.pairing.device_key_pem)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(str(pem))
            # the host must prove it holds the pairing: a client certificate from its root
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(cadata=self.pairing.root_cert_pem.decode())
            self._tls = ctx
        return self._tls

    # --- ports and services -----------------------------------------------------------
    def has_service(self, name: str) -> bool:
        return name in SERVICES

    def start_service(self, name: str) -> int:
        with self._lock:
            while True:
                port = random.randint(49152, 65000)
                if port not in self._ports:
                    self._ports[port] = name
                    return port

    def open_port(self, port: int):
        if self.gone:
            return None
        if port == LOCKDOWN_PORT:
            return lambda sock: serve_lockdown(self, sock)
        with self._lock:
            name = self._ports.pop(port, None)
        if name is None:
            return None
        handler = {"com.apple.afc": lambda s: AfcServer(self.root / "media", self.storage,
                                                         self.name).serve(s),
                   "com.apple.mobile.house_arrest": lambda s: serve_house_arrest(self, s),
                   "com.apple.mobile.installation_proxy": lambda s: serve_installation_proxy(self, s),
                   "com.apple.mobile.diagnostics_relay": lambda s: serve_diagnostics(self, s),
                   DVT_SERVICE: lambda s: InstrumentsServer(self, s).serve()}[name]

        def with_tls(sock):
            try:
                tls = self.tls_server_context().wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError) as e:
                log.info("%s: TLS handshake with host failed: %s", name, e)
                return
            try:
                handler(tls)
            finally:
                close_quietly(tls)
        return with_tls

    def media_afc_path(self, device_path: str) -> Path:
        return AfcServer(self.root / "media", self.storage).host_path(device_path)

    def serve_connection(self, conn: socket.socket, handler) -> None:
        fd = conn.fileno()
        with self._lock:
            self._fds.add(fd)

        def run():
            try:
                handler(conn)
            except Exception as e:  # noqa: BLE001 - one bad connection must not stop the device
                log.warning("virtual iPhone %s: connection failed: %r", self.udid, e)
            finally:
                with self._lock:
                    self._fds.discard(fd)
                close_quietly(conn)
        threading.Thread(target=run, name="vios-conn", daemon=True).start()

    # --- usbmuxd attachment and faults --------------------------------------------------
    def attached(self, mux, dev_id: int) -> None:
        self._mux, self._dev_id = mux, dev_id

    def unplug(self) -> None:
        """Like pulling the cable: gone from usbmuxd, every connection cut at once."""
        if self.gone:
            return
        self.gone = True
        if self._mux is not None:
            self._mux.remove(self._dev_id)
        with self._lock:
            fds = list(self._fds)
        for fd in fds:
            try:
                s = socket.socket(fileno=os.dup(fd))
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        log.warning("virtual iPhone %s unplugged (fault)", self.udid)

    def _launch_faults(self, bundle: str, args: list[str], pid: int) -> None:
        self._launches += 1

        def hit(pattern: str) -> bool:  # "launch=N": the N-th launch; else a substring
            if pattern.startswith("launch=") and pattern[7:].isdigit():
                return self._launches == int(pattern[7:])
            return pattern in " ".join(args)
        if self.faults.drop and hit(self.faults.drop[1]):
            self._later(self.faults.drop[0], self.unplug)
        if self.faults.kill and hit(self.faults.kill[1]):
            self._later(self.faults.kill[0], lambda: self.apps.signal(pid, 11))

    def _later(self, delay_s: float, fn) -> None:
        t = threading.Timer(delay_s, fn)
        t.daemon = True
        t.start()
        self._timers.append(t)

    def stop(self) -> None:
        for t in self._timers:
            t.cancel()
        self.apps.kill_all()
        self.sim.stop()
