"""Run history: every measurement of every run in one SQLite file (reports/history.sqlite).

* WAL journal + busy timeout + one ``BEGIN IMMEDIATE`` transaction per imported record:
  two pytest runs (or a run and ``swaplab report``) writing at once lose nothing, and a
  reader never sees half a record.
* Re-importing a run (same ``run_id``) replaces that run's rows: the record is rewritten
  as results arrive, so importing it after every result is idempotent.
* Queries: a run's measurements, one metric's series over runs (with its change
  points) and the between-run noise the comparison (harness.history.compare) rests on.
  Which run a --baseline spec names: harness.history.baseline.

Schema (``PRAGMA user_version`` = 1):
  runs(run_id PK, started, finished, status, commit_sha, branch, dirty, hostname,
       record_path, record_mtime, imported_at, n_measurements, environment JSON)
  run_devices(run_id, serial, profile, info JSON)
  measurements(id PK, run_id FK, seq, test, device, profile, metric, unit, direction, n,
               median, samples JSON, summary JSON, target JSON, time, extra JSON)
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import sqlite3
import statistics
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.stats.ab_arms import ab_arm
from harness.stats.changepoint import detect_steps, run_noise_from_medians
from harness.stats.trust import run_disturbed, settings_differ

__all__ = [
    "DEFAULT_DB",
    "connect",
    "history_db",
    "history_db_for_run",
    "history_medians",
    "import_record",
    "list_runs",
    "measurements_for",
    "opened",
    "run_info",
    "run_noise_for",
    "samples_for",
    "series",
    "sync_runs",
    "trend",
]

SCHEMA_VERSION = 1
RECORD_SCHEMA = "swaplab.record/1"
DEFAULT_DB = Path("reports/history.sqlite")
BUSY_TIMEOUT_MS = 60_000

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT PRIMARY KEY,
        started TEXT, finished TEXT, status TEXT,
        commit_sha TEXT, branch TEXT, dirty INTEGER, hostname TEXT,
        record_path TEXT, record_mtime REAL, imported_at TEXT,
        n_measurements INTEGER NOT NULL DEFAULT 0,
        environment TEXT)""",
    """CREATE TABLE IF NOT EXISTS run_devices (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        serial TEXT NOT NULL, profile TEXT, info TEXT,
        PRIMARY KEY (run_id, serial))""",
    """CREATE TABLE IF NOT EXISTS measurements (
        id INTEGER PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        seq INTEGER NOT NULL, test TEXT, device TEXT, profile TEXT,
        metric TEXT NOT NULL, unit TEXT, direction TEXT, n INTEGER, median REAL,
        samples TEXT, summary TEXT, target TEXT, time TEXT, extra TEXT)""",
    "CREATE INDEX IF NOT EXISTS measurements_run ON measurements(run_id)",
    "CREATE INDEX IF NOT EXISTS measurements_series ON measurements(metric, device)",
    "CREATE INDEX IF NOT EXISTS runs_branch ON runs(branch, started)",
    "CREATE INDEX IF NOT EXISTS runs_commit ON runs(commit_sha)",
]


# ----------------------------------------------------------------------------- connection

def connect(db_path: str | os.PathLike = DEFAULT_DB) -> sqlite3.Connection:
    """Open (and create) the history database: WAL, busy timeout, schema in place.

    Autocommit mode (isolation_level None); writers use ``BEGIN IMMEDIATE`` explicitly.
    """
    path = Path(db_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    _retry(lambda: conn.execute("PRAGMA journal_mode = WAL").fetchone())
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        conn.close()
        raise RuntimeError(f"{path}: history schema {version} is newer than this SwapLab "
                           f"({SCHEMA_VERSION}); upgrade SwapLab")
    if version != SCHEMA_VERSION:
        def create():
            with _write(conn):
                for stmt in _SCHEMA:
                    conn.execute(stmt)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        _retry(create)
    return conn


def _retry(fn, attempts: int = 50):
    for i in range(attempts):
        try:
            return fn()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e) or i == attempts - 1:
                raise
            time.sleep(0.05 * (1 + i % 10))


