#!/usr/bin/env python3
"""Cost of the run record per result: does a run with 10x the results cost 10x (O(1) per
result, the journal) or 100x (O(n) per result, rewriting record.json every time)?

A benchmark script, not a timed test. Each round makes one run record of N results and
one of 10N, in alternating order (interleaved, so a neighbour's load hits both sizes),
adding measurements shaped like the lab's (a latency metric: 120 samples, a summary and
a target) and finishing the record (record.json written from the journal). It prints the
median and spread (min-max) of the time per result for each size, their ratio, and the
load average during the run. With --rewrite it also times the old way (record.json
rewritten after every result) at N and 4N for contrast (10N would take minutes).

    nice python benchmarks/record_cost.py                 # N = 100, 5 rounds
    nice python benchmarks/record_cost.py -n 200 --rounds 7 --rewrite
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.record.run_record import RunRecord
from harness.stats.descriptive import summarize


def measurement(i: int, rng: random.Random) -> dict:
    samples = [round(20.0 * (1 + rng.gauss(0, 0.05)), 4) for _ in range(120)]
    s = summarize(samples)
    return {"test": f"suites/test_latency.py::test_latency[dev-{i}]", "device": "dev",
            "profile": "host", "metric": "latency_total_ms", "unit": "ms",
            "direction": "lower", "samples": samples, "summary": s,
            "target": {"key": "latency_p95_ms", "statistic": "p95", "value": 120.0,
                       "measured": s["p95"], "verdict": "pass"},
            "time": "2026-01-01T00:00:00Z", "extra": {"variant": "mode=small"}}


def one_run(root: Path, n: int, rewrite: bool, rng: random.Random) -> float:
    """Seconds per result for a record of n results (creation and finish included)."""
    items = [measurement(i, rng) for i in range(n)]
    t0 = time.perf_counter()
    rec = RunRecord.create(root, {"host": {"hostname": "bench"}})
    for m in items:
        rec.add_measurement(m)
        if rewrite:
            rec.save()  # the old record: the whole file rewritten per result
    rec.finish()
    rec.close()
    return (time.perf_counter() - t0) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-n", type=int, default=100, help="results in the small run")
    ap.add_argument("--factor", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--rewrite", action="store_true", help="also time the old whole rewrite")
    ap.add_argument("--dir", type=Path, default=None,
                    help="where to write (default: a temp folder on the disk of /tmp)")
    args = ap.parse_args(argv)
    rng = random.Random(1)
    sizes = [args.n, args.n * args.factor]
    per: dict[tuple[str, int], list[float]] = {}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="swaplab-record-cost-", dir=args.dir) as tmp:
        for r in range(args.rounds):
            order = sizes if r % 2 == 0 else sizes[::-1]
            for n in order:
                per.setdefault(("journal", n), []).append(one_run(Path(tmp), n, False, rng))
            if args.rewrite:
                for n in (args.n, args.n * 4)[:: 1 if r % 2 == 0 else -1]:
                    per.setdefault(("rewrite", n), []).append(one_run(Path(tmp), n, True, rng))
    load_after = os.getloadavg()
    print(f"# {os.cpu_count()} CPUs, load average (1/5/15 min) before "
          f"{load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, after "
          f"{load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f}; "
          f"{args.rounds} interleaved rounds")
    print("mode     results  ms/result median  (min-max)      total s median")
    med = {}
    for (mode, n), xs in sorted(per.items()):
        med[(mode, n)] = statistics.median(xs)
        print(f"{mode:8s} {n:7d}  {1e3 * med[(mode, n)]:10.3f}        "
              f"({1e3 * min(xs):.3f}-{1e3 * max(xs):.3f})   {n * med[(mode, n)]:10.2f}")
    ratio = med[("journal", sizes[1])] / med[("journal", sizes[0])]
    print(f"journal: time per result at {sizes[1]} / at {sizes[0]} = {ratio:.2f} "
          f"(1.0 = O(1) per result; total cost x{args.factor * ratio:.1f} for x{args.factor} "
          "results)")
    if args.rewrite:
        rr = med[("rewrite", args.n * 4)] / med[("rewrite", args.n)]
        print(f"rewrite: time per result at {args.n * 4} / at {args.n} = {rr:.2f} "
              f"(grows with the run: total cost x{4 * rr:.1f} for x4 results)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
