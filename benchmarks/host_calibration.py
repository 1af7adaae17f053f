#!/usr/bin/env python3
"""Calibrate the CI gate per run on this host, with real lab runs (issue 15).

benchmarks/calibration.py calibrates the statistical rule per metric on synthetic and
resampled data. This script asks the question a team asks: with the whole gate (the rule,
Holm over the run, the resolution floor, environment health, minimum history, runner
settings), how often does a run of unchanged code fail CI, and is a real slowdown of the
runner still caught?

Protocol (one lab folder, one history, everything on this host):

1. `--history` quiet runs of `suites/test_latency.py` (the history the gate needs before
   a two-run "regressed").
2. `--pairs` A/A comparisons of the same build: runs alternate between quiet and with a
   CPU neighbour (a busy loop pinned to core 0, started and stopped here, as in the
   issue), and each is compared by the gate with the newest quiet run before it (the
   baseline `--baseline latest` would pick on a quiet CI host). So half the pairs have the
   neighbour in the candidate, half are quiet, and each quiet run is the next baseline.
3. `--planted` runs per slowdown in `--pct`, spread among them: a planted slowdown of the
   runner (`SWAPLAB_PLANT_SLOWDOWN_PCT`, runner/README.md: every swapped frame spins that
   much longer in its blend stage), compared with the newest quiet run.

Every run is a real `pytest` lab session (host profile with `--frames` measured frames);
the gate is harness.history.compare.compare, as `--baseline` runs it. Also recorded, as a
diagnostic: the verdicts without the environment guard (the rule + Holm + floor + minimum
history), to show what the guard holds back.

    nice python benchmarks/host_calibration.py --out /tmp/host-calib \\
        --json tests/fixtures/calibration/host_calibration.json
    python benchmarks/host_calibration.py --replay tests/fixtures/calibration/host_calibration.json

`--replay` re-gates the recorded runs with the current code (no runs; seconds) and prints
the same tables: tests/test_host_calibration.py does that, and a tiny live version.
Prints markdown (docs/statistics.md publishes it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.history import store as H
from harness.history.compare import compare, compare_runs
from harness.record.run_record import load_record
from harness.stats.compare import DEFAULT_RULE
from harness.stats.trust import apply_floor, holm

SUITE = "suites/test_latency.py"
PLANT_ENV = "SWAPLAB_PLANT_SLOWDOWN_PCT"
#: the metrics a planted slowdown must move (the whole frame; the stage it is spent in)
PLANTED_METRICS = ("latency_total_ms", "latency_blend_ms")


# ----------------------------------------------------------------------------- running

def host_profiles(dest: Path, frames: int, warmup: int) -> Path:
    """device_profiles/ with host.toml's frame counts set (everything else as shipped)."""
    dest.mkdir(parents=True, exist_ok=True)
    for p in (ROOT / "device_profiles").glob("*.toml"):
        text = p.read_text(encoding="utf-8")
        if p.name == "host.toml":
            text = re.sub(r"(?m)^measured_frames = \d+", f"measured_frames = {frames}", text)
            text = re.sub(r"(?m)^warmup_frames = \d+", f"warmup_frames = {warmup}", text)
        (dest / p.name).write_text(text, encoding="utf-8")
    return dest


@contextlib.contextmanager
def neighbour(on: bool) -> Iterator[None]:
    """A busy loop pinned to core 0 while the block runs (the issue's CPU neighbour)."""
    if not on:
        yield
        return
    p = subprocess.Popen([sys.executable, "-c",
                          "import os\nos.sched_setaffinity(0, {0})\nwhile True: pass"])
    try:
        time.sleep(0.5)
        yield
    finally:
        p.kill()
        p.wait()


