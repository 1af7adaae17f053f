"""A lease held on the device itself, so that runs on *other hosts* see it too.

The host lease (harness.devices.lease: a flock) keeps two runs of one host apart. A phone
on a remote adb server (a farm host's, `adb connect`) can be reached from several hosts at
once; only the phone can arbitrate. The lease is a folder created with `mkdir` on the
device (atomic: exactly one of two racing hosts succeeds) holding an `owner` file: the
holder (run, since, pid, host) on its first line and the expiry (device clock, epoch
seconds) on its second. The holder renews it every `ttl_s / 3` from a daemon thread; a run
killed on its host stops renewing, and after `ttl_s` the lease is stale: the next run
breaks it (renaming the folder away only if its owner line is still the stale one, so a
fresh lease of a third run is never broken) and takes it.

Every value reaches the device's shell as a positional argument of `sh -c SCRIPT`, never
inside the script: a run id or host name is data, not code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import socket
import threading
import time
from typing import Any

from harness.devices.lease import DeviceBusy, Holder

#: the lease folder, in the device's work folder
LEASE_DIR = ".swaplab-lease"

# $1 folder, $2 owner line, $3 ttl (s). Prints ACQUIRED, or the current owner file, the
# device's clock ("now N") and the folder's age ("mtime N": a folder without an owner
# file, from a crash between mkdir and the write, goes stale by it).
_ACQUIRE = r'''d=$1; mkdir -p "${d%/*}" 2>/dev/null; now=$(date +%s)
if mkdir "$d" 2>/dev/null; then
  printf '%s\n%s\n' "$2" "$((now + $3))" > "$d/owner" && echo ACQUIRED && exit 0
fi
cat "$d/owner" 2>/dev/null; echo; echo "now $now"; echo "mtime $(stat -c %Y "$d")"'''
# $1 folder, $2 the stale owner line seen: moves the folder away only if it is still that
_BREAK = r'''d=$1
[ "$(head -n 1 "$d/owner" 2>/dev/null)" = "$2" ] || exit 1
mv "$d" "$d.stale.$$" 2>/dev/null && rm -rf "$d.stale.$$"'''
# $1 folder, $2 our owner line, $3 ttl: renew, only if still ours
_RENEW = r'''d=$1; now=$(date +%s)
[ "$(head -n 1 "$d/owner" 2>/dev/null)" = "$2" ] || { echo LOST; exit 1; }
printf '%s\n%s\n' "$2" "$((now + $3))" > "$d/owner.new" && mv "$d/owner.new" "$d/owner"'''
# $1 folder, $2 our owner line: remove, only if still ours
_RELEASE = r'''d=$1
[ "$(head -n 1 "$d/owner" 2>/dev/null)" = "$2" ] && rm -rf "$d"'''


def _sh(script: str, *args: str) -> str:
    return " ".join(shlex.quote(a) for a in ("sh", "-c", script, "swaplab-lease", *args))


class OnDeviceLease:
    """`acquire(wait_s)` takes the device's lease or raises DeviceBusy naming the holder;
    `release()` gives it back. `device` needs `shell2(command, timeout_s)` (Android)."""

    def __init__(self, device: Any, run_id: str, *, since: str, ttl_s: float = 120.0,
                 host: str | None = None, pid: int | None = None) -> None:
        self.device = device
        self.ttl_s = max(3.0, float(ttl_s))
        self.holder = Holder(run_id, since, pid if pid is not None else os.getpid(),
                             host or socket.gethostname())
        self.path = f"{device.workdir.rstrip('/')}/{LEASE_DIR}"
        self.owner_line = json.dumps(dataclasses.asdict(self.holder), sort_keys=True)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    @property
    def held(self) -> bool:
        return self._thread is not None

    def _call(self, script: str, *args: str) -> tuple[int, str]:
        code, out, _err = self.device.shell2(_sh(script, self.path, *args), 30.0)
        return code, out

    def acquire(self, wait_s: float = 0.0, poll_s: float = 2.0) -> None:
        if self.held:
            return
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            code, out = self._call(_ACQUIRE, self.owner_line, f"{self.ttl_s:.0f}")
            if code == 0 and out.strip().endswith("ACQUIRED"):
                break
            owner, expires, now, mtime = _parse(out)
            if owner is not None and expires is not None and now is not None and expires < now:
                self._call(_BREAK, owner)  # stale: its holder stopped renewing
                continue
            if owner is None and now is not None and mtime is not None \
                    and now - mtime > self.ttl_s:
                self._call(_BREAK, "")  # an owner-less folder older than a lease
                continue
            if time.monotonic() >= deadline:
                holder = _holder(owner)
                what = holder.describe(self.device.serial) if holder else \
                    f"device {self.device.serial} held by another run (holder unknown)"
                waited = f" (waited {wait_s:g} s)" if wait_s > 0 else ""
                raise DeviceBusy(f"{what}; lease on the device{waited}")
            time.sleep(poll_s)
        self._thread = threading.Thread(target=self._renew_loop, name="swaplab-device-lease",
                                        daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                code, out = self._call(_RENEW, self.owner_line, f"{self.ttl_s:.0f}")
            except Exception as e:  # noqa: BLE001 - the device may be gone; retry next time
                self.lost = f"renewing the lease failed: {e}"
                continue
            if code != 0 and "LOST" in out:
                self.lost = "the lease on the device was taken over (it had expired)"
                return

    def release(self) -> None:
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._thread = None
        try:
            self._call(_RELEASE, self.owner_line)
        except Exception:  # noqa: BLE001, S110 - a lost device's lease expires by itself
            pass

    def describe(self) -> dict:
        return {**dataclasses.asdict(self.holder), "on_device": self.path,
                "ttl_s": self.ttl_s}


def on_device_lease(device: Any, run_id: str, *, since: str) -> OnDeviceLease | None:
    """The on-device lease for a device that other hosts can reach too (Android, over
    adb: phones, remote adb servers, farm devices, virtual devices); None for the rest
    (this host, iOS over usbmux: the host lease covers them)."""
    if getattr(device, "platform", None) != "android" or not hasattr(device, "shell2"):
        return None
    return OnDeviceLease(device, run_id, since=since)


def _parse(out: str) -> tuple[str | None, int | None, int | None, int | None]:
    """(owner line, expiry, device clock, folder mtime) from the acquire script's output."""
    lines = [ln.strip() for ln in out.splitlines() if ln.strip()]

    def tagged(tag: str) -> int | None:
        return next((int(ln.split()[1]) for ln in lines if ln.startswith(tag + " ")
                     and len(ln.split()) == 2 and ln.split()[1].isdigit()), None)

    rest = [ln for ln in lines if not ln.startswith(("now ", "mtime "))]
    owner = rest[0] if rest and rest[0].startswith("{") else None
    expires = int(rest[1]) if owner and len(rest) > 1 and rest[1].isdigit() else None
    return owner, expires, tagged("now"), tagged("mtime")


def _holder(owner: str | None) -> Holder | None:
    try:
        d = json.loads(owner or "null")
        return Holder(str(d["run_id"]), str(d["since"]), int(d["pid"]), str(d["host"]))
    except (ValueError, TypeError, KeyError):
        return None
