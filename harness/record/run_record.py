"""The run record: `reports/runs/<run-id>/record.json`, schema "swaplab.record/1".

Rewritten atomically (temp file in the same folder, fsync, os.replace) after every
result, so a run killed half-way keeps everything it measured. A record left with status
"running" whose process is gone reads as "interrupted" (`effective_status`).
"""

from __future__ import annotations

import copy
import datetime as _dt
import json
import os
import secrets
import socket
import threading
from pathlib import Path
from typing import Any

from harness.files import atomic_write_json

SCHEMA = "swaplab.record/1"
RECORD_NAME = "record.json"


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _proc_start_ticks(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


class RunRecord:
    """One run's record, saved after every change. Thread-safe."""

    def __init__(self, run_dir: Path, data: dict) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RECORD_NAME
        self._data = data
        self._lock = threading.RLock()

    # --- creation / loading ------------------------------------------------------------
    @classmethod
    def create(cls, out_root: Path, environment: dict | None = None,
               baseline: str | None = None, run_id: str | None = None) -> RunRecord:
        run_id = run_id or new_run_id()
        run_dir = Path(out_root) / "runs" / run_id
        run_dir.mkdir(parents=True, exist_ok=False)
        data = {
            "schema": SCHEMA,
            "run_id": run_id,
            "started": utc_now(),
            "finished": None,
            "status": "running",
            "process": {"hostname": socket.gethostname(), "pid": os.getpid(),
                        "start_ticks": _proc_start_ticks(os.getpid())},
            "baseline": baseline,
            "environment": environment or {},
            "devices": {},
            "measurements": [],
            "tests": [],
            "artifacts": [],
        }
        rec = cls(run_dir, data)
        rec.save()
        return rec

    @property
    def run_id(self) -> str:
        return self._data["run_id"]

    @property
    def data(self) -> dict:
        """A deep copy of the current content."""
        with self._lock:
            return copy.deepcopy(self._data)

    def save(self) -> None:
        with self._lock:
            atomic_write_json(self.path, self._data)

    # --- updates (each one saves) ------------------------------------------------------
    def set_environment(self, key: str, value: Any) -> None:
        with self._lock:
            self._data["environment"][key] = value
            self.save()

    def add_runner_build(self, abi: str, build: dict) -> None:
        with self._lock:
            self._data["environment"].setdefault("runner_builds", {})[abi] = build
            self.save()

    def add_device(self, serial: str, info: dict) -> None:
        with self._lock:
            self._data["devices"].setdefault(serial, {}).update(info)
            self.save()

    def add_measurement(self, measurement: dict) -> None:
        with self._lock:
            self._data["measurements"].append(measurement)
            self.save()

    def add_test(self, nodeid: str, device: str | None, outcome: str, duration_s: float,
                 message: str = "") -> None:
        with self._lock:
            self._data["tests"].append({"nodeid": nodeid, "device": device, "outcome": outcome,
                                        "duration_s": round(duration_s, 4), "message": message})
            self.save()

    def add_artifact(self, device: str | None, test: str | None, kind: str, path: Path | str,
                     **extra: Any) -> None:
        rel = Path(path)
        if rel.is_absolute():
            rel = rel.relative_to(self.run_dir)
        with self._lock:
            self._data["artifacts"].append({"device": device, "test": test, "kind": kind,
                                            "path": rel.as_posix(), **extra})
            self.save()

    def set_field(self, key: str, value: Any) -> None:
        """Set a top-level field (e.g. "comparison") and save."""
        with self._lock:
            self._data[key] = value
            self.save()

    def finish(self, status: str = "finished") -> None:
        with self._lock:
            self._data["status"] = status
            self._data["finished"] = utc_now()
            self.save()


def load_record(path: Path | str) -> dict:
    """Read a record (a run folder or its record.json); adds "effective_status"."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_NAME
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a SwapLab run record (schema {SCHEMA})")
    data["effective_status"] = effective_status(data)
    return data


def effective_status(data: dict) -> str:
    """The record's status, with "running" turned into "interrupted" when the process
    that wrote it is gone (checked only on the host that wrote it)."""
    status = data.get("status", "running")
    if status != "running":
        return status
    proc = data.get("process") or {}
    if proc.get("hostname") != socket.gethostname() or not proc.get("pid"):
        return status
    ticks = _proc_start_ticks(int(proc["pid"]))
    if ticks is None or (proc.get("start_ticks") and ticks != proc["start_ticks"]):
        return "interrupted"
    return status


def update_latest(out_root: Path, run_dir: Path) -> Path:
    """Point `<out_root>/latest` at `run_dir` (relative symlink, replaced atomically)."""
    out_root = Path(out_root)
    link = out_root / "latest"
    target = os.path.relpath(run_dir, out_root)
    tmp = out_root / f".latest.{os.getpid()}.tmp"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)
    return link