@contextlib.contextmanager
def _write(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    else:
        conn.execute("COMMIT")


@contextlib.contextmanager
def opened(db: str | os.PathLike | sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    if isinstance(db, sqlite3.Connection):
        yield db
        return
    conn = connect(db)
    try:
        yield conn
    finally:
        conn.close()


# ----------------------------------------------------------------------------- import

def _load_record(record: str | os.PathLike | Mapping) -> tuple[dict, Path | None]:
    if isinstance(record, Mapping):
        return dict(record), None
    p = Path(record)
    if p.is_dir():
        p = p / "record.json"
    with p.open("r", encoding="utf-8") as f:
        return json.load(f), p


def _median(samples: Sequence[Any]) -> float | None:
    xs = sorted(float(v) for v in samples
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v))
    if not xs:
        return None
    h = len(xs) // 2
    return xs[h] if len(xs) % 2 else 0.5 * (xs[h - 1] + xs[h])


def _j(v: Any) -> str | None:
    return None if v is None else json.dumps(v, sort_keys=True, allow_nan=False, default=str)


def import_record(db_path: str | os.PathLike | sqlite3.Connection,
                  record: str | os.PathLike | Mapping) -> dict:
    """Import one run record (a dict, a record.json path, or its run folder).

    One transaction; re-importing the same run_id replaces that run's rows (idempotent).
    Returns {"run_id", "measurements", "replaced"}.
    """
    rec, path = _load_record(record)
    if rec.get("schema") != RECORD_SCHEMA:
        raise ValueError(f"{path or 'record'}: schema is {rec.get('schema')!r}, "
                         f"expected {RECORD_SCHEMA!r}")
    run_id = rec.get("run_id")
    if not isinstance(run_id, str) or not run_id:
        raise ValueError(f"{path or 'record'}: no run_id")
    env = rec.get("environment") or {}
    git = env.get("git") or {}
    host = env.get("host") or {}
    devices = rec.get("devices") or {}
    meas = rec.get("measurements") or []
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    mtime = path.stat().st_mtime if path is not None else None
    rows = []
    for seq, m in enumerate(meas):
        samples = [float(v) for v in (m.get("samples") or [])
                   if isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isfinite(v)]
        device = m.get("device")
        profile = m.get("profile") or (devices.get(device) or {}).get("profile")
        rows.append((run_id, seq, m.get("test"), device, profile, m.get("metric"), m.get("unit"),
                     m.get("direction") or "lower", len(samples), _median(samples),
                     json.dumps(samples), _j(m.get("summary")), _j(m.get("target")),
                     m.get("time"), _j(m.get("extra"))))

    def tx():
        with opened(db_path) as conn, _write(conn):
            replaced = conn.execute("SELECT 1 FROM runs WHERE run_id = ?",
                                    (run_id,)).fetchone() is not None
            conn.execute("DELETE FROM measurements WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM run_devices WHERE run_id = ?", (run_id,))
            conn.execute(
                """INSERT INTO runs (run_id, started, finished, status, commit_sha, branch, dirty,
                       hostname, record_path, record_mtime, imported_at, n_measurements, environment)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)
                   ON CONFLICT(run_id) DO UPDATE SET started=excluded.started,
                       finished=excluded.finished, status=excluded.status,
                       commit_sha=excluded.commit_sha, branch=excluded.branch,
                       dirty=excluded.dirty, hostname=excluded.hostname,
                       record_path=excluded.record_path, record_mtime=excluded.record_mtime,
                       imported_at=excluded.imported_at, n_measurements=excluded.n_measurements,
                       environment=excluded.environment""",
                (run_id, rec.get("started"), rec.get("finished"), rec.get("status"),
                 git.get("commit"), git.get("branch"),
                 None if git.get("dirty") is None else int(bool(git.get("dirty"))),
                 host.get("hostname"), str(path) if path else None, mtime, now, len(rows),
                 _j(env)))
            conn.executemany(
                "INSERT INTO run_devices (run_id, serial, profile, info) VALUES (?,?,?,?)",
                [(run_id, str(s), (d or {}).get("profile"), _j(d)) for s, d in devices.items()])
            conn.executemany(
                """INSERT INTO measurements (run_id, seq, test, device, profile, metric, unit,
                       direction, n, median, samples, summary, target, time, extra)
                   VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)""", rows)
            return replaced

    replaced = _retry(tx)
    return {"run_id": run_id, "measurements": len(rows), "replaced": replaced}


def sync_runs(db_path: str | os.PathLike = DEFAULT_DB,
              runs_dir: str | os.PathLike = "reports/runs") -> list[str]:
    """Import every runs_dir/*/record.json that is new or changed since its last import.
    Unreadable / foreign files are skipped. Returns the imported run ids."""
    done = []
    with opened(db_path) as conn:
        known = {r["record_path"]: r["record_mtime"] for r in
                 conn.execute("SELECT record_path, record_mtime FROM runs")}
    for p in sorted(Path(runs_dir).glob("*/record.json")):
        try:
            if known.get(str(p)) == p.stat().st_mtime:
                continue
            done.append(import_record(db_path, p)["run_id"])
        except (OSError, ValueError):
            continue
    return done


# ----------------------------------------------------------------------------- queries

def _run_dict(r: sqlite3.Row) -> dict:
    d = dict(r)
    d["commit"] = d.pop("commit_sha", None)
    if d.get("environment"):
        d["environment"] = json.loads(d["environment"])
    return d


def list_runs(db_path: str | os.PathLike | sqlite3.Connection = DEFAULT_DB, *,
              branch: str | None = None, limit: int = 50) -> list[dict]:
    """Newest first: run_id, started, finished, status, commit, branch, n_measurements..."""
    q = ("SELECT run_id, started, finished, status, commit_sha, branch, dirty, hostname, "
         "n_measurements FROM runs")
    args: list = []
    if branch is not None:
        q += " WHERE branch = ?"
        args.append(branch)
    q += " ORDER BY started DESC, run_id DESC LIMIT ?"
    args.append(limit)
    with opened(db_path) as conn:
        return [_run_dict(r) for r in conn.execute(q, args)]


def run_info(db_path: str | os.PathLike | sqlite3.Connection, run_id: str) -> dict | None:
    """The runs row (environment parsed) plus "devices": {serial: info}."""
    with opened(db_path) as conn:
        r = conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if r is None:
            return None
        d = _run_dict(r)
        d["devices"] = {x["serial"]: json.loads(x["info"]) if x["info"] else {}
                        for x in conn.execute("SELECT serial, info FROM run_devices "
                                              "WHERE run_id = ?", (run_id,))}
        return d


def _meas_dict(r: sqlite3.Row) -> dict:
    d = dict(r)
    for k in ("samples", "summary", "target", "extra"):
        if d.get(k) is not None:
            d[k] = json.loads(d[k])
    return d


def measurements_for(db_path: str | os.PathLike | sqlite3.Connection, run_id: str, *,
                     device: str | None = None, metric: str | None = None,
                     test: str | None = None) -> list[dict]:
    """A run's measurements (record format + seq, n, median), in record order."""
    q, args = "SELECT * FROM measurements WHERE run_id = ?", [run_id]
    for col, v in (("device", device), ("metric", metric), ("test", test)):
        if v is not None:
            q += f" AND {col} = ?"
            args.append(v)
    with opened(db_path) as conn:
        return [_meas_dict(r) for r in conn.execute(q + " ORDER BY seq", args)]


def samples_for(db_path: str | os.PathLike | sqlite3.Connection, run_id: str, device: str,
                metric: str, test: str | None = None) -> list[float]:
    """Raw samples of one metric on one device in one run (several measurements, e.g.
    from several tests when test is None, are concatenated in record order)."""
    out: list[float] = []
    for m in measurements_for(db_path, run_id, device=device, metric=metric, test=test):
        out.extend(m["samples"] or [])
    return out


def series(db_path: str | os.PathLike | sqlite3.Connection, metric: str, *,
           device: str | None = None, profile: str | None = None, test: str | None = None,
           branch: str | None = None, before: str | None = None, limit: int = 200,
           include_samples: bool = False, include_health: bool = False) -> list[dict]:
    """History of one metric, oldest first: one point per run x device x test with run_id,
    started, commit, branch, status, device, profile, test, unit, direction, n, median
    (and samples, and the run's environment health, if asked). Filter by device or profile
    (all devices of a profile), test, branch; ``before`` = only runs started no later than that
    ISO time (whole seconds).

    A run that measured the metric several times in one test (the rounds of an A/B run)
    gives one point: the median of its measurements' medians, over the candidate's
    measurements only (an A/B baseline arm is another build, not this run's)."""
    cols = ("r.run_id, r.started, r.commit_sha AS commit_sha, r.branch, r.status, m.device, "
            "m.profile, m.test, m.unit, m.direction, m.n, m.median, m.summary, m.extra")
    if include_samples:
        cols += ", m.samples"
    if include_health:
        cols += ", r.environment"
    where, args = "m.metric = ?", [metric]
    for col, v in (("m.device", device), ("m.profile", profile), ("m.test", test),
                   ("r.branch", branch)):
        if v is not None:
            where += f" AND {col} = ?"
            args.append(v)
    if before is not None:
        # stamps have whole seconds: a run started in the same second as `before` (a
        # baseline made just before a fast candidate) is history too; callers leave the
        # candidate itself out by run id
        where += " AND r.started <= ?"
        args.append(before)
    # every run gives at least one point, so the last `limit` points lie in its last
    # `limit` runs: read only those
    q = (f"SELECT {cols} FROM measurements m JOIN runs r USING (run_id) WHERE {where} "
         f"AND r.run_id IN (SELECT r.run_id FROM measurements m JOIN runs r USING (run_id) "
         f"WHERE {where} GROUP BY r.run_id ORDER BY MAX(r.started) DESC, r.run_id DESC "
         f"LIMIT ?) ORDER BY r.started, r.run_id, m.seq")
    with opened(db_path) as conn:
        rows = [dict(r) for r in conn.execute(q, [*args, *args, limit])]
    points: dict[tuple, dict] = {}
    for d in rows:
        d["extra"] = json.loads(d["extra"]) if d.get("extra") else {}
        if ab_arm(d) == "baseline":
            continue
        d["runner"] = d.pop("extra").get("runner")  # harness.runner.settings
        d["commit"] = d.pop("commit_sha")
        d["summary"] = json.loads(d["summary"]) if d.get("summary") else None
        if include_samples:
            d["samples"] = json.loads(d["samples"]) if d.get("samples") else []
        if include_health:
            d["health"] = (json.loads(d.pop("environment") or "{}") or {}).get("health")
        key = (d["run_id"], d["device"], d["test"])
        if key not in points:
            d["_medians"] = [d["median"]] if d["median"] is not None else []
            points[key] = d
            continue
        p = points[key]
        if d["median"] is not None:
            p["_medians"].append(d["median"])
        p["n"] = (p["n"] or 0) + (d["n"] or 0)
        p["summary"] = None  # the summary of one of several measurements
        if include_samples:
            p["samples"] = p["samples"] + d["samples"]
    out = list(points.values())[-limit:]
    for p in out:
        meds = p.pop("_medians")
        if len(meds) > 1:
            p["median"] = float(statistics.median(meds))
    return out


def trend(db_path: str | os.PathLike | sqlite3.Connection, metric: str, *,
          device: str | None = None, profile: str | None = None, test: str | None = None,
          branch: str | None = None, limit: int = 200, **step_kw) -> dict:
    """series() of run medians plus change points, for trend charts:
    {"points": [...series rows...], "change_points": [{"index", "run_id", "commit",
    "before", "after", "change"}], "segments": [(start, end, median)]}.
    Points without a median are dropped. step_kw goes to harness.stats.detect_steps."""
    pts = [p for p in series(db_path, metric, device=device, profile=profile, test=test,
                             branch=branch, limit=limit) if p["median"] is not None]
    if not pts:
        return {"points": [], "change_points": [], "segments": []}
    cp = detect_steps([p["median"] for p in pts], **step_kw)
    changes = []
    for s in cp.steps():
        p = pts[s["index"]]
        changes.append({**s, "run_id": p["run_id"], "commit": p["commit"]})
    return {"points": pts, "change_points": changes, "segments": cp.segments}


def history_medians(db_path: str | os.PathLike | sqlite3.Connection, metric: str,
                    device: str, test: str | None = None, *, before: str | None = None,
                    exclude: Iterable[str] = (), runs: int = 20,
                    runner: Mapping[str, Any] | None = None,
                    skip_disturbed: bool = False, min_quiet: int = 0) -> list[float]:
    """Run medians of one device x metric (x test), oldest first: the last ``runs`` runs
    before ``before``, without ``exclude``, and (given ``runner``, the candidate's runner
    settings) only runs whose runner settings do not differ from them. ``skip_disturbed``
    (a device on this host's CPU): without runs whose own environment was disturbed
    (harness.stats.trust.run_disturbed), whose medians would inflate the noise estimate,
    unless fewer than ``min_quiet`` quiet runs are left: then all of them (a wider,
    conservative noise estimate)."""
    ex = set(exclude)
    pts = [p for p in series(db_path, metric, device=device, test=test, before=before,
                             limit=3 * runs + len(ex), include_health=skip_disturbed)
           if p["run_id"] not in ex and p["median"] is not None
           and settings_differ(p.get("runner"), runner) is None]
    if skip_disturbed:
        quiet = [p for p in pts if not run_disturbed(p["health"])]
        if len(quiet[-runs:]) >= min_quiet:
            pts = quiet
    return [p["median"] for p in pts[-runs:]]


def run_noise_for(db_path: str | os.PathLike | sqlite3.Connection, metric: str, device: str,
                  test: str | None = None, *, before: str | None = None,
                  exclude: Iterable[str] = (), runs: int = 20,
                  runner: Mapping[str, Any] | None = None):
    """Between-run noise of one device x metric (x test): a RunNoise (relative sd of the
    run median, and how many runs it rests on) from history_medians (robust to steps).
    None if < 5 runs."""
    return run_noise_from_medians(history_medians(db_path, metric, device, test,
                                                  before=before, exclude=exclude, runs=runs,
                                                  runner=runner))


#: the history database beside a lab output folder's runs/
HISTORY_NAME = "history.sqlite"


def history_db(out_root: Path | str) -> Path:
    """The history database of a lab output folder (`<lab-out>/history.sqlite`)."""
    return Path(out_root) / HISTORY_NAME


def history_db_for_run(run_dir: Path | str) -> Path:
    """`<lab-out>/runs/<run>` -> `<lab-out>/history.sqlite`."""
    return history_db(Path(run_dir).resolve().parent.parent)
