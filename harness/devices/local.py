"""This host as a device: the embedded default when no phone is attached.

Files live in a work folder under the lab cache (kept between runs, so unchanged
runner/model files are skipped by hash). Processes run with subprocess in their own
process group (a timeout kills the whole group); `cpu_list` pins with sched_setaffinity.
"""

from __future__ import annotations

import os
import platform as _platform
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from harness import cache_root
from harness.devices.base import (
    BackgroundProcess,
    Device,
    DeviceError,
    RunResult,
    SensorReading,
    SyncReport,
)
from harness.modelpack.pack import sha256_file

_ABIS = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64-v8a", "arm64": "arm64-v8a"}


def host_abi() -> str:
    m = _platform.machine().lower()
    return _ABIS.get(m, m)


def parse_cpu_list(text: str) -> set[int]:
    cpus: set[int] = set()
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            cpus.update(range(int(a), int(b) + 1))
        else:
            cpus.add(int(part))
    return cpus


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return None


def host_properties() -> dict[str, str]:
    props: dict[str, str] = {"host.hostname": socket.gethostname(),
                             "host.kernel": _platform.release(),
                             "host.machine": _platform.machine(),
                             "host.cores": str(os.cpu_count() or 0)}
    cpuinfo = _read("/proc/cpuinfo") or ""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("model name", "Hardware", "Model") and "host.cpu" not in props:
            props["host.cpu"] = value.strip()
        if key == "flags" and "host.cpu_flags" not in props:
            flags = set(value.split())
            props["host.cpu_flags"] = " ".join(
                f for f in ("sse4_2", "avx", "avx2", "fma", "avx512f", "neon", "asimd") if f in flags)
    os_release = _read("/etc/os-release") or ""
    for line in os_release.splitlines():
        if line.startswith("PRETTY_NAME="):
            props["host.os"] = line.split("=", 1)[1].strip().strip('"')
    try:
        props["host.usable_cpus"] = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        pass
    mem = _read("/proc/meminfo") or ""
    for line in mem.splitlines():
        if line.startswith("MemTotal:"):
            props["host.mem_total_kb"] = line.split()[1]
    return props


class _LocalBackground(BackgroundProcess):
    def __init__(self, proc: subprocess.Popen, argv: Sequence[str], out, err, started: float):
        self.proc, self.argv, self._out, self._err, self.started = proc, tuple(argv), out, err, started

    def stop(self, timeout_s: float = 10.0) -> RunResult:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._out.seek(0)
        self._err.seek(0)
        out, err = self._out.read(), self._err.read()
        self._out.close()
        self._err.close()
        return RunResult(self.argv, self.proc.returncode, out, err, time.monotonic() - self.started)


