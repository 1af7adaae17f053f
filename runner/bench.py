#!/usr/bin/env python3
"""Benchmark swap_runner on this host, interleaved: per-stage ms for each mode at 640x480 and
1280x720, cold start, peak RSS, and our Poisson blend vs cv::seamlessClone (speed ratio and
PSNR at 640x480, 1280x720 and 1920x1080).

    .venv/bin/python runner/bench.py [--abi x86_64] [--rounds 5] [--frames 30] [--warmup 5]

Every round runs every configuration once, in a fresh shuffled order, so a neighbour that
loads the machine for a while touches all configurations alike; ratios (tiny vs small, own
blend vs seamlessClone) are taken within a round. A table cell is the median over rounds of
each run's median frame, with the range over rounds beside it. The header says what else
used the CPU meanwhile (other processes' CPU time from /proc/stat, load average).

Prints Markdown (pasted into runner/README.md). Not a test: numbers depend on the machine.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import pathlib
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import cv2

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
STAGES = ("decode", "enhance", "detect", "landmarks", "align", "warp", "color", "mask", "blend",
          "total")
MODES = ("tiny", "small", "base")
RESOLUTIONS = ((640, 480), (1280, 720))
BLEND_RESOLUTIONS = ((640, 480), (1280, 720), (1920, 1080))
SOURCE = MODELS / "test_images" / "grace_hopper.jpg"


def load_build():
    spec = importlib.util.spec_from_file_location("swaplab_runner_build",
                                                  ROOT / "runner" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def make_target(w: int, h: int, folder: pathlib.Path) -> pathlib.Path:
    """A camera-like JPEG frame: the astronaut's head and shoulders scaled to the frame
    height (face ~45% of the height, within the short-range detector's reach), centred,
    edges replicated."""
    img = cv2.imread(str(MODELS / "test_images" / "astronaut.png"))[0:400, 56:456]
    s = h / img.shape[0]
    img = cv2.resize(img, (round(img.shape[1] * s), h), interpolation=cv2.INTER_AREA)
    pad = w - img.shape[1]
    img = cv2.copyMakeBorder(img, 0, 0, pad // 2, pad - pad // 2, cv2.BORDER_REPLICATE)
    p = folder / f"target_{w}x{h}.jpg"
    cv2.imwrite(str(p), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return p


def run(binary, target, mode, args, extra=()):
    cmd = [str(binary), "--models", str(MODELS), "--source", str(SOURCE),
           "--target", str(target), "--mode", mode, "--warmup", str(args.warmup),
           "--frames", str(args.frames), "--threads", str(args.threads), *extra]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        sys.exit(f"bench: swap_runner failed: {r.stderr.strip()}")
    recs = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    frames = [x for x in recs if x["type"] == "frame" and not x["warmup"]]
    return frames, recs[-1]


def med(v):
    return statistics.median(v) if v else float("nan")


def cell(values, digits=2) -> str:
    """median [min-max] over rounds."""
    return (f"{med(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"
            if values else "n/a")


def cpu_jiffies() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    fields = [int(x) for x in pathlib.Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--abi", default="x86_64")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    binary = load_build().build_runner(args.abi, progress=lambda m: print(m, file=sys.stderr))
    rng = random.Random(args.seed)
    stage_ms: dict[tuple[str, str, str], list[float]] = {}
    rss: dict[tuple[str, str], list[float]] = {}
    cold: dict[tuple[str, str], list[float]] = {}
    tiny_vs_small: dict[str, list[float]] = {}
    blend: dict[str, dict[str, list[float]]] = {}
    load_before = os.getloadavg()
    busy0, _ = cpu_jiffies()
    own0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory() as td:
        td = pathlib.Path(td)
        sizes = {f"{w}x{h}": (w, h) for w, h in set(RESOLUTIONS) | set(BLEND_RESOLUTIONS)}
        targets = {res: make_target(w, h, td) for res, (w, h) in sizes.items()}
        configs = [("swap", f"{w}x{h}", m) for w, h in RESOLUTIONS for m in MODES]
        configs += [("blend", f"{w}x{h}", "small") for w, h in BLEND_RESOLUTIONS]
        for rnd in range(args.rounds):
            order = list(configs)
            rng.shuffle(order)
            totals: dict[tuple[str, str], float] = {}
            for kind, res, mode in order:
                print(f"[bench] round {rnd + 1}/{args.rounds}: {kind} {res} {mode}",
                      file=sys.stderr)
                if kind == "blend":
                    frames, _ = run(binary, targets[res], mode, args, ["--blend-compare"])
                    own = med([f["blend_compare"]["own_ns"] / 1e6 for f in frames])
                    ocv = med([f["blend_compare"]["opencv_ns"] / 1e6 for f in frames])
                    b = blend.setdefault(res, {"own": [], "ocv": [], "ratio": [], "psnr": []})
                    b["own"].append(own)
                    b["ocv"].append(ocv)
                    b["ratio"].append(ocv / own)
                    b["psnr"].append(med([f["blend_compare"]["psnr_db"] for f in frames]))
                    continue
                frames, s = run(binary, targets[res], mode, args)
                for st in STAGES:
                    stage_ms.setdefault((res, mode, st), []).append(
                        med([f["stage_ns"][st] / 1e6 for f in frames]))
                totals[(res, mode)] = stage_ms[(res, mode, "total")][-1]
                rss.setdefault((res, mode), []).append(s["peak_rss_kb"] / 1024)
                cold.setdefault((res, mode), []).append(
                    s["model_load_ms"] + s.get("source_ms", 0.0) + s["first_frame_ms"])
            for w, h in RESOLUTIONS:
                res = f"{w}x{h}"
                tiny_vs_small.setdefault(res, []).append(
                    totals[(res, "tiny")] / totals[(res, "small")])
    wall = time.monotonic() - t0
    busy1, _ = cpu_jiffies()
    own1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    hz = os.sysconf("SC_CLK_TCK")
    own_s = (own1.ru_utime + own1.ru_stime) - (own0.ru_utime + own0.ru_stime)
    all_busy_s = (busy1 - busy0) / hz
    other_cores = max(0.0, all_busy_s - own_s) / wall
    cpuinfo = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")),
               "?")
    print(f"Host: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
          f"threads={args.threads}, OMP_WAIT_POLICY=PASSIVE; {args.rounds} interleaved rounds "
          f"(shuffled order each round), each run {args.warmup} warm-up + {args.frames} "
          f"measured frames; source grace_hopper.jpg, target: astronaut head crop scaled to "
          f"the frame height, JPEG q92.\n")
    print(f"Load while measuring ({wall:.0f} s): other processes used {other_cores:.2f} of "
          f"{os.cpu_count()} cores on average; load average {load_before[0]:.2f} before, "
          f"{os.getloadavg()[0]:.2f} after.\n")
    print("Cells: median over rounds of each run's median frame, ms [min-max over rounds].\n")
    print("| resolution | mode | " + " | ".join(STAGES) + " | peak RSS MB | cold start ms |")
    print("|---|---|" + "---|" * (len(STAGES) + 2))
    for w, h in RESOLUTIONS:
        res = f"{w}x{h}"
        for mode in MODES:
            cells = [f"{med(stage_ms[(res, mode, st)]):.2f}" for st in STAGES[:-1]]
            cells.append(cell(stage_ms[(res, mode, "total")]))
            print(f"| {res} | {mode} | " + " | ".join(cells)
                  + f" | {med(rss[(res, mode)]):.1f} | {cell(cold[(res, mode)], 0)} |")
    print("\nCold start = model load + source face + first frame (ms), one process start "
          "(the harness's `cold_start_ms` is the same sum).\n")
    print("| resolution | tiny / small (total, per round) |")
    print("|---|---|")
    for res, ratios in tiny_vs_small.items():
        print(f"| {res} | {cell(ratios)}x |")
    print("\n| resolution | own Poisson ms | seamlessClone ms | speed ratio (per round) "
          "| PSNR dB (own vs seamlessClone) |")
    print("|---|---|---|---|---|")
    for w, h in BLEND_RESOLUTIONS:
        b = blend[f"{w}x{h}"]
        print(f"| {w}x{h} | {cell(b['own'])} | {cell(b['ocv'])} | {cell(b['ratio'], 1)}x "
              f"| {med(b['psnr']):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