def lab_run(lab: Path, profiles: Path, *, plant_pct: float = 0.0, busy: bool = False,
            log=print) -> str:
    """One lab session of SUITE on this host; returns its run id."""
    env = dict(os.environ, SWAPLAB_BACKENDS="local", OMP_WAIT_POLICY="PASSIVE")
    env.pop(PLANT_ENV, None)
    if plant_pct:
        env[PLANT_ENV] = f"{plant_pct:g}"
    argv = [sys.executable, "-m", "pytest", SUITE, "--lab-out", str(lab), "--profiles-dir",
            str(profiles), "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            # another session's lab run may hold this host: wait for it, never share it
            "--lease-wait", "3600"]
    t0 = time.monotonic()
    with neighbour(busy):
        r = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=1800, check=False)
    run_id = (lab / "latest").resolve().name
    rec = load_record(lab / "runs" / run_id)
    if r.returncode != 0 or not rec.get("measurements"):
        raise RuntimeError(f"lab run {run_id} failed (exit {r.returncode}, "
                           f"{len(rec.get('measurements') or [])} measurements):\n"
                           f"{r.stdout[-3000:]}\n{r.stderr[-2000:]}")
    log(f"  run {run_id}: plant {plant_pct:g}%, neighbour {'on' if busy else 'off'}, "
        f"{time.monotonic() - t0:.0f} s")
    return run_id


def plan(history: int, pairs: int, planted: int, pcts: tuple[float, ...] = (10.0,)
         ) -> list[dict]:
    """The runs, in order. After `history` quiet runs, quiet runs and runs with a CPU
    neighbour alternate (`pairs` of them), with the planted runs (`planted` per slowdown
    in `pcts`) spread among them. Every run after the history is a candidate: the gate
    compares it with the newest quiet run before it (what `--baseline latest` would
    be on a quiet CI host), so each quiet run is also the next comparison's baseline."""
    out: list[dict] = [{"kind": "history"} for _ in range(history)]
    aa = [{"kind": "aa", "neighbour": i % 2 == 1} for i in range(pairs)]
    pl = [{"kind": "planted", "neighbour": False, "pct": pcts[i % len(pcts)]}
          for i in range(planted * len(pcts))]
    step = max(2, 2 * round(len(aa) / max(1, len(pl)) / 2))
    while aa or pl:
        out += aa[:step]
        del aa[:step]
        if pl:
            out.append(pl.pop(0))
    return out


# ----------------------------------------------------------------------------- gating

def _health(info: dict) -> dict:
    h = (info.get("environment") or {}).get("health") or {}
    return {k: h.get(k) for k in ("cores", "other_cpu_cores_mean", "other_cpu_cores_max",
                                  "steal_cores_mean")}


def gate_pair(db: Path, base: str, cand: str) -> dict:
    """The gate's verdicts of cand vs base, and the same without the environment guard."""
    comp = compare(db, cand, baseline_run_id=base)
    raw = compare_runs(db, base, cand)
    totals = {r.device: r.median_base for r in raw
              if r.metric == "latency_total_ms" and r.median_base}
    unguarded = holm(apply_floor(raw, totals), DEFAULT_RULE.alpha)
    return {
        "baseline": base, "candidate": cand,
        "health_base": _health(H.run_info(db, base) or {}),
        "health_cand": _health(H.run_info(db, cand) or {}),
        "exit_status": comp.exit_status,
        "rows": [{"metric": r.metric, "verdict": r.verdict, "reason": r.reason,
                  "change": None if r.change is None else round(r.change, 4)}
                 for r in comp.rows],
        "unguarded": {r.metric: r.verdict for r in unguarded},
    }


def compact_record(run_dir: Path) -> dict:
    """The parts of a run record the gate reads (samples to 4 significant digits)."""
    rec = load_record(run_dir)
    rec.pop("effective_status", None)
    keep = ("schema", "run_id", "started", "finished", "status", "environment", "devices",
            "measurements")
    out = {k: rec.get(k) for k in keep}
    env = out["environment"] or {}
    out["environment"] = {k: env.get(k) for k in ("git", "host", "runner_builds")}
    # the run's health summary (the gate reads it), not its time windows
    out["environment"]["health"] = {k: v for k, v in (env.get("health") or {}).items()
                                    if k != "windows"}
    out["devices"] = {s: {k: d.get(k) for k in ("kind", "profile", "cpu_shared",
                                                "runner_settings", "runner_build")}
                      for s, d in (out["devices"] or {}).items()}
    # extra without "runner": the device's runner_settings say the same for this suite
    out["measurements"] = [{**{k: m.get(k) for k in ("test", "device", "profile", "metric",
                                                     "unit", "direction", "time")},
                            "extra": {k: v for k, v in (m.get("extra") or {}).items()
                                      if k != "runner"},
                            "samples": [float(f"{v:.4g}") for v in m.get("samples") or []]}
                           for m in out["measurements"]]
    return out


