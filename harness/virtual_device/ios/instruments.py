"""The DVT instruments server of the virtual iPhone (com.apple.instruments.remoteserver.
DVTSecureSocketProxy): capability handshake, channels, and the subset the backend uses:

  processcontrol  launchSuspendedProcessWithDevicePath:bundleIdentifier:environment:
                  arguments:options: (returns the pid), sendSignal:toPid:, killPid:,
                  processIdentifierForBundleIdentifier:
  deviceinfo      isRunningPid:, runningProcesses, sysmonProcessAttributes,
                  sysmonSystemAttributes
  sysmontap       setConfig:, start, stop; rows {"Processes": {pid: [procAttrs...]}} every
                  "ur" ms, measured from /proc of the app's processes (REAL cpu and memory)

Anything else answers with an NSError, like a selector the real server does not know."""

from __future__ import annotations

import logging
import os
import threading
import time

from .dtx import T_DISPATCH, DtxConnection

log = logging.getLogger("swaplab.virtual_device.ios.instruments")

PROCESSCONTROL = "com.apple.instruments.server.services.processcontrol"
DEVICEINFO = "com.apple.instruments.server.services.deviceinfo"
SYSMONTAP = "com.apple.instruments.server.services.sysmontap"
CAPABILITIES = {"com.apple.private.DTXConnection": 1, "com.apple.private.DTXBlockCompression": 0,
                PROCESSCONTROL: 4, DEVICEINFO: 1, SYSMONTAP: 1}
PROCESS_ATTRIBUTES = ["pid", "name", "cpuUsage", "physFootprint", "memResidentSize",
                      "memVirtualSize", "threadCount"]
SYSTEM_ATTRIBUTES = ["vmFreeCount", "vmUsedCount", "physMemSize"]


def _proc_status(pid: int) -> dict[str, int]:
    out = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k in ("VmRSS", "VmHWM", "VmSize", "Threads"):
                    out[k] = int(v.split()[0])
    except OSError:
        pass
    return out


