"""A/B interleaved runs on one device (suites/test_ab.py, options --ab-runner,
--ab-rounds, --ab-frames): push a baseline swap_runner next to this build's, then run
the two in ABBA order, one short run per arm per round, recording each arm's per-frame
latency with extra["ab"] = {"arm", "round", "build"} (harness.stats.ab convention)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from harness.runner import BINARY, RunnerError, describe_exit, runner_argv
from harness.telemetry import parse_telemetry

AB_BINARY = "bin/swap_runner_ab_baseline"


def _sha(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]


def run_ab_latency(prepared, baseline_binary: str | Path, recorder, artifacts_dir: Path, *,
                   rounds: int = 10, frames: int = 10, warmup: int | None = None,
                   progress: Callable[[str], None] = print) -> list[dict]:
    """Run `rounds` rounds; returns per round {"round", "order", "median_ms": {arm: ms}}."""
    baseline_binary = Path(baseline_binary)
    if not baseline_binary.is_file():
        raise RunnerError(f"--ab-runner {baseline_binary}: no such file")
    device = prepared.device
    device.sync({AB_BINARY: baseline_binary})
    builds = {"baseline": f"{baseline_binary.name}@{_sha(baseline_binary)}",
              "candidate": f"{Path(prepared.local_binary).name}@{_sha(prepared.local_binary)}"}
    warm = prepared.settings.warmup_frames if warmup is None else warmup
    out = []
    for i in range(rounds):
        order = ("baseline", "candidate") if i % 2 == 0 else ("candidate", "baseline")
        medians = {}
        for arm in order:
            argv = runner_argv(prepared, frames=frames, warmup=warm)
            if arm == "baseline":
                argv[0] = f"./{AB_BINARY}"
            assert argv[0] in (f"./{BINARY}", f"./{AB_BINARY}")
            r = device.run(argv, timeout_s=prepared.settings.timeout_s, env=prepared.env,
                           cpu_list=None)
            name = f"ab-{i:02d}-{arm}.telemetry.jsonl"
            path = Path(artifacts_dir) / name
            path.write_text(r.stdout, encoding="utf-8")
            if r.exit_code != 0 or r.timed_out:
                raise RunnerError(f"{device.serial}: {arm} runner "
                                  f"{'timed out' if r.timed_out else describe_exit(r.exit_code)}"
                                  f": {r.stderr.strip()[-300:]} [argv: {' '.join(argv)}]")
            tel = parse_telemetry(r.stdout, source=f"{device.serial}:{name}")
            recorder.artifact("telemetry", path, label=f"ab round {i} {arm}",
                              mode=tel.summary.get("mode"))
            total = tel.stage_ms()["total"]
            ab = {"arm": arm, "round": i, "build": builds[arm]}
            recorder.measure("latency_total_ms", total, check_target=False, ab=ab,
                             variant=f"ab={arm}", stage="total")
            medians[arm] = sorted(total)[len(total) // 2] if total else None
        progress(f"[swaplab] {device.serial}: A/B round {i + 1}/{rounds}: "
                 + ", ".join(f"{a} {m:.2f} ms" for a, m in medians.items() if m is not None))
        out.append({"round": i, "order": list(order), "median_ms": medians})
    return out