# ----------------------------------------------------------------------------- tables

_WHY = (("environment disturbed", "environment disturbed"), ("inconclusive", "inconclusive"),
        ("resolution floor", "below the resolution floor"),
        ("too little history", "too little history"),
        ("runner settings differ", "runner settings differ"),
        ("Holm", "not significant across the run (Holm)"))


def _category(row: dict) -> str:
    if row["verdict"] != "unknown":
        return row["verdict"]
    why = next((name for needle, name in _WHY if needle in row["reason"]), None)
    return f"unknown: {why or row['reason'][:40]}"


def _is_disturbed(row: dict) -> bool:
    return row["verdict"] == "unknown" and row["reason"].startswith("environment disturbed")


def tables(results: list[dict]) -> str:
    """Per run and per metric: false alarms of the A/A pairs (quiet / neighbour) and
    power on the planted pairs, with and without the environment guard."""
    lines = []
    groups = (("A/A, quiet", lambda r: r["kind"] == "aa" and not r["neighbour"]),
              ("A/A, CPU neighbour in the candidate", lambda r: r["kind"] == "aa"
               and r["neighbour"]),
              *((f"planted slowdown {pct:g}%", lambda r, pct=pct: r["kind"] == "planted"
                 and r["plant_pct"] == pct)
                for pct in sorted({r["plant_pct"] for r in results
                                   if r["kind"] == "planted"})))
    lines += [("| pairs | runs | runs with a `regressed` verdict (gate fails) | metrics "
               "`regressed` / compared | verdicts | without the environment guard: runs "
               "`regressed` |"),
              "|---|---:|---:|---:|---|---:|"]
    for name, pick in groups:
        rs = [r for r in results if pick(r)]
        if not rs:
            continue
        failed = sum(any(x["verdict"] == "regressed" for x in r["rows"]) for r in rs)
        n_rows = sum(len(r["rows"]) for r in rs)
        n_reg = sum(x["verdict"] == "regressed" for r in rs for x in r["rows"])
        counts: dict[str, int] = {}
        for r in rs:
            for x in r["rows"]:
                k = _category(x)
                counts[k] = counts.get(k, 0) + 1
        unguarded = sum("regressed" in r["unguarded"].values() for r in rs)
        verdicts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items(),
                                                           key=lambda kv: -kv[1]))
        lines.append(f"| {name} | {len(rs)} | {failed} ({failed / len(rs):.0%}) | "
                     f"{n_reg} / {n_rows} | {verdicts} | {unguarded} |")
    pcts = sorted({r["plant_pct"] for r in results if r["kind"] == "planted"})
    if pcts:
        lines += ["", ("| planted pairs: slowdown, metric | `regressed` | `regressed` "
                       "without the environment guard | median change |"),
                  "|---|---:|---:|---:|"]
    for pct in pcts:
        pl = [r for r in results if r["kind"] == "planted" and r["plant_pct"] == pct]
        for metric in PLANTED_METRICS:
            rows = [x for r in pl for x in r["rows"] if x["metric"] == metric]
            reg = sum(x["verdict"] == "regressed" for x in rows)
            ung = sum(r["unguarded"].get(metric) == "regressed" for r in pl)
            ch = sorted(x["change"] for x in rows if x["change"] is not None)
            med = f"{ch[len(ch) // 2]:+.1%}" if ch else "-"
            lines.append(f"| {pct:g}%, {metric} | {reg} / {len(pl)} | {ung} / {len(pl)} | "
                         f"{med} |")
    health = [r["health_cand"].get("other_cpu_cores_mean") for r in results]
    health = sorted(h for h in health if h is not None)
    if health:
        lines += ["", (f"Other processes' CPU during the compared runs (harness.record."
                       f"health, cores of {results[0]['health_cand'].get('cores')}): median "
                       f"{health[len(health) // 2]:.2f}, min {health[0]:.2f}, max "
                       f"{health[-1]:.2f}.")]
    return "\n".join(lines)


