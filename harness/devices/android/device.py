"""Android devices over adb (adbutils): phones, emulators, devices of remote adb servers
(device farms) and SwapLab's virtual device (harness/virtual_device).

Discovery asks the local adb server (port: DiscoveryOptions.adb_port, else
$ANDROID_ADB_SERVER_PORT, else 5037) and every remote server (DiscoveryOptions
.remote_adb_servers plus $SWAPLAB_ADB_SERVERS, "host:port" comma-separated). It only
talks to servers that already listen: it never starts an adb server itself.

Files: `sync` lists the sha256 of all wanted files in ONE shell call (`sha256sum`) and
pushes only files whose hash differs. Runs: shell v2 (`shell2(..., v2=True)`: real exit
code, separate stderr) of

    cd WORKDIR && timeout -k 2 T sh -c 'echo $$ > .swaplab-run.pid; exec "$@"' sh \
        [env K=V ...] [taskset HEXMASK] ./prog ARGS...

(every argument shlex-quoted). The device's `timeout` (toybox/coreutils) kills the
process at T seconds (exit 124 -> RunResult.timed_out); if the adb call itself hangs past
T + margin, the harness kills the pid from the pid file. The pid file also lets the
sampler read the runner's VmHWM. A dropped device raises DeviceDisconnected naming it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shlex
import socket
import stat as _stat
import struct
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

import adbutils
from adbutils.errors import AdbConnectionError

from harness.devices.android import parsers as AP
from harness.devices.android import sampler as AS
from harness.devices.android.reconnect import connect_serials, reconnect_device
from harness.devices.base import (
    BackgroundProcess,
    Device,
    DeviceDisconnected,
    DeviceError,
    RunResult,
    SensorReading,
    SyncReport,
)

log = logging.getLogger("swaplab.devices.android")

WORKDIR = "/data/local/tmp/swaplab"
RUN_PID_FILE = ".swaplab-run.pid"
_EMULATOR_SERIAL = re.compile(r"^emulator-\d+$")
TIMEOUT_MARGIN_S = 30.0


def _adb_errors():
    return (adbutils.AdbError, adbutils.AdbTimeout, ConnectionError, EOFError, OSError,
            socket.timeout)


def _listening(host: str, port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def make_client(host: str, port: int, socket_timeout: float = 30):
    """An adbutils client that never starts an adb server itself: adbutils would run
    `adb start-server` on the default port (a user's adb) whenever a connect fails."""

    class _NoSpawnClient(adbutils.AdbClient):
        def make_connection(self, timeout=None):
            if not _listening(host, port, timeout=3):
                raise AdbConnectionError(f"no adb server listening on {host}:{port}")
            return super().make_connection(timeout)

    return _NoSpawnClient(host=host, port=port, socket_timeout=socket_timeout)


def adb_servers(options=None) -> list[tuple[str, int, bool]]:
    """(host, port, is_remote) of the adb servers discovery should ask."""
    servers: list[tuple[str, int, bool]] = []
    port = getattr(options, "adb_port", None)
    if port is None:
        try:
            port = int(os.environ.get("ANDROID_ADB_SERVER_PORT", "5037"))
        except ValueError:
            port = 5037
    servers.append(("127.0.0.1", port, False))
    remote = list(getattr(options, "remote_adb_servers", None) or [])
    remote += [s for s in os.environ.get("SWAPLAB_ADB_SERVERS", "").split(",") if s.strip()]
    for spec in remote:
        host, _, p = spec.strip().rpartition(":")
        try:
            servers.append((host or "127.0.0.1", int(p), True))
        except ValueError:
            log.warning("ignoring adb server %r: expected host:port", spec)
    seen, out = set(), []
    for s in servers:
        if (s[0], s[1]) not in seen:
            seen.add((s[0], s[1]))
            out.append(s)
    return out


def discover(options=None) -> list[Device]:
    """Devices in state "device" on the local and remote adb servers. Never raises."""
    devices: list[Device] = []
    for host, port, remote in adb_servers(options):
        if not _listening(host, port):
            log.info("no adb server listening on %s:%d", host, port)
            continue
        try:
            client = make_client(host, port)
            connect_serials(client, [] if remote else getattr(options, "adb_connect", []))
            infos = client.list()
        except Exception as e:  # noqa: BLE001 - discovery never raises
            log.warning("adb server %s:%d: %s", host, port, e)
            continue
        for info in infos:
            if info.state != "device":
                log.info("adb device %s is %s; skipped", info.serial, info.state)
                continue
            try:
                devices.append(AndroidDevice.connect(client, info.serial,
                                                     adb_server=f"{host}:{port}",
                                                     remote=remote))
            except Exception as e:  # noqa: BLE001
                log.warning("adb device %s on %s:%d: %s", info.serial, host, port, e)
    return devices


class AndroidDevice(Device):
    kind = "android"

    def __init__(self, client, adb_device, serial: str, properties: Mapping[str, str],
                 adb_server: str = "", remote: bool = False, workdir: str = WORKDIR):
        props = dict(properties)
        abi = props.get("ro.product.cpu.abi") or "unknown"
        name = props.get("ro.product.model") or serial
        super().__init__(serial, name, "android", abi, props, workdir)
        self._client = client
        self._dev = adb_device
        self.adb_server = adb_server
        self.remote = remote
        self.virtual = props.get("ro.swaplab.virtual") == "1"
        self.emulator = bool(_EMULATOR_SERIAL.match(serial)) or props.get("ro.kernel.qemu") == "1" \
            or props.get("ro.boot.qemu") == "1"
        self.debuggable = props.get("ro.debuggable") == "1"
        self.soc, self.soc_source = AP.soc_of(props)
        if self.virtual:
            self.kind = "virtual"
        self._features: set[str] | None = None

    # --- construction -------------------------------------------------------------
    @classmethod
    def connect(cls, client, serial: str, adb_server: str = "", remote: bool = False,
                workdir: str = WORKDIR) -> AndroidDevice:
        dev = client.device(serial)
        out = dev.shell("getprop", timeout=30)
        props = AP.parse_getprop(out if isinstance(out, str) else "")
        if not props:
            raise DeviceError(f"{serial}: getprop returned no properties")
        return cls(client, dev, serial, props, adb_server, remote, workdir)

    @property
    def simulated(self) -> bool:
        return self.virtual

    def describe(self) -> dict:
        d = super().describe()
        d.update({"emulator": self.emulator, "virtual": self.virtual,
                  "debuggable": self.debuggable, "soc": self.soc,
                  "soc_source": self.soc_source, "adb_server": self.adb_server,
                  "remote_adb_server": self.remote, "workdir": self.workdir})
        return d

    # --- adb plumbing -------------------------------------------------------------
    def _lost(self, what: str, err: BaseException) -> DeviceError:
        """Map an adb failure to DeviceDisconnected (device gone) or DeviceError."""
        state = "unknown"
        for _ in range(5):  # the adb server may need a moment to notice a dead transport
            try:
                state = self._dev.get_state()
            except Exception as e:  # noqa: BLE001
                state = f"gone ({e})"
            if state != "device":
                break
            time.sleep(0.4)
        msg = f"device {self.serial} ({self.name}) "
        if state != "device":
            return DeviceDisconnected(msg + f"disconnected during {what}: {err!s} "
                                      f"[adb state: {state}]")
        return DeviceError(msg + f"adb failure during {what}: {type(err).__name__}: {err}")

    def reconnect(self, timeout_s: float = 20.0) -> str:
        return reconnect_device(self.serial, self._client, self._dev, timeout_s)

    def shell2(self, command: str, timeout_s: float = 60.0):
        """Shell v2 call: (exit code, stdout, stderr). Raises DeviceDisconnected/DeviceError."""
        try:
            r = self._dev.shell2(command, timeout=timeout_s, v2=True)
        except _adb_errors() as e:
            raise self._lost(f"shell {command[:60]!r}", e) from e
        return r.returncode, r.stdout, r.stderr

    def shell(self, command: str, timeout_s: float = 60.0) -> str:
        return self.shell2(command, timeout_s)[1]

    def getprop(self, key: str) -> str:
        return self.shell(f"getprop {shlex.quote(key)}").strip()

    def _abs(self, path: str) -> str:
        return path if path.startswith("/") else f"{self.workdir}/{path}"

    # --- files ----------------------------------------------------------------------
    def remote_hashes(self, rel_paths: Sequence[str]) -> dict[str, str]:
        """sha256 of the given workdir-relative files on the device (absent: missing)."""
        if not rel_paths:
            return {}
        hashes: dict[str, str] = {}
        batch: list[str] = []
        size = 0

        def flush() -> None:
            if not batch:
                return
            cmd = (f"cd {shlex.quote(self.workdir)} 2>/dev/null && sha256sum -- "
                   + " ".join(shlex.quote(p) for p in batch) + " 2>/dev/null; true")
            _, out, _ = self.shell2(cmd, timeout_s=300)
            for line in out.splitlines():
                m = re.match(r"^([0-9a-f]{64})\s+\*?(.+)$", line.strip())
                if m:
                    hashes[m.group(2)] = m.group(1)
            batch.clear()

        for p in rel_paths:
            batch.append(p)
            size += len(p) + 3
            if size > 60000:
                flush()
                size = 0
        flush()
        return hashes

    def sync(self, files: Mapping[str, Path]) -> SyncReport:
        wanted = {}
        for rel, local in files.items():
            rel = rel.lstrip("/")
            if ".." in Path(rel).parts:
                raise DeviceError(f"{self.serial}: refusing to sync path outside workdir: {rel}")
            h = hashlib.sha256()
            with open(local, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            wanted[rel] = (Path(local), h.hexdigest())
        on_device = self.remote_hashes(sorted(wanted))
        pushed, skipped, nbytes = [], [], 0
        for rel in sorted(wanted):
            local, digest = wanted[rel]
            if on_device.get(rel) == digest:
                skipped.append(rel)
                continue
            mode = 0o755 if os.access(local, os.X_OK) else 0o644
            remote = f"{self.workdir}/{rel}"
            try:
                fail = self._push_file(local, remote, mode)
            except _adb_errors() as e:
                raise self._lost(f"push of {rel}", e) from e
            if fail is not None:
                if "No space left" in fail:
                    raise DeviceError(f"device {self.serial} ({self.name}): storage full while "
                                      f"pushing {rel} ({local.stat().st_size} bytes) to "
                                      f"{remote}: {fail}")
                raise DeviceError(f"device {self.serial} ({self.name}): push of {rel} to "
                                  f"{remote} failed: {fail}")
            pushed.append(rel)
            nbytes += local.stat().st_size
        return SyncReport(tuple(pushed), tuple(skipped), nbytes)

    def _push_file(self, local: Path, remote: str, mode: int) -> str | None:
        """One sync SEND with 64 KiB DATA chunks; returns the device's FAIL message (adbutils'
        own push drops it) or None on success."""

        with self._dev.open_transport(timeout=300) as c:
            c.send_command("sync:")
            c.check_okay()
            spec = f"{remote},{_stat.S_IFREG | mode}".encode()
            sock = c.conn
            sock.sendall(b"SEND" + struct.pack("<I", len(spec)) + spec)
            with open(local, "rb") as f:
                for chunk in iter(lambda: f.read(64 * 1024), b""):
                    sock.sendall(b"DATA" + struct.pack("<I", len(chunk)) + chunk)
            sock.sendall(b"DONE" + struct.pack("<I", int(time.time())))
            head = c.read_exact(8)
            if head[:4] == b"OKAY":
                return None
            if head[:4] == b"FAIL":
                n = struct.unpack("<I", head[4:])[0]
                return c.read_exact(n).decode("utf-8", "replace") if n else "FAIL"
            return f"unexpected sync reply {head!r}"

    def pull(self, remote_path: str, local_path: Path) -> None:
        src = self._abs(remote_path)
        Path(local_path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._dev.sync.pull(src, str(local_path))
        except _adb_errors() as e:
            if "No such file" in str(e) or "open failed" in str(e):
                raise DeviceError(f"device {self.serial}: cannot pull {src}: {e}") from e
            raise self._lost(f"pull of {src}", e) from e

    def listdir(self, remote_path: str) -> list[str]:
        try:
            entries = self._dev.sync.list(self._abs(remote_path))
        except _adb_errors() as e:
            raise self._lost(f"listdir {remote_path}", e) from e
        return [e.path for e in entries if e.path not in (".", "..")]

    def remove(self, remote_path: str) -> None:
        path = self._abs(remote_path)
        if path.rstrip("/") in ("", "/data", "/data/local", "/data/local/tmp", "/sdcard"):
            raise DeviceError(f"{self.serial}: refusing to remove {path}")
        self.shell2(f"rm -rf {shlex.quote(path)}")

    # --- processes --------------------------------------------------------------------
    def run_command(self, argv: Sequence[str], timeout_s: float | None,
                    env: Mapping[str, str] | None = None, cpu_list: str | None = None,
                    pid_file: str = RUN_PID_FILE, in_workdir: bool = True) -> str:
        """The shell command line `run` sends (exposed for tests and logs)."""
        if not argv:
            raise ValueError("empty argv")
        prefix: list[str] = []
        if env:
            prefix += ["env"] + [f"{k}={v}" for k, v in env.items()]
        if cpu_list:
            cpus = AP.parse_cpu_list(cpu_list)
            if isinstance(cpus, AP.Unknown):
                raise ValueError(f"bad cpu_list {cpu_list!r}: {cpus.reason}")
            prefix += ["taskset", AP.cpu_mask(cpus)]
        # a bare program name means the file in workdir when it exists there, else PATH
        resolve = ('case $p in */*) ;; *) [ -f "$p" ] && p=./$p;; esac; ' if in_workdir else "")
        script = (f"echo $$ > {shlex.quote(pid_file)}; p=$1; shift; {resolve}"
                  f"exec {' '.join(shlex.quote(a) for a in prefix)} \"$p\" \"$@\"")
        wrapper = ["sh", "-c", script, "sh", *argv]
        if timeout_s is not None:
            wrapper = ["timeout", "-k", "2", f"{max(timeout_s, 0.1):g}", *wrapper]
        w = shlex.quote(self.workdir)
        return f"mkdir -p {w} 2>/dev/null; cd {w} && " + " ".join(shlex.quote(a) for a in wrapper)

    def run(self, argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None = None,
            cpu_list: str | None = None) -> RunResult:
        cmd = self.run_command(argv, timeout_s, env, cpu_list)
        t0 = time.monotonic()
        try:
            r = self._dev.shell2(cmd, timeout=timeout_s + TIMEOUT_MARGIN_S, v2=True)
        except _adb_errors() as e:

            if isinstance(e, (adbutils.AdbTimeout, socket.timeout)) and \
                    time.monotonic() - t0 >= timeout_s:
                self._kill_pid_file(RUN_PID_FILE)
                return RunResult(tuple(argv), -9, "", f"timed out after {timeout_s:g} s "
                                 "(adb call; process killed)", time.monotonic() - t0, True)
            raise self._lost(f"run of {argv[0]}", e) from e
        dur = time.monotonic() - t0
        timed_out = r.returncode == 124 and dur >= timeout_s * 0.9
        stderr = r.stderr
        if timed_out:
            stderr += f"\nswaplab: {argv[0]} killed after timeout of {timeout_s:g} s\n"
        elif r.returncode >= 128 + 1 and r.returncode <= 128 + 31:
            sig = r.returncode - 128
            name = {9: "SIGKILL", 15: "SIGTERM", 11: "SIGSEGV", 6: "SIGABRT"}.get(sig, f"signal {sig}")
            stderr += (f"\nswaplab: {argv[0]} on {self.serial} was killed by {name} (exit "
                       f"{r.returncode}){' - e.g. the low-memory killer' if sig == 9 else ''}\n")
        return RunResult(tuple(argv), r.returncode, r.stdout, stderr, dur, timed_out)

    def _kill_pid_file(self, pid_file: str) -> None:
        try:
            self.shell2(f"cd {shlex.quote(self.workdir)} && kill -9 $(cat {shlex.quote(pid_file)})"
                        " 2>/dev/null; true", timeout_s=20)
        except DeviceError:
            pass

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None,
              in_workdir: bool = True) -> AndroidBackground:
        """Start in the background on the device (survives this adb call); stop() kills it
        and collects stdout/stderr/exit code from files in workdir."""
        tag = uuid.uuid4().hex[:8]
        base = f".swaplab-bg-{tag}"
        inner = self.run_command(argv, None, env, None, pid_file=f"{base}.pid",
                                 in_workdir=in_workdir)
        inner = inner.split(" && ", 1)[1]  # without the mkdir/cd
        cmd = (f"cd {shlex.quote(self.workdir)} && "
               f"({inner} > {base}.out 2> {base}.err < /dev/null; echo $? > {base}.rc) "
               f"> /dev/null 2>&1 < /dev/null & echo started")
        self.shell2(f"mkdir -p {shlex.quote(self.workdir)}")
        _, out, err = self.shell2(cmd)
        if "started" not in out:
            raise DeviceError(f"device {self.serial}: could not start {argv[0]}: {err.strip()}")
        return AndroidBackground(self, tuple(argv), base)

    def start_sampler(self, interval_s: float = 0.5, watch_pid_file: str = RUN_PID_FILE,
                      lease_s: float = AS.LEASE_S) -> AndroidBackground:
        """The long-running on-device sampler (one shell loop); stop() returns its text,
        `harness.devices.android.sampler.parse_samples` turns it into samples. It runs on a
        lease this process renews every lease_s / 3 until stop(): if this process dies
        (SIGKILL included), the sampler ends by itself within lease_s."""
        lease = f"{self.workdir}/sampler-{os.getpid()}-{next(AS.LEASE_IDS)}.lease"
        self.shell2(f"mkdir -p {shlex.quote(self.workdir)} && "
                    + AS.renew_lease_command(lease, lease_s))
        script = AS.sampler_script(interval_s, f"{self.workdir}/{watch_pid_file}",
                                   lease_file=lease)
        proc = self.start(["sh", "-c", script], in_workdir=False)
        return AS.LeasedSampler(proc, lease, lease_s)

    def run_with_sampler(self, argv: Sequence[str], timeout_s: float,
                         env: Mapping[str, str] | None = None, cpu_list: str | None = None,
                         interval_s: float = 0.5) -> tuple[RunResult, list[dict]]:
        """`run` with the on-device sampler running alongside; returns the result and the
        parsed samples (harness.devices.android.sampler.parse_samples; simulated on a virtual
        device). The sampler is stopped even when the run fails."""
        sampler = self.start_sampler(interval_s)
        try:
            result = self.run(argv, timeout_s, env=env, cpu_list=cpu_list)
        finally:
            try:
                text = sampler.stop().stdout
            except DeviceError:
                text = ""
        return result, AS.parse_samples(text)

    # --- sensors ------------------------------------------------------------------------
    def read_sensors(self) -> list[SensorReading]:
        text = self.shell(AS.sampler_script(0, None, max_samples=1), timeout_s=60)
        samples = AS.parse_samples(text)
        sim = self.simulated
        if not samples:
            return [SensorReading("sensors", None, sim, "sampler printed nothing")]
        s = samples[0]
        out = []
        for name, c in s["temps_c"].items():
            out.append(SensorReading(f"{_slug(name)}_temp_c", c, sim))
        out.append(SensorReading("battery_current_ua", s["battery_current_ua"], sim,
                                 s["unknown"].get("battery_current_ua", "")))
        out.append(SensorReading("battery_voltage_v", s["battery_voltage_v"], sim,
                                 s["unknown"].get("battery_voltage_v", "")))
        out.append(SensorReading("battery_level_pct", s["battery_pct"], sim,
                                 s["unknown"].get("battery_pct", "")))
        if s["power_w"] is not None:
            out.append(SensorReading("battery_power_w", s["power_w"], sim))
        for cpu, khz in sorted(s["cpu_khz"].items()):
            out.append(SensorReading(f"cpu{cpu}_freq_khz", float(khz), sim))
        for key, reason in s["unknown"].items():
            if key.startswith("temp:"):
                out.append(SensorReading(f"{_slug(key[5:])}_temp_c", None, sim, reason))
            elif key.startswith("cpu"):
                out.append(SensorReading(f"{key}", None, sim, reason))
        return out

    def thermal_service(self) -> AP.ThermalService:
        return AP.parse_thermalservice(self.shell("dumpsys thermalservice", timeout_s=60))

    def battery_state(self) -> AP.BatteryState:
        return AP.parse_dumpsys_battery(self.shell("dumpsys battery", timeout_s=60))


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or "zone"


class AndroidBackground(BackgroundProcess):
    def __init__(self, device: AndroidDevice, argv: tuple[str, ...], base: str):
        self.device = device
        self.argv = argv
        self.base = base
        self.t0 = time.monotonic()

    def stop(self, timeout_s: float = 10.0) -> RunResult:
        d = self.device
        b = self.base
        q = shlex.quote(d.workdir)
        d.shell2(f"cd {q} && p=$(cat {b}.pid 2>/dev/null); [ -n \"$p\" ] && kill $p 2>/dev/null; "
                 f"i=0; while [ ! -e {b}.rc ] && [ $i -lt {int(timeout_s * 10)} ]; do "
                 f"sleep 0.1; i=$((i+1)); done; [ -e {b}.rc ] || kill -9 $p 2>/dev/null; true",
                 timeout_s=timeout_s + 30)
        _, out, _ = d.shell2(f"cd {q} && cat {b}.out", timeout_s=120)
        _, errtext, _ = d.shell2(f"cd {q} && cat {b}.err", timeout_s=60)
        _, rctext, _ = d.shell2(f"cd {q} && cat {b}.rc 2>/dev/null; rm -f {b}.*", timeout_s=60)
        try:
            code = int(rctext.strip())
        except ValueError:
            code = -9
        return RunResult(self.argv, code, out, errtext, time.monotonic() - self.t0, False)
