"""Two runner builds on the evaluation set: per-stage latency (interleaved) and quality.

    python benchmarks/quality_eval/runner_ab.py BASELINE_RUNNER CANDIDATE_RUNNER
        [--rounds 5] [--frames 20] [--warmup 3] [--pair SOURCE:TARGET] [--no-quality]
        (--rounds 0: quality only)
        [--mode small|base] [--candidate-flags "FLAGS"]

BASELINE and CANDIDATE may be one binary with `--candidate-flags` (e.g. "--small-faces
always"): the cost of an option, measured the same way.

Latency: rounds of (baseline, candidate) runs, the order alternating each round, each run
`--threads 1`, `--mode` (small unless asked; base for base-only changes such as the
glasses mask), `--enhance off`, one pair of the evaluation set looped for
`--frames` measured frames. Per run the median of each stage's ns; per stage the median
and the spread (min..max) of those run medians, and the candidate/baseline ratio of the
medians; `mask (face)` is the first face's own mask stage (per_face), without base mode's
person net. The machine (CPU model, cores) and the load average before and after are
printed with the table. Quality: every pair of the set swapped by each build and scored
with `swaplab score`'s logic; the failing scores per pair, side by side.

Numbers depend on the machine and its load: compare the two builds of one run, never
numbers of different runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

import build as evalset

STAGES = ("decode", "enhance", "detect", "landmarks", "align", "warp", "color", "mask",
          "blend", "total")


def stage_medians(runner: Path, source: Path, target: Path, frames: int, warmup: int,
                  mode: str = "small", flags: tuple[str, ...] = ()) -> dict[str, float]:
    r = subprocess.run([str(runner), "--models", str(REPO / "models"), "--source", str(source),
                        "--target", str(target), "--mode", mode, "--warmup", str(warmup),
                        "--frames", str(frames), "--threads", "1", "--enhance", "off",
                        "--telemetry", "-", *flags], capture_output=True, text=True, check=False,
                       env={"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"}, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"{runner}: exit {r.returncode}: {r.stderr[-500:]}")
    recs = [json.loads(x) for x in r.stdout.splitlines() if x.startswith("{")]
    measured = [x for x in recs if x.get("type") == "frame" and not x.get("warmup")]
    med = {s: statistics.median(f["stage_ns"][s] for f in measured) for s in STAGES}
    # The first face's own mask work (the frame's `mask` also holds base mode's person net).
    # (an older runner, before telemetry schema /2, has no per_face: not measured, nan)
    med["mask (face)"] = (statistics.median(f["per_face"][0]["stage_ns"]["mask"] for f in measured)
                          if all(f.get("per_face") for f in measured) else float("nan"))
    return med


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def latency(a: Path, b: Path, args) -> None:
    s, t = args.pair.split(":")
    src, tgt = evalset.face_path(s), evalset.face_path(t)
    runs: dict[str, list[dict[str, float]]] = {"baseline": [], "candidate": []}
    load0 = os.getloadavg()
    for i in range(args.rounds):
        order = [("baseline", a, ()), ("candidate", b, tuple(args.candidate_flags.split()))]
        for name, runner, flags in (order if i % 2 == 0 else order[::-1]):
            runs[name].append(stage_medians(runner, src, tgt, args.frames, args.warmup,
                                            args.mode, flags))
    load1 = os.getloadavg()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.system()} "
          f"{platform.release()}; load average before {load0[0]:.2f}, after {load1[0]:.2f}")
    print(f"pair {s} -> {t}, {args.mode} mode, threads 1, {args.rounds} interleaved rounds x "
          f"{args.frames} frames (+{args.warmup} warm-up); candidate flags: "
          f"{args.candidate_flags or 'none'}\n")
    print("| stage | baseline median ms (min..max) | candidate median ms (min..max) | ratio |")
    print("|---|---|---|---|")
    for st in (*STAGES, "mask (face)"):
        va = [r[st] / 1e6 for r in runs["baseline"]]
        vb = [r[st] / 1e6 for r in runs["candidate"]]
        ma, mb = statistics.median(va), statistics.median(vb)
        if math.isnan(ma) or math.isnan(mb):
            print(f"| {st} | {'-' if math.isnan(ma) else f'{ma:.3f}'} | "
                  f"{'-' if math.isnan(mb) else f'{mb:.3f}'} | - |")
            continue
        ratio = f"{mb / ma:.3f}" if ma > 0 else "-"
        print(f"| {st} | {ma:.3f} ({min(va):.3f}..{max(va):.3f}) | "
              f"{mb:.3f} ({min(vb):.3f}..{max(vb):.3f}) | {ratio} |")


def quality(a: Path, b: Path, mode: str = "small") -> None:
    from harness.quality import load_rgb
    from harness.quality.score_output import score_output

    print(f"\n{mode} mode")
    print("\n| pair | seen | baseline fails | candidate fails |\n|---|---|---|---|")
    totals = [0, 0]
    with tempfile.TemporaryDirectory() as tmp:
        for (s, t), seen in evalset.LABELS.items():
            src, tgt = load_rgb(evalset.face_path(s)), load_rgb(evalset.face_path(t))
            cells = []
            for k, runner in enumerate((a, b)):
                out = evalset.run_runner(runner, evalset.face_path(s), evalset.face_path(t),
                                         Path(tmp) / f"{k}-{s}-{t}", mode=mode)
                r = score_output(src, tgt, load_rgb(out[0]), mode=mode)
                names = [x.name for x in r.failures()]
                totals[k] += bool(names)
                cells.append(", ".join(names) or "-")
            print(f"| {s}->{t} | {', '.join(seen) or 'good'} | {cells[0]} | {cells[1]} |")
    print(f"\nswaps failing `swaplab score`: baseline {totals[0]}/{len(evalset.LABELS)}, "
          f"candidate {totals[1]}/{len(evalset.LABELS)}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("baseline", type=Path)
    ap.add_argument("candidate", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--frames", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--pair", default="grace_hopper:obama_portrait")
    ap.add_argument("--no-quality", action="store_true")
    ap.add_argument("--mode", choices=("small", "base"), default="small")
    ap.add_argument("--candidate-flags", default="", help="runner flags of the candidate's runs")
    a = ap.parse_args(argv)
    if a.rounds > 0:
        latency(a.baseline, a.candidate, a)
    if not a.no_quality:
        quality(a.baseline, a.candidate, a.mode)
    return 0


if __name__ == "__main__":
    sys.exit(main())
