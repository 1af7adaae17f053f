"""Synthetic run records (dicts) and run folders for the report / history / CLI tests (no
runner needed), all built from one measurement builder."""

from __future__ import annotations

import copy
import json
import random
import shutil
from pathlib import Path

import numpy as np

from harness.history.store import import_record
from harness.record.run_record import RunRecord, load_record
from harness.runner.telemetry import SCHEMA, STAGES
from harness.stats.descriptive import summarize
from helpers.paths import REPO

EVIL = '<script>alert(1)</script>'
QUOTED = 'it\'s "q" <b>.png'
TEST = "suites/test_latency.py::test_latency[local]"


def measurement(test: str, device: str, metric: str, samples: list[float], *,
                unit: str = "ms", direction: str = "lower", profile: str = "host",
                summary: dict | None = None, target: dict | None = None, time: str = "t",
                extra: dict | None = None) -> dict:
    """One measurement in record format (summary: summarize(samples) unless given)."""
    return {"test": test, "device": device, "profile": profile, "metric": metric, "unit": unit,
            "direction": direction, "samples": list(samples),
            "summary": summarize(samples) if summary is None else summary, "target": target,
            "time": time, "extra": dict(extra or {})}


def make_record(run_id: str, *, started: str = "2026-11-23T23:40:00Z", commit: str = "a" * 40,
                branch: str = "main", status: str = "finished", latency: float = 45.0,
                n: int = 100, seed: int = 0, devices=("emu-1",), p95_target: float = 120.0,
                extra_metrics: int = 0) -> dict:
    """A finished run record (dict) with latency_total_ms (~`latency` ms) and fps on each
    device, hostile device names, and `extra_metrics` small stage metrics."""
    rng = np.random.default_rng(seed)
    meas = []
    for dev in devices:
        lat = list(latency * rng.lognormal(0, 0.03, n))
        p95 = float(np.percentile(lat, 95))
        test = f"suites/test_latency.py::test_latency[{dev}]"
        meas.append(measurement(
            test, dev, "latency_total_ms", lat, time=started,
            summary={"n": n, "p50": float(np.median(lat)), "p95": p95},
            target={"key": "latency_p95_ms", "statistic": "p95", "value": p95_target,
                    "verdict": "pass" if p95 <= p95_target else "fail"}))
        meas.append(measurement(test, dev, "fps", list(1000.0 / np.array(lat)), unit="fps",
                                direction="higher", summary={"n": n}, time=started))
        for k in range(extra_metrics):
            meas.append(measurement(f"suites/test_x.py::t{k}[{dev}]", dev, f"stage_{k}_ms",
                                    [1.0 + k, 2.0, 3.0], summary={"n": 3}))
    return {
        "schema": "swaplab.record/1", "run_id": run_id, "started": started,
        "finished": None if status == "running" else started, "status": status,
        "environment": {"host": {"hostname": "lab1"},
                        "git": {"commit": commit, "branch": branch, "dirty": False}},
        "devices": {d: {"serial": d, "profile": "host", "name": "<b>evil</b>"} for d in devices},
        "measurements": meas, "tests": [], "artifacts": [],
    }


def telemetry_text(n: int = 12, warmup: int = 2, scale: float = 1.0, temp: bool = True,
                   switch_at: int | None = 8) -> str:
    rng = random.Random(3)
    lines = []
    mode = "base"
    for i in range(warmup + n):
        if switch_at is not None and i == switch_at:
            lines.append({"type": "mode_switch", "schema": SCHEMA, "index": i, "from": "base",
                          "to": "small", "temp_c": 71.0, "reason": "above_limit"})
            mode = "small"
        ns = {s: int(rng.uniform(0.5, 2.0) * 1e6 * scale) for s in STAGES if s != "total"}
        ns["total"] = sum(ns.values()) + 200_000
        lines.append({"type": "frame", "schema": SCHEMA, "index": i, "warmup": i < warmup,
                      "source_frame": 0, "faces": 1, "mode": mode, "enhanced": False,
                      "detected": True, "stage_ns": ns, "rss_kb": 40000,
                      "temp_c": 40.0 + i * 0.5 if temp else None})
    lines.append({"type": "summary", "schema": SCHEMA, "build": {"abi": "x86_64"},
                  "mode": "auto", "model_load_ms": 10.0, "first_frame_ms": 20.0,
                  "peak_rss_kb": 50000, "frames": n, "warmup_frames": warmup,
                  "mode_switches": 1 if switch_at is not None else 0})
    return "\n".join(json.dumps(x) for x in lines) + "\n"


