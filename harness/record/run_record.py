"""The run record: `reports/runs/<run-id>/record.json`, schema "swaplab.record/1".

Every change is one line appended to the run's journal (`record.journal`, JSON lines,
fsync'd): O(1) per result, however large the run. record.json, the file readers use
(history import, the report, `swaplab report`), is produced from the journal, atomically,
when the run is created and when it finishes (and on every change after that).
`load_record` replays the journal when it holds more than record.json, so a run killed
half-way (SIGKILL, a crash, a full disk) keeps everything it measured. A record left with
status "running" whose process is gone reads as "interrupted" (`effective_status`).

Journal lines: the first is {"journal": JOURNAL_SCHEMA, "record": <initial record>}, then
one {"op": NAME, "args": {...}} per change, applied by `apply_change` (the one definition
of what each change does, used live and on replay). A last line cut short by a crash is
ignored; a failed append is cut back, so the journal never holds half a line.
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

from harness.files import atomic_write_json, slug

SCHEMA = "swaplab.record/1"
RECORD_NAME = "record.json"
JOURNAL_NAME = "record.journal"
JOURNAL_SCHEMA = "swaplab.record-journal/1"
#: folder of a run where the workers of a parallel run (pytest-xdist, harness.fleet) journal
#: their changes; the controller merges them into the run's own journal when it finishes
WORKERS_DIR = "workers"
#: changes a worker may make (the run's status and top-level fields belong to the controller)
WORKER_OPS = ("set_environment", "add_runner_build", "add_device", "add_measurement",
              "add_test", "add_artifact")


class RecordWriteError(OSError):
    """A change could not be made durable; the record on disk keeps everything before it."""


def utc_now() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def utc_now_ms() -> str:
    """Now, to the millisecond (when a test ended: the report's per-device timeline)."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id() -> str:
    return _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def _proc_start_ticks(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
        return stat.rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def apply_change(data: dict, op: str, args: dict) -> None:
    """Apply one journal change to a record dict (live and on replay)."""
    if op == "set_environment":
        data["environment"][args["key"]] = args["value"]
    elif op == "add_runner_build":
        data["environment"].setdefault("runner_builds", {})[args["abi"]] = args["build"]
    elif op == "add_device":
        data["devices"].setdefault(args["serial"], {}).update(args["info"])
    elif op == "add_measurement":
        data["measurements"].append(args["measurement"])
    elif op == "add_test":
        data["tests"].append(args["test"])
    elif op == "add_artifact":
        data["artifacts"].append(args["artifact"])
    elif op == "set_field":
        data[args["key"]] = args["value"]
    elif op == "finish":
        data["status"] = args["status"]
        data["finished"] = args["finished"]
    else:
        raise ValueError(f"unknown record change {op!r}")


def _json_line(obj: dict) -> bytes:
    # strict JSON: a NaN would make the whole record unreadable for strict readers
    return (json.dumps(obj, allow_nan=False, separators=(",", ":")) + "\n").encode("utf-8")


class RunRecord:
    """One run's record; every change is appended to the journal at once. Thread-safe."""

    def __init__(self, run_dir: Path, data: dict) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / RECORD_NAME
        self.journal_path = self.run_dir / JOURNAL_NAME
        self._data = data
        self._lock = threading.RLock()
        self._journal_fd: int | None = None
        self._finished = data.get("status", "running") != "running"

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
        with rec._lock:
            rec._open_journal()
            rec.save()
        return rec

    @classmethod
    def for_worker(cls, run_dir: Path, run_id: str, worker: str) -> RunRecord:
        """A worker's share of the controller's run `run_id`: its changes are appended to
        `<run_dir>/workers/<worker>.journal` as they happen (a worker that dies loses
        nothing it journalled); `merge_workers()` of the run's record takes them in."""
        data = {"schema": SCHEMA, "run_id": run_id, "worker": worker, "status": "running",
                "environment": {}, "devices": {}, "measurements": [], "tests": [],
                "artifacts": []}
        rec = cls(run_dir, data)
        folder = rec.run_dir / WORKERS_DIR  # the controller made the run folder
        folder.mkdir(exist_ok=True)
        rec.journal_path = folder / f"{slug(worker, empty='worker')}.journal"
        rec.path = folder / f"{slug(worker, empty='worker')}.json"  # never written
        with rec._lock:
            fd = rec._open_journal()
            with open(rec.journal_path, "rb") as f:
                f.seek(max(0, os.fstat(fd).st_size - 1))
                if f.read(1) not in (b"\n", b""):  # a worker died mid-line: end that line
                    rec._append(fd, b"\n")
        return rec

    def merge_workers(self) -> int:
        """Append every change the run's workers journalled to this record (one write, one
        fsync), once; returns how many. Called by the controller when the run ends."""
        with self._lock:
            if self._data.get("workers_merged"):
                return 0
            changes = worker_changes(self.run_dir)
            changes.append(("set_field", {"key": "workers_merged", "value": True}))
            lines = b"".join(_json_line({"op": op, "args": args}) for op, args in changes)
            self._append(self._open_journal(), lines)
            for op, args in changes:
                apply_change(self._data, op, args)
            return len(changes) - 1

    @property
    def run_id(self) -> str:
        return self._data["run_id"]

    @property
    def data(self) -> dict:
        """A deep copy of the current content."""
        with self._lock:
            return copy.deepcopy(self._data)

    def save(self) -> None:
        """Write record.json from the current content (atomic; O(size), so only at the
        start and end of a run, never per result)."""
        with self._lock:
            atomic_write_json(self.path, self._data)

    def close(self) -> None:
        with self._lock:
            if self._journal_fd is not None:
                os.close(self._journal_fd)
                self._journal_fd = None

    # --- the journal -------------------------------------------------------------------
    def _open_journal(self) -> int:
        """Open the journal for appending; a record that has none yet (made from a dict,
        or written by an older SwapLab) starts one with its full current content."""
        if self._journal_fd is None:
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                         0o644)
            try:
                if os.fstat(fd).st_size == 0:
                    self._append(fd, _json_line({"journal": JOURNAL_SCHEMA,
                                                 "record": self._data}))
            except BaseException:
                os.close(fd)
                raise
            self._journal_fd = fd
        return self._journal_fd

    def _append(self, fd: int, line: bytes) -> None:
        size = os.fstat(fd).st_size
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as e:
            # cut back what was written of this line: the journal ends with a whole line
            try:
                os.ftruncate(fd, size)
            except OSError:
                pass  # the reader ignores a last line that is not whole JSON
            raise RecordWriteError(e.errno, f"{self.journal_path}: cannot append to the run "
                                   f"record ({e.strerror}); everything before is kept") from None

    def _change(self, op: str, **args: Any) -> None:
        with self._lock:
            line = _json_line({"op": op, "args": args})  # invalid values fail here, unrecorded
            self._append(self._open_journal(), line)
            apply_change(self._data, op, args)
            if self._finished:
                self.save()

    # --- updates (each one appended to the journal) ------------------------------------
    def set_environment(self, key: str, value: Any) -> None:
        self._change("set_environment", key=key, value=value)

    def add_runner_build(self, abi: str, build: dict) -> None:
        self._change("add_runner_build", abi=abi, build=build)

    def add_device(self, serial: str, info: dict) -> None:
        self._change("add_device", serial=serial, info=info)

    def add_measurement(self, measurement: dict) -> None:
        self._change("add_measurement", measurement=measurement)

    def add_test(self, nodeid: str, device: str | None, outcome: str, duration_s: float,
                 message: str = "") -> None:
        self._change("add_test", test={"nodeid": nodeid, "device": device, "outcome": outcome,
                                       "duration_s": round(duration_s, 4), "message": message,
                                       "ended": utc_now_ms()})

    def add_artifact(self, device: str | None, test: str | None, kind: str, path: Path | str,
                     **extra: Any) -> None:
        rel = Path(path)
        if rel.is_absolute():
            rel = rel.relative_to(self.run_dir)
        self._change("add_artifact", artifact={"device": device, "test": test, "kind": kind,
                                               "path": rel.as_posix(), **extra})

    def set_field(self, key: str, value: Any) -> None:
        """Set a top-level field (e.g. "comparison")."""
        self._change("set_field", key=key, value=value)

    def finish(self, status: str = "finished") -> None:
        """Close the run: status and time into the journal, then record.json from it."""
        with self._lock:
            self._change("finish", status=status, finished=utc_now())
            self._finished = True
            self.save()


def replay_journal(path: Path | str) -> dict | None:
    """The record a journal describes (None when there is no journal). Stops at the first
    line that is not a whole change (a write cut short by a crash)."""
    try:
        f = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        return None
    with f:
        head = f.readline()
        try:
            first = json.loads(head)
            data = first["record"]
            if first.get("journal") != JOURNAL_SCHEMA or not isinstance(data, dict):
                raise ValueError
        except (ValueError, KeyError, TypeError):
            raise ValueError(f"{path}: not a SwapLab record journal ({JOURNAL_SCHEMA})") from None
        for raw in f:
            if not raw.endswith(b"\n"):
                break
            try:
                entry = json.loads(raw)
                apply_change(data, entry["op"], entry["args"])
            except (ValueError, KeyError, TypeError):
                break
    return data


def worker_changes(run_dir: Path | str) -> list[tuple[str, dict]]:
    """The changes of every worker journal of a run (harness.fleet), worker by worker.
    A line that is not a whole change (a worker killed mid-write, then restarted and
    appending after it) is skipped, the lines after it still count."""
    out: list[tuple[str, dict]] = []
    for path in sorted((Path(run_dir) / WORKERS_DIR).glob("*.journal")):
        with open(path, "rb") as f:
            f.readline()  # the worker's head: its (empty) initial record
            for raw in f:
                try:
                    entry = json.loads(raw)
                    op, args = entry["op"], entry["args"]
                except (ValueError, KeyError, TypeError):
                    continue
                if op in WORKER_OPS and isinstance(args, dict):
                    out.append((op, args))
    return out


def load_record(path: Path | str) -> dict:
    """Read a record (a run folder, its record.json or its journal); adds
    "effective_status". The journal is the truth while a run is going and after a crash:
    when it exists, the record is rebuilt from it (record.json may lag behind it)."""
    path = Path(path)
    run_dir = path if path.is_dir() else path.parent
    data = replay_journal(run_dir / JOURNAL_NAME)
    if data is None:
        path = run_dir / RECORD_NAME
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    else:
        path = run_dir / JOURNAL_NAME
    if isinstance(data, dict) and not data.get("workers_merged"):
        for op, args in worker_changes(run_dir):  # a parallel run still going, or killed
            apply_change(data, op, args)
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ValueError(f"{path}: not a SwapLab run record (schema {SCHEMA})")
    data["effective_status"] = effective_status(data)
    return data


def recover_record(run_dir: Path | str) -> bool:
    """Rewrite record.json from the journal when the journal is newer (a run killed before
    it finished); True when it did. Readers of record.json then see all that was measured."""
    run_dir = Path(run_dir)
    journal, record = run_dir / JOURNAL_NAME, run_dir / RECORD_NAME
    try:
        if record.exists() and record.stat().st_mtime_ns >= journal.stat().st_mtime_ns:
            return False
    except FileNotFoundError:
        return False  # no journal: record.json is all there is
    data = replay_journal(journal)
    if data is None:
        return False
    atomic_write_json(record, data)
    return True


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
