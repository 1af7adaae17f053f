"""Which run a --baseline spec names: a run id, a run folder, ``latest``,
``latest:BRANCH``, a branch with runs, a git ref or a commit prefix."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
from collections.abc import Sequence
from pathlib import Path

from harness.history.store import import_record, opened
from harness.runner.settings import effective_settings
from harness.stats.ab_arms import ab_arm
from harness.stats.trust import settings_differ

__all__ = ["BaselineError", "resolve_baseline"]


class BaselineError(LookupError):
    """The --baseline spec names no run in the history (the message says why)."""


#: a finished run that measured every (test, metric) the candidate (the last parameter)
#: measured
_COMPARABLE = ("AND status = 'finished' AND NOT EXISTS (SELECT 1 FROM measurements c "
               "WHERE c.run_id = ? AND NOT EXISTS (SELECT 1 FROM measurements b "
               "WHERE b.run_id = runs.run_id AND b.test = c.test AND b.metric = c.metric))")
_ORDER = ("ORDER BY (status = 'finished') DESC, (n_measurements > 0) DESC, started DESC, "
          "run_id DESC LIMIT 50")


def _runner_settings(conn: sqlite3.Connection, run_id: str) -> dict[tuple, dict]:
    """(device, test, metric) -> the runner settings of that measurement of a run."""
    devices = {r["serial"]: json.loads(r["info"]) if r["info"] else {} for r in
               conn.execute("SELECT serial, info FROM run_devices WHERE run_id = ?", (run_id,))}
    out = {}
    for r in conn.execute("SELECT device, test, metric, extra FROM measurements "
                          "WHERE run_id = ?", (run_id,)):
        extra = json.loads(r["extra"]) if r["extra"] else {}
        if ab_arm({"extra": extra}) != "baseline":
            out[(r["device"], r["test"], r["metric"])] = effective_settings(
                devices.get(r["device"]), extra)
    return out


def runner_settings_differ(conn: sqlite3.Connection, base: str, cand: str) -> str | None:
    """Why run `base` is no baseline for run `cand` (a measurement both took with other
    runner settings, harness.runner.settings), or None."""
    b = _runner_settings(conn, base)
    for key, c in _runner_settings(conn, cand).items():
        why = settings_differ(b.get(key), c)
        if why:
            return f"{why} on {key[0]} in {key[1]}"
    return None


def _git_commit(spec: str, git_cwd: str | os.PathLike | None) -> str | None:
    try:
        p = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{spec}^{{commit}}"],
                           cwd=git_cwd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    out = p.stdout.strip()
    return out if p.returncode == 0 and re.fullmatch(r"[0-9a-f]{40,64}", out) else None


def resolve_baseline(db_path: str | os.PathLike | sqlite3.Connection, spec: str,
                     git_cwd: str | os.PathLike | None = None, *,
                     exclude_run_id: str | None = None) -> str:
    """Turn a --baseline spec into a run id. Tried in order:

    1. a run id in the history, or a run folder / record.json path (imported first);
    2. "latest" (newest run) or "latest:BRANCH" (newest run on BRANCH);
    3. a branch name that has runs in the history ("main" = latest run on branch main);
    4. a git ref (``git rev-parse SPEC^{commit}`` in git_cwd): newest run of that commit;
    5. a commit prefix (>= 7 hex digits) of a recorded run.

    "Newest" prefers finished runs with measurements. exclude_run_id (the candidate) is
    never returned. When the candidate is in the history, 2-5 choose only among runs
    comparable to it: finished, measuring every test x metric the candidate measured
    (a quality-only or interrupted run is no baseline for a full run), with the same
    runner settings (threads, CPU set, mode, frames, input, build flags). Raises
    BaselineError with the reason when nothing matches.
    """
    spec = (spec or "").strip()
    if not spec or spec.startswith("-"):
        raise BaselineError(f"invalid baseline spec {spec!r}")
    ex = exclude_run_id or ""
    with opened(db_path) as conn:
        comparable = ""
        if ex and conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (ex,)).fetchone():
            comparable = _COMPARABLE

        def one(where: str, args: Sequence) -> str | None:
            q = f"SELECT run_id FROM runs WHERE ({where}) AND run_id != ? {comparable} {_ORDER}"
            rows = conn.execute(q, (*args, ex) + ((ex,) if comparable else ())).fetchall()
            newest_why = None
            for r in rows:
                why = runner_settings_differ(conn, r["run_id"], ex) if comparable else None
                if why is None:
                    return r["run_id"]
                newest_why = newest_why or f"; newest: run {r['run_id']}: {why}"
            if comparable and conn.execute(
                    f"SELECT 1 FROM runs WHERE ({where}) AND run_id != ?", (*args, ex)
            ).fetchone():
                raise BaselineError(
                    f"baseline {spec!r}: runs exist, but none is comparable with the "
                    "candidate (finished, measuring every test and metric it measured, "
                    f"with the same runner settings{newest_why or ''}); name a run id to "
                    "compare anyway")
            return None

        if spec != ex and conn.execute("SELECT 1 FROM runs WHERE run_id = ?",
                                       (spec,)).fetchone():
            return spec
        p = Path(spec)
        rec_path = p / "record.json" if p.is_dir() else p
        if rec_path.name == "record.json" and rec_path.is_file():
            try:
                rid = import_record(conn, rec_path)["run_id"]
            except (OSError, ValueError) as e:
                raise BaselineError(f"baseline {spec!r}: cannot import {rec_path}: {e}") from e
            if rid == ex:
                raise BaselineError(f"baseline {spec!r} is the candidate run itself")
            return rid
        if spec == "latest":
            rid = one("1", ())
            if rid:
                return rid
            raise BaselineError("no run in the history")
        if spec.startswith("latest:"):
            branch = spec.split(":", 1)[1]
            rid = one("branch = ?", (branch,))
            if rid:
                return rid
            raise BaselineError(f"no run recorded on branch {branch!r}")
        rid = one("branch = ?", (spec,))
        if rid:
            return rid
        commit = _git_commit(spec, git_cwd)
        if commit:
            rid = one("commit_sha = ?", (commit,))
            if rid:
                return rid
            raise BaselineError(f"no run recorded for {spec!r} (commit {commit[:12]})")
        if re.fullmatch(r"[0-9a-fA-F]{7,64}", spec):
            rid = one("commit_sha LIKE ?", (spec.lower() + "%",))
            if rid:
                return rid
    raise BaselineError(f"baseline {spec!r} is neither a run id, a branch with runs, "
                        "nor a git ref with a recorded run")
