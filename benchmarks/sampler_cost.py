#!/usr/bin/env python3
"""CPU cost of the on-device sampler, measured on SwapLab's virtual device.

A benchmark script, not a timed test. The virtual device runs device programs as host
processes, children of its server, which runs in this process; so the CPU time of one
sampler run (its shell and everything it spawned, waited for) is this process's
RUSAGE_CHILDREN delta around the run. The run goes through adbutils in-process (no adb
client child) and the private adb server is a daemon (not a child), so nothing else is
counted. Each round runs the current sampler and, for contrast, the loop it replaced
(a copy of the old script: a `cat | tr` pipeline per file, ~67 processes per sample),
interleaved, for --samples samples at --interval seconds, and prints the median and
spread of CPU ms per sample and the share of one core at that interval, with the load.

    nice python benchmarks/sampler_cost.py                    # 20 samples x 5 rounds
    nice python benchmarks/sampler_cost.py --samples 40 --rounds 7 --interval 0.5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.devices.android.sampler import (
    BATTERY,
    CPUS,
    THERMAL,
    parse_samples,
    sampler_script,
)
from harness.virtual_device.testing import AdbLab


def old_sampler_script(interval_s: float, n: int) -> str:
    """The sampler before issue 15 (kept here only as the benchmark's reference)."""
    return (
        "i=0; pf=''; "
        "while :; do "
        "read up _ < /proc/uptime; echo \"T $up\"; "
        f"for z in {THERMAL}/thermal_zone*; do [ -e \"$z\" ] || continue; "
        "t=$(cat \"$z/type\" 2>/dev/null | tr ' ' _); v=$(cat \"$z/temp\" 2>&1 | tr '\\n' ' '); "
        "echo \"Z ${z##*thermal_zone} ${t:-?} $v\"; done; "
        "for f in current_now voltage_now capacity status; do "
        f"v=$(cat {BATTERY}/$f 2>&1 | tr '\\n' ' '); echo \"B $f $v\"; done; "
        f"for c in {CPUS}/cpu[0-9]*; do [ -e \"$c/cpufreq\" ] || continue; "
        "v=$(cat \"$c/cpufreq/scaling_cur_freq\" 2>&1 | tr '\\n' ' '); echo \"F ${c##*cpu} $v\"; done; "
        "echo E; "
        f"i=$((i+1)); [ {n} -gt 0 ] && [ $i -ge {n} ] && break; "
        f"sleep {interval_s:g}; done"
    )


def children_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.5, help="seconds (the default rate)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args(argv)
    scripts = {
        "current": sampler_script(args.interval, None, max_samples=args.samples),
        "old": old_sampler_script(args.interval, args.samples),
    }
    cpu_ms: dict[str, list[float]] = {k: [] for k in scripts}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="swaplab-sampler-cost-") as tmp, \
            AdbLab(Path(tmp) / "lab") as lab:
        vd = lab.virtual_device("snapdragon6")
        dev = lab.client().device(vd.serial)
        for r in range(args.rounds):
            for name in (list(scripts) if r % 2 == 0 else list(scripts)[::-1]):
                before = children_cpu_s()
                out = dev.shell(scripts[name], timeout=args.samples * args.interval + 120)
                time.sleep(0.3)  # the server reaps the shell
                used = children_cpu_s() - before
                n = len(parse_samples(out))
                if n != args.samples:
                    print(f"warning: {name}: {n} samples parsed, {args.samples} expected",
                          file=sys.stderr)
                cpu_ms[name].append(1e3 * used / max(n, 1))
    load_after = os.getloadavg()
    print(f"# virtual device, {os.cpu_count()} host CPUs, load average (1/5/15 min) before "
          f"{load_before[0]:.1f}/{load_before[1]:.1f}/{load_before[2]:.1f}, after "
          f"{load_after[0]:.1f}/{load_after[1]:.1f}/{load_after[2]:.1f}; {args.rounds} "
          f"interleaved rounds of {args.samples} samples every {args.interval:g} s")
    print("sampler   CPU ms/sample median (min-max)   share of one core at this interval")
    for name, xs in cpu_ms.items():
        med = statistics.median(xs)
        print(f"{name:8s}  {med:8.2f} ({min(xs):.2f}-{max(xs):.2f})"
              f"           {med / 1e3 / args.interval:.2%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
