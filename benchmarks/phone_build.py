#!/usr/bin/env python3
"""The static phone-style build against the glibc host build, on this host's ABI (x86_64).

    .venv/bin/python benchmarks/phone_build.py [--rounds 8] [--frames 20] [--warmup 3]
                                               [--mode small] [--resolution 1280x720]

A = `runner/build.py --abi x86_64` (glibc, gcc, Debian's OpenCV 4.6 with its AVX2 dispatch,
ncnn fixed at this host's ISA); B = `--abi x86_64 --platform android` (musl, zig's clang,
static OpenCV 4.6 built from source, ncnn with run-time CPU dispatch and simpleomp).
Rounds are interleaved (A B B A A B ...), so a neighbour's load hits both alike; each round is
one process with `--frames` measured frames. Per stage: median over all measured frames of
each build, the spread of the per-round medians (min..max), and the ratio B/A of the
medians. Also: peak RSS (VmHWM) per round, cold start, binary size on disk.

Prints Markdown (pasted into runner/README.md with the machine and its load). Not a test:
numbers depend on the machine and its load; the ratio from one interleaved run is what
carries over.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
STAGES = ("decode", "enhance", "detect", "landmarks", "align", "warp", "color", "mask", "blend",
          "total")


def load_module(name: str, path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def one_round(binary: pathlib.Path, target: pathlib.Path, args) -> tuple[dict, dict]:
    """stage -> list of ms of the measured frames, and the summary line."""
    cmd = [str(binary), "--models", str(MODELS),
           "--source", str(MODELS / "test_images" / "grace_hopper.jpg"), "--target", str(target),
           "--mode", args.mode, "--warmup", str(args.warmup), "--frames", str(args.frames),
           "--threads", "1"]
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        sys.exit(f"phone_build: {binary} failed (exit {r.returncode}): {r.stderr.strip()}")
    recs = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    frames = [x for x in recs if x["type"] == "frame" and not x["warmup"]]
    return {s: [f["stage_ns"][s] / 1e6 for f in frames] for s in STAGES}, recs[-1]


def load_average() -> str:
    try:
        return " ".join(pathlib.Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def log(message: str) -> None:  # stdout carries only the tables
    print(message, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=8, help="rounds per build (interleaved)")
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--mode", default="small", choices=("tiny", "small", "base"))
    ap.add_argument("--resolution", default="1280x720")
    args = ap.parse_args(argv)
    w, h = (int(x) for x in args.resolution.split("x"))

    build = load_module("swaplab_runner_build", ROOT / "runner" / "build.py")
    bench = load_module("swaplab_runner_bench", ROOT / "runner" / "bench.py")
    builds = {"glibc (host)": build.build_runner("x86_64", log, platform="linux"),
              "static (android)": build.build_runner("x86_64", log, platform="android")}
    names = list(builds)
    stage_ms = {n: {s: [] for s in STAGES} for n in names}
    round_medians = {n: {s: [] for s in STAGES} for n in names}
    peak_mb = {n: [] for n in names}
    cold_ms = {n: [] for n in names}
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        target = bench.make_target(w, h, pathlib.Path(tmp))
        for i in range(args.rounds):
            order = names if i % 2 == 0 else names[::-1]  # A B, B A, A B ...
            for n in order:
                log(f"[phone_build] round {i + 1}/{args.rounds}: {n}")
                ms, summary = one_round(builds[n], target, args)
                for s in STAGES:
                    stage_ms[n][s] += ms[s]
                    round_medians[n][s].append(statistics.median(ms[s]))
                peak_mb[n].append(summary["peak_rss_kb"] / 1024.0)
                # as harness/runner.py's RunnerRun.cold_start_ms: model load + first frame
                cold_ms[n].append(summary["model_load_ms"] + (summary["first_frame_ms"] or 0.0))
    a, b = names
    print(f"Host: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Linux {platform.release()}; load average before {load_before}, after {load_average()}; "
          f"{args.rounds} interleaved rounds per build x {args.frames} measured frames "
          f"({args.warmup} warm-up), {w}x{h} JPEG, mode {args.mode}, threads=1.\n")
    print(f"| stage | {a} median ms (round min..max) | {b} median ms (round min..max) | ratio |")
    print("|---|---|---|---|")
    for s in STAGES:
        ma, mb = statistics.median(stage_ms[a][s]), statistics.median(stage_ms[b][s])
        ra, rb = round_medians[a][s], round_medians[b][s]
        ratio = f"{mb / ma:.2f}" if ma > 0.005 else "-"
        print(f"| {s} | {ma:.2f} ({min(ra):.2f}..{max(ra):.2f}) | "
              f"{mb:.2f} ({min(rb):.2f}..{max(rb):.2f}) | {ratio} |")
    print()
    print("| build | binary MB | peak RSS MB median (min..max) | cold start ms median |")
    print("|---|---|---|---|")
    for n in names:
        size = builds[n].stat().st_size / 2**20
        plugin = builds[n].with_name("libswap_video.so")
        extra = f" (+ video plugin {plugin.stat().st_size / 2**20:.2f})" if plugin.is_file() else ""
        print(f"| {n} | {size:.2f}{extra} | {statistics.median(peak_mb[n]):.1f} "
              f"({min(peak_mb[n]):.1f}..{max(peak_mb[n]):.1f}) | "
              f"{statistics.median(cold_ms[n]):.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