def make_run(out_root: Path, *, scale: float = 1.0, seed: int = 1, n: int = 60,
             branch: str = "main", commit: str = "a" * 40, evil: bool = True,
             target_fail: bool = False) -> Path:
    """A finished run on device "local" with latency_total_ms samples (median ~ 20 ms x
    scale), stage measurements, a telemetry file, quality images (one with a quoted file
    name) and hostile strings in device name / properties."""
    name = EVIL if evil else "host"
    rec = RunRecord.create(out_root, {"host": {"hostname": name},
                                      "git": {"commit": commit, "branch": branch,
                                              "dirty": False}})
    rec.add_device("local", {"kind": "local", "serial": "local", "name": name,
                             "abi": "x86_64", "profile": "host", "properties": {"k": name}})
    rng = random.Random(seed)
    samples = [20.0 * scale * (1 + rng.gauss(0, 0.01)) for _ in range(n)]
    s = summarize(samples)
    rec.add_measurement(measurement(
        TEST, "local", "latency_total_ms", samples, summary=s,
        target={"key": "latency_p95_ms", "statistic": "p95",
                "value": 10.0 if target_fail else 1000.0, "measured": s["p95"],
                "verdict": "fail" if target_fail else "pass"},
        extra={"variant": "mode=small", "stage": "total"}))
    for stage in ("detect", "blend"):
        rec.add_measurement(measurement(TEST, "local", f"latency_{stage}_ms",
                                        [v / 3 for v in samples],
                                        extra={"variant": "mode=small", "stage": stage}))
    art = rec.run_dir / "artifacts" / "local" / "test_latency_local"
    art.mkdir(parents=True)
    (art / "latency.telemetry.jsonl").write_text(telemetry_text(scale=scale))
    rec.add_artifact("local", TEST, "telemetry", art / "latency.telemetry.jsonl",
                     label="latency", mode="auto")
    q = rec.run_dir / "quality" / "local-forward"
    q.mkdir(parents=True)
    src = REPO / "models" / "test_images" / "grace_hopper.jpg"
    for role in ("source", "target", "output", "golden"):
        shutil.copy(src, q / f"{role}.jpg")
        rec.add_artifact("local", "suites/test_quality.py::test_blend_quality[local-forward]",
                         "quality_image", q / f"{role}.jpg", role=role, variant=name)
    shutil.copy(src, q / QUOTED)
    rec.add_artifact("local", "suites/test_quality.py::test_blend_quality[local-forward]",
                     "quality_image", q / QUOTED, role="diff", variant=name)
    rec.add_test(TEST, "local", "passed", 1.0, "")
    rec.finish()
    return rec.run_dir


def seed_history(db: Path, like: dict | Path, n: int = 5, *, noise: float = 0.003,
                 seed: int = 0, start_day: int = 1) -> list[str]:
    """Import `n` earlier runs of unchanged code into the history `db`: copies of the
    record `like` (a dict or a run folder) started on 2026-01-`start_day` (before any
    test run), each measurement's samples times one run-to-run factor (lognormal,
    `noise`: a quiet device). A two-run comparison needs such a history before it may say "regressed"
    (harness.stats.trust.MIN_HISTORY)."""
    base = load_record(like) if isinstance(like, Path) else like
    rng = np.random.default_rng(seed)
    ids = []
    for i in range(n):
        rec = copy.deepcopy({k: v for k, v in base.items() if k != "effective_status"})
        rec["run_id"] = f"history-{start_day:02d}-{i:02d}-{base['run_id']}"
        rec["started"] = rec["finished"] = f"2026-01-{start_day:02d}T{i % 24:02d}:00:00Z"
        rec["status"] = "finished"
        rec.pop("comparison", None)
        for m in rec["measurements"]:
            f = float(rng.lognormal(0.0, noise))
            m["samples"] = [v * f for v in m["samples"]]
        ids.append(import_record(db, rec)["run_id"])
    return ids
