#!/usr/bin/env python3
"""Benchmark swap_runner on this host: per-stage median ms at 640x480 and 1280x720 for each
mode, cold start, peak RSS, and our Poisson blend vs cv::seamlessClone (speed ratio, PSNR).

    .venv/bin/python runner/bench.py [--abi x86_64] [--frames 30] [--warmup 5] [--threads 1]

Prints Markdown tables (pasted into runner/README.md). Not a test: numbers depend on the
machine and its load.
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

import cv2

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODELS = ROOT / "models"
STAGES = ("decode", "enhance", "detect", "landmarks", "align", "warp", "color", "mask", "blend", "total")
RESOLUTIONS = ((640, 480), (1280, 720))


def load_build():
    spec = importlib.util.spec_from_file_location("swaplab_runner_build", ROOT / "runner" / "build.py")
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
    cmd = [str(binary), "--models", str(MODELS), "--source", str(MODELS / "test_images" / "grace_hopper.jpg"),
           "--target", str(target), "--mode", mode, "--warmup", str(args.warmup), "--frames", str(args.frames),
           "--threads", str(args.threads), *extra]
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if r.returncode != 0:
        sys.exit(f"bench: swap_runner failed: {r.stderr.strip()}")
    recs = [json.loads(x) for x in r.stdout.splitlines() if x.strip()]
    frames = [x for x in recs if x["type"] == "frame" and not x["warmup"]]
    return frames, recs[-1]


def med(v):
    return statistics.median(v) if v else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--abi", default="x86_64")
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    binary = load_build().build_runner(args.abi, progress=lambda m: print(m, file=sys.stderr))

    with tempfile.TemporaryDirectory() as td:
        td = pathlib.Path(td)
        targets = {f"{w}x{h}": make_target(w, h, td) for w, h in RESOLUTIONS}
        cpuinfo = pathlib.Path("/proc/cpuinfo").read_text().splitlines()
        cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo if ln.startswith("model name")), "?")
        print(f"Host: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
              f"threads={args.threads}, OMP_WAIT_POLICY=PASSIVE, {args.warmup} warm-up + {args.frames} "
              f"measured frames, source grace_hopper.jpg, target: astronaut head crop scaled to the frame height, JPEG q92.\n")
        print("| resolution | mode | " + " | ".join(STAGES) + " | peak RSS MB | cold start ms |")
        print("|---|---|" + "---|" * (len(STAGES) + 2))
        for res, target in targets.items():
            for mode in ("tiny", "small", "base"):
                frames, s = run(binary, target, mode, args)
                cells = [f"{med([f['stage_ns'][st] / 1e6 for f in frames]):.2f}" for st in STAGES]
                cold = s["model_load_ms"] + s.get("source_ms", 0) + s["first_frame_ms"]
                print(f"| {res} | {mode} | " + " | ".join(cells) +
                      f" | {s['peak_rss_kb'] / 1024:.1f} | {cold:.0f} |")
        print("\nCold start = model load + source face + first frame (ms), one process start.\n")
        print("| resolution | own Poisson ms | seamlessClone ms | speed ratio | PSNR dB (own vs seamlessClone) |")
        print("|---|---|---|---|---|")
        for res, target in targets.items():
            frames, _ = run(binary, target, "small", args, ["--blend-compare"])
            own = med([f["blend_compare"]["own_ns"] / 1e6 for f in frames])
            ocv = med([f["blend_compare"]["opencv_ns"] / 1e6 for f in frames])
            ps = med([f["blend_compare"]["psnr_db"] for f in frames])
            print(f"| {res} | {own:.2f} | {ocv:.2f} | {ocv / own:.1f}x | {ps:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