class LocalDevice(Device):
    kind = "local"

    def __init__(self, workdir: Path | str | None = None) -> None:
        props = host_properties()
        workdir = Path(workdir) if workdir else cache_root() / "devices" / "local"
        super().__init__(serial="local", name=props.get("host.hostname", "localhost"),
                         platform="linux", abi=host_abi(), properties=props,
                         workdir=str(workdir))

    # --- paths -------------------------------------------------------------------------
    def _path(self, remote_path: str) -> Path:
        p = Path(remote_path)
        return p if p.is_absolute() else Path(self.workdir) / p

    # --- files -------------------------------------------------------------------------
    def sync(self, files: Mapping[str, Path]) -> SyncReport:
        pushed, skipped, nbytes = [], [], 0
        for rel, src in sorted(files.items()):
            src = Path(src)
            dest = self._path(rel)
            if not src.is_file():
                raise DeviceError(f"local: cannot sync {rel!r}: {src} is not a file")
            if dest.is_file() and dest.stat().st_size == src.stat().st_size \
                    and sha256_file(dest) == sha256_file(src):
                skipped.append(rel)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
            os.close(fd)
            try:
                shutil.copy2(src, tmp)
                os.replace(tmp, dest)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            pushed.append(rel)
            nbytes += src.stat().st_size
        return SyncReport(tuple(pushed), tuple(skipped), nbytes)

    def pull(self, remote_path: str, local_path: Path) -> None:
        src = self._path(remote_path)
        local_path = Path(local_path)
        local_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if src.is_dir():
                shutil.copytree(src, local_path, dirs_exist_ok=True)
            else:
                shutil.copy2(src, local_path)
        except OSError as e:
            raise DeviceError(f"local: cannot pull {remote_path!r}: {e}") from None

    def listdir(self, remote_path: str) -> list[str]:
        try:
            return sorted(os.listdir(self._path(remote_path)))
        except FileNotFoundError:
            return []

    def remove(self, remote_path: str) -> None:
        p = self._path(remote_path)
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)

    # --- processes ---------------------------------------------------------------------
    def _popen_kwargs(self, env, cpu_list):
        full_env = dict(os.environ)
        if env:
            full_env.update(env)
        preexec = None
        if cpu_list:
            cpus = parse_cpu_list(cpu_list)
            usable = os.sched_getaffinity(0)
            if not cpus & usable:
                raise DeviceError(f"local: cpu_list {cpu_list!r} names none of this host's "
                                  f"usable CPUs {sorted(usable)}")
            pin = cpus & usable

            def preexec():  # runs in the child before exec
                os.sched_setaffinity(0, pin)
        Path(self.workdir).mkdir(parents=True, exist_ok=True)
        return {"cwd": self.workdir, "env": full_env, "start_new_session": True,
                "preexec_fn": preexec}

    def run(self, argv: Sequence[str], timeout_s: float, env: Mapping[str, str] | None = None,
            cpu_list: str | None = None) -> RunResult:
        argv = [str(a) for a in argv]
        start = time.monotonic()
        try:
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    stdin=subprocess.DEVNULL, text=True, errors="replace",
                                    **self._popen_kwargs(env, cpu_list))
        except OSError as e:
            raise DeviceError(f"local: cannot start {argv[0]!r}: {e}") from None
        timed_out = False
        try:
            out, err = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            timed_out = True
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            out, err = proc.communicate()
        except BaseException:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()
            raise
        return RunResult(tuple(argv), proc.returncode, out, err, time.monotonic() - start,
                         timed_out)

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> BackgroundProcess:
        argv = [str(a) for a in argv]
        out = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        err = tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace")  # noqa: SIM115
        try:
            proc = subprocess.Popen(argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL,
                                    text=True, **self._popen_kwargs(env, None))
        except OSError as e:
            out.close()
            err.close()
            raise DeviceError(f"local: cannot start {argv[0]!r}: {e}") from None
        return _LocalBackground(proc, argv, out, err, time.monotonic())

    # --- sensors -----------------------------------------------------------------------
    def read_sensors(self) -> list[SensorReading]:
        """Thermal zones and CPU frequencies where this host exposes them; nothing else."""
        readings: list[SensorReading] = []
        base = Path("/sys/class/thermal")
        for zone in sorted(base.glob("thermal_zone*")) if base.is_dir() else []:
            raw = _read(str(zone / "temp"))
            if raw is None or not raw.strip().lstrip("-").isdigit():
                continue
            ztype = (_read(str(zone / "type")) or zone.name).strip().replace(" ", "_")
            readings.append(SensorReading(f"{zone.name}_{ztype}_temp_c", int(raw) / 1000.0))
        cpu_base = Path("/sys/devices/system/cpu")
        for f in sorted(cpu_base.glob("cpu[0-9]*/cpufreq/scaling_cur_freq")):
            raw = _read(str(f))
            if raw and raw.strip().isdigit():
                readings.append(SensorReading(f"{f.parent.parent.name}_freq_khz", float(raw)))
        return readings


def discover(options) -> list[Device]:
    if not getattr(options, "include_local", True):
        return []
    root = getattr(options, "work_root", None)
    return [LocalDevice(Path(root) / "local" if root else None)]