def gate_on_history(records: list[dict], runs: list[dict], pairs: list[tuple[str, str]],
                    db: Path) -> list[dict]:
    """gate_pair for each (baseline, candidate) on a history of the calibration's runs in
    `db` (a new file): every run except the planted ones, plus the candidate itself. A
    planted run is another build: in CI it is a candidate commit, never part of main's
    history, and three of them among twenty runs would make the gate's between-run noise
    (harness.stats.changepoint.run_noise_from_medians) that of the plant, not the host's."""
    planted = {r["run_id"] for r in runs if r["plant_pct"]}
    by_id = {rec["run_id"]: rec for rec in records}
    for rec in records:
        if rec["run_id"] not in planted:
            H.import_record(db, rec)
    out = []
    for base, cand in pairs:
        if cand not in planted:
            out.append(gate_pair(db, base, cand))
            continue
        scratch = db.with_name(f"{db.stem}-with-{cand}.sqlite")
        with contextlib.closing(sqlite3.connect(db)) as src, \
                contextlib.closing(sqlite3.connect(scratch)) as dst:
            src.backup(dst)
        try:
            H.import_record(scratch, by_id[cand])
            out.append(gate_pair(scratch, base, cand))
        finally:
            for f in scratch.parent.glob(f"{scratch.name}*"):
                f.unlink()
    return out


def replay(data: dict, db: Path) -> list[dict]:
    """Re-gate the recorded pairs with the current code (gate_on_history, in a fresh
    history at `db`)."""
    pairs = [(r["baseline"], r["candidate"]) for r in data["results"]]
    gated = gate_on_history(data["records"], data["runs"], pairs, db)
    return [{**r, **g} for r, g in zip(data["results"], gated)]


# ----------------------------------------------------------------------------- main

def compare_sequence(records: list[dict], runs: list[dict], history: int,
                     db: Path) -> list[dict]:
    """The gate's comparisons of a calibration's runs (oldest first; each {"run_id",
    "neighbour", "plant_pct"}, with their compact records): after the first `history`
    runs, each run against the newest quiet run before it; a quiet candidate is the next
    baseline. Gated by gate_on_history in a fresh history at `db`."""
    quiet: list[str] = []
    steps = []
    for i, r in enumerate(runs):
        is_quiet = not r["neighbour"] and not r["plant_pct"]
        if i < history or not quiet:
            quiet.append(r["run_id"])
            continue
        steps.append((r, quiet[-1]))
        if is_quiet:
            quiet.append(r["run_id"])
    gated = gate_on_history(records, runs, [(b, r["run_id"]) for r, b in steps], db)
    return [{"kind": "planted" if r["plant_pct"] else "aa", "neighbour": r["neighbour"],
             "plant_pct": r["plant_pct"], **g} for (r, _), g in zip(steps, gated)]


_RUN_LINE = re.compile(r"^\s+run (\S+): plant ([0-9.]+)%, neighbour (on|off)")


def runs_from_logs(lab: Path, logs: list[Path]) -> list[dict]:
    """The runs of an (interrupted) calibration in `lab`, oldest first, with what its
    output LOG(s) printed about each (a run the logs do not name, e.g. one that finished
    after its calibration was stopped, was quiet; runs without measurements are left
    out)."""
    said = {}
    for log in logs:
        for line in log.read_text(encoding="utf-8").splitlines():
            m = _RUN_LINE.match(line)
            if m:
                said[m.group(1)] = {"plant_pct": float(m.group(2)),
                                    "neighbour": m.group(3) == "on"}
    return [{"run_id": rid, **said.get(rid, {"plant_pct": 0.0, "neighbour": False})}
            for rid in sorted(p.parent.name for p in (lab / "runs").glob("*/record.json"))
            if _complete(load_record(lab / "runs" / rid))]


def _complete(rec: dict) -> bool:
    """A finished run that measured (a run stopped with its calibration may have not)."""
    return rec.get("status") == "finished" and bool(rec.get("measurements"))