def _cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            rest = f.read().rsplit(b")", 1)[1].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class _Sysmontap:
    def __init__(self, server: InstrumentsServer, code: int):
        self.server, self.code = server, code
        self.config: dict = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu_seen: dict[int, tuple[float, float]] = {}

    def start(self) -> None:
        self.server.conn.notify(self.code, [])  # the first message: an acknowledgement
        self._thread = threading.Thread(target=self._loop, name="vios-sysmontap", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _row(self) -> dict:
        attrs = list(self.config.get("procAttrs") or PROCESS_ATTRIBUTES)
        procs = {}
        now = time.monotonic()
        for pid, name in self.server.device.apps.running_processes():
            status = _proc_status(pid)
            cpu = _cpu_seconds(pid)
            usage = 0.0
            if cpu is not None:
                t_prev, c_prev = self._cpu_seen.get(pid, (None, None))
                if t_prev is not None and now > t_prev:
                    usage = 100.0 * (cpu - c_prev) / (now - t_prev)
                self._cpu_seen[pid] = (now, cpu)
            values = {"pid": pid, "name": name, "cpuUsage": round(usage, 2),
                      "physFootprint": status.get("VmRSS", 0) * 1024,
                      "memResidentSize": status.get("VmRSS", 0) * 1024,
                      "memVirtualSize": status.get("VmSize", 0) * 1024,
                      "threadCount": status.get("Threads", 0)}
            procs[pid] = [values.get(a, 0) for a in attrs]
        return {"Processes": procs, "Type": 7, "ProcessesAttributes": attrs}

    def _loop(self) -> None:
        interval = max(0.05, float(self.config.get("ur", 500)) / 1000.0)
        while not self._stop.wait(interval):
            try:
                self.server.conn.notify(self.code, [self._row()])
            except OSError:
                return


class InstrumentsServer:
    def __init__(self, device, sock):
        self.device = device
        self.conn = DtxConnection(sock)
        self.channels: dict[int, str] = {}
        self.taps: dict[int, _Sysmontap] = {}

    def serve(self) -> None:
        try:
            while True:
                msg = self.conn.read()
                if msg.type != T_DISPATCH:
                    continue
                try:
                    self._dispatch(msg)
                except (ValueError, TypeError, KeyError) as e:
                    self.conn.reply_error(msg, f"bad arguments: {e}")
        except (OSError, ValueError, ConnectionError):
            pass
        finally:
            for tap in self.taps.values():
                tap.stop()

    def _dispatch(self, msg) -> None:
        sel = msg.selector()
        if msg.channel == 0:
            if sel == "_notifyOfPublishedCapabilities:":
                self.conn.dispatch(0, "_notifyOfPublishedCapabilities:", [CAPABILITIES])
                return
            if sel == "_requestChannelWithCode:identifier:":
                code, ident = int(msg.aux[0]), str(msg.aux[1])
                if ident not in (PROCESSCONTROL, DEVICEINFO, SYSMONTAP):
                    self.conn.reply_error(msg, f"no service {ident!r} on this device")
                    return
                self.channels[code] = ident
                self.conn.reply(msg)
                return
            if sel == "_channelCanceled:":
                code = int(msg.aux[0])
                self.channels.pop(code, None)
                tap = self.taps.pop(code, None)
                if tap:
                    tap.stop()
                self.conn.reply(msg)
                return
        service = self.channels.get(msg.channel)
        handler = {PROCESSCONTROL: self._processcontrol, DEVICEINFO: self._deviceinfo,
                   SYSMONTAP: self._sysmontap}.get(service)
        if handler is None or not handler(msg, sel):
            self.conn.reply_error(msg, f"{sel} - it does not respond to the selector")

    def _processcontrol(self, msg, sel: str) -> bool:
        apps = self.device.apps
        if sel == "launchSuspendedProcessWithDevicePath:bundleIdentifier:environment:arguments:options:":
            _path, bundle, env, args, options = msg.aux
            try:
                pid = apps.launch(str(bundle), [str(a) for a in (args or [])],
                                  {str(k): str(v) for k, v in (env or {}).items()},
                                  kill_existing=bool((options or {}).get("KillExisting", True)))
            except LookupError as e:
                self.conn.reply_error(msg, str(e))
                return True
            self.conn.reply(msg, pid)
            return True
        if sel == "sendSignal:toPid:":
            apps.signal(int(msg.aux[1]), int(msg.aux[0]))
            self.conn.reply(msg)
            return True
        if sel == "killPid:":
            apps.signal(int(msg.aux[0]), 9)
            self.conn.reply(msg)
            return True
        if sel == "processIdentifierForBundleIdentifier:":
            self.conn.reply(msg, apps.pid_of(str(msg.aux[0])) or 0)
            return True
        return False

    def _deviceinfo(self, msg, sel: str) -> bool:
        apps = self.device.apps
        if sel == "isRunningPid:":
            self.conn.reply(msg, apps.is_running(int(msg.aux[0])))
        elif sel == "runningProcesses":
            self.conn.reply(msg, [{"pid": pid, "name": name, "isApplication": True,
                                   "realAppName": name} for pid, name in apps.running_processes()])
        elif sel == "sysmonProcessAttributes":
            self.conn.reply(msg, PROCESS_ATTRIBUTES)
        elif sel == "sysmonSystemAttributes":
            self.conn.reply(msg, SYSTEM_ATTRIBUTES)
        else:
            return False
        return True

    def _sysmontap(self, msg, sel: str) -> bool:
        tap = self.taps.setdefault(msg.channel, _Sysmontap(self, msg.channel))
        if sel == "setConfig:":
            tap.config = dict(msg.aux[0] or {})
        elif sel == "start":
            tap.start()
        elif sel == "stop":
            tap.stop()
            self.taps.pop(msg.channel, None)
        else:
            return False
        self.conn.reply(msg)
        return True
