"""A run's hold on a device: no second run measures on a device while one holds it.

Two runs on one phone at once disturb each other's numbers and delete each other's files.
A lease is an exclusive `flock` on `<cache>/leases/<serial>.lock` held for the whole run,
with the holder (run id, since, pid, host) written inside for the message a second run
prints. The kernel drops the lock when its process dies (SIGKILL included), so a lease can
never be left stale by a crash on this host.

Scope: the processes of one host. A device other hosts can reach too (Android over adb:
a remote adb server's phone) also holds a lease on itself (harness.devices.device_lease),
which runs on other hosts see; farm devices are also claimed through the farm (STF).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import socket
import time
from pathlib import Path

from harness.files import slug


class DeviceBusy(RuntimeError):
    """Another run holds the device; the message names device, run, time, pid and host."""


@dataclasses.dataclass
class Holder:
    run_id: str
    since: str
    pid: int
    host: str

    def describe(self, serial: str) -> str:
        return (f"device {serial} held by run {self.run_id} since {self.since} "
                f"(pid {self.pid}, host {self.host})")


class DeviceLease:
    """`acquire()` waits up to `wait_s` for the device (0: do not wait), then raises
    DeviceBusy; `release()` (or process exit) lets the next run have it."""

    def __init__(self, serial: str, run_id: str, folder: Path, *, since: str) -> None:
        self.serial = serial
        self.holder = Holder(run_id, since, os.getpid(), socket.gethostname())
        self.path = Path(folder) / f"{slug(serial, empty='device')}.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, wait_s: float = 0.0, poll_s: float = 0.5) -> None:
        if self._fd is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self._read_holder(fd)
                    os.close(fd)
                    what = holder.describe(self.serial) if holder else \
                        f"device {self.serial} held by another run (holder unknown)"
                    waited = f" (waited {wait_s:g} s)" if wait_s > 0 else ""
                    raise DeviceBusy(what + waited) from None
                time.sleep(poll_s)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(dataclasses.asdict(self.holder)).encode(), 0)
        self._fd = fd

    @staticmethod
    def _read_holder(fd: int) -> Holder | None:
        try:
            data = json.loads(os.pread(fd, 4096, 0) or b"null")
            return Holder(str(data["run_id"]), str(data["since"]), int(data["pid"]),
                          str(data["host"]))
        except (OSError, ValueError, TypeError, KeyError):
            return None

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing drops the flock
        self._fd = None

    def describe(self) -> dict:
        return {**dataclasses.asdict(self.holder), "lock": str(self.path)}