def result_doc(args, lab: Path, runs: list[dict], history: int, wall_s: float) -> dict:
    records = [compact_record(lab / "runs" / r["run_id"]) for r in runs]
    gate_db = lab.parent / "gate-history.sqlite"
    gate_db.unlink(missing_ok=True)
    return {
        "method": {"suite": SUITE, "history": history, "pairs": args.pairs,
                   "planted": args.planted, "plant_pct": args.pct, "frames": args.frames,
                   "warmup": args.warmup, "neighbour": "busy loop pinned to core 0 during "
                   "every second non-planted run; each run is compared with the newest "
                   "quiet run before it"},
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                    "processor": _cpu_model(), "loadavg_start_end": [args.load0,
                                                                     os.getloadavg()]},
        "wall_s": round(wall_s),
        "runs": runs,
        "records": records,
        "results": compare_sequence(records, runs, history, gate_db),
    }


def run(args) -> dict:
    out = Path(args.out)
    lab = out / "lab"
    profiles = host_profiles(out / "profiles", args.frames, args.warmup)
    pcts = tuple(float(x) for x in str(args.pct).split(",") if x.strip())
    steps = plan(args.history, args.pairs, args.planted, pcts)
    # with --resume, the runs already in the folder (an interrupted calibration's quiet
    # history) come first
    runs = [{"run_id": p.parent.name, "neighbour": False, "plant_pct": 0.0}
            for p in sorted((lab / "runs").glob("*/record.json"))]
    if runs and not args.resume:
        raise SystemExit(f"{lab} has runs already; --resume to take them as quiet history")
    history = len(runs) + args.history
    t0 = time.monotonic()
    for i, step in enumerate(steps):
        print(f"[{i + 1}/{len(steps)}] {step['kind']}"
              + (" (neighbour)" if step.get("neighbour") else "")
              + (f" {step['pct']:g}%" if step.get("pct") else ""), flush=True)
        neighbour, pct = step.get("neighbour", False), step.get("pct", 0.0)
        runs.append({"run_id": lab_run(lab, profiles, busy=neighbour, plant_pct=pct),
                     "neighbour": neighbour, "plant_pct": pct})
    return result_doc(args, lab, runs, history, time.monotonic() - t0)


def write_json(path: Path, data: dict) -> None:
    """One line per record and per result: small, and a diff shows what changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    parts = [f'{json.dumps(k)}: {json.dumps(v)}' for k, v in data.items()
             if k not in ("records", "results")]
    for k in ("records", "results"):
        parts.append(f'{json.dumps(k)}: [\n' + ",\n".join(json.dumps(x) for x in data[k])
                     + "\n]")
    path.write_text("{\n" + ",\n".join(parts) + "\n}\n", encoding="utf-8")


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="work folder (lab runs, history)")
    ap.add_argument("--history", type=int, default=5)
    ap.add_argument("--pairs", type=int, default=20)
    ap.add_argument("--planted", type=int, default=6)
    ap.add_argument("--pct", default="10", help="planted slowdown(s), percent, comma-separated "
                                                "(--planted pairs each)")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--resume", action="store_true",
                    help="the --out folder's runs so far are quiet history runs")
    ap.add_argument("--json", default=None, help="write the results (and the compact "
                                                 "records) here")
    ap.add_argument("--replay", default=None, help="re-gate a recorded --json file")
    ap.add_argument("--from-log", nargs="+", default=None, metavar="LOG",
                    help="no runs: the results of an interrupted calibration in --out, from "
                         "the runs its output LOG(s) printed (the first --history are "
                         "history)")
    args = ap.parse_args(argv)
    if args.from_log:
        args.load0 = os.getloadavg()
        runs = runs_from_logs(Path(args.out) / "lab", [Path(p) for p in args.from_log])
        data = result_doc(args, Path(args.out) / "lab", runs, args.history, 0)
        if args.json:
            write_json(Path(args.json), data)
        print(tables(data["results"]))
        return 0
    if args.replay:
        data = json.loads(Path(args.replay).read_text())
        with tempfile.TemporaryDirectory(prefix="host-calib-") as tmp:
            results = replay(data, Path(tmp) / "history.sqlite")
        print(tables(results))
        return 0
    args.load0 = os.getloadavg()
    tmp = None
    if args.out is None:
        tmp = tempfile.mkdtemp(prefix="host-calib-")
        args.out = tmp
    try:
        data = run(args)
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    if args.json:
        write_json(Path(args.json), data)
    print(tables(data["results"]))
    print(f"\nWall time {data['wall_s']} s; load average at start "
          f"{', '.join(f'{x:.2f}' for x in args.load0)}, at end "
          f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
