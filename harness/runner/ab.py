"""A/B interleaved runs on one device (suites/test_ab.py, options --ab-runner,
--ab-rounds, --ab-frames): push a baseline swap_runner next to this build's, then run
the two in ABBA order, one short run per arm per round, recording each arm's per-frame
latency (end to end and per stage) with extra["ab"] = {"arm", "round", "build"}
(harness.stats.ab_arms convention).

The baseline is a swap_runner binary or a git ref: for a ref, the ref's runner/ sources
are built with the ref's own runner/build.py into the shared build cache (unchanged
sources are never rebuilt). Either way the model pack and inputs are this checkout's:
A/B compares runner builds."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path

from harness import REPO_ROOT
from harness.modelpack.pack import sha256_file
from harness.runner.invoke import BINARY, RunnerError, check_run, runner_argv
from harness.runner.telemetry import STAGES

AB_BINARY = "bin/swap_runner_ab_baseline"


def resolve_baseline_runner(spec: str, abi: str, *, repo: Path = REPO_ROOT,
                            progress: Callable[[str], None] = print,
                            platform: str | None = None) -> Path:
    """--ab-runner SPEC -> a local swap_runner binary for `abi` (and `platform`, e.g.
    "android" for the static build an Android device runs; None: build.py's default).

    SPEC is a file (used as it is) or a git ref of `repo` (branch, tag, commit): its
    runner/ folder is exported with `git archive` and built by its own build.py."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    try:
        rev = subprocess.run(["git", "rev-parse", "--verify", "--quiet", "--end-of-options",
                              f"{spec}^{{commit}}"], cwd=repo, capture_output=True, text=True,
                             check=False)
    except OSError as e:
        raise RunnerError(f"--ab-runner {spec!r}: not a file, and git cannot run ({e})") from e
    if rev.returncode != 0:
        raise RunnerError(f"--ab-runner {spec!r}: neither a file nor a git ref of {repo}")
    commit = rev.stdout.strip()
    tree = subprocess.run(["git", "archive", "--format=tar", commit, "runner"], cwd=repo,
                          capture_output=True, check=False)
    if tree.returncode != 0:
        raise RunnerError(f"--ab-runner {spec!r} ({commit[:12]}): no runner/ folder "
                          f"({tree.stderr.decode(errors='replace').strip()})")
    progress(f"[swaplab] A/B baseline: building swap_runner of {spec} ({commit[:12]}) for {abi}")
    with tempfile.TemporaryDirectory(prefix="swaplab-ab-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(tree.stdout)) as tar:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 (Debian 12 has 3.11.2)
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)  # our own repository's tree
        argv = ["--abi", abi, *(["--platform", platform] if platform else [])]
        build = subprocess.run([sys.executable, str(Path(tmp) / "runner" / "build.py"), *argv],
                               capture_output=True, text=True, check=False)
    if build.returncode != 0:
        raise RunnerError(f"--ab-runner {spec!r} ({commit[:12]}): building its runner for "
                          f"{abi} failed: {build.stderr.strip()[-800:]}")
    binary = Path(build.stdout.strip().splitlines()[-1]) if build.stdout.strip() else None
    if binary is None or not binary.is_file():
        raise RunnerError(f"--ab-runner {spec!r} ({commit[:12]}): its build.py printed no "
                          f"binary path (stdout: {build.stdout.strip()[-200:]!r})")
    return binary


def push_baseline(prepared, baseline_binary: str | Path) -> dict[str, str]:
    """Put the baseline build on the device next to this one (`./AB_BINARY`, hash-cached
    like every push); returns each arm's build label (file name @ sha256 prefix)."""
    baseline_binary = Path(baseline_binary)
    if not baseline_binary.is_file():
        raise RunnerError(f"--ab-runner {baseline_binary}: no such file")
    prepared.device.sync({AB_BINARY: baseline_binary})
    return {arm: f"{Path(p).name}@{sha256_file(Path(p))[:12]}"
            for arm, p in (("baseline", baseline_binary), ("candidate", prepared.local_binary))}


def run_ab_latency(prepared, baseline_binary: str | Path, recorder, artifacts_dir: Path, *,
                   rounds: int = 10, frames: int = 10, warmup: int | None = None,
                   progress: Callable[[str], None] = print) -> list[dict]:
    """Run `rounds` rounds; returns per round {"round", "order", "median_ms": {arm: ms}}."""
    device = prepared.device
    builds = push_baseline(prepared, baseline_binary)
    warm = prepared.settings.warmup_frames if warmup is None else warmup
    binaries = {"baseline": f"./{AB_BINARY}", "candidate": f"./{BINARY}"}
    out = []
    for i in range(rounds):
        order = ("baseline", "candidate") if i % 2 == 0 else ("candidate", "baseline")
        medians = {}
        for arm in order:
            argv = runner_argv(prepared, frames=frames, warmup=warm)
            argv[0] = binaries[arm]
            r = device.run(argv, timeout_s=prepared.settings.timeout_s, env=prepared.env,
                           cpu_list=None)
            tel, path = check_run(device, argv, r, f"ab-{i:02d}-{arm}", Path(artifacts_dir))
            recorder.artifact("telemetry", path, label=f"ab round {i} {arm}",
                              mode=tel.summary.get("mode"))
            stage_ms = tel.stage_ms()
            ab = {"arm": arm, "round": i, "build": builds[arm]}
            for stage in STAGES:
                recorder.measure(f"latency_{stage}_ms", stage_ms[stage], unit="ms",
                                 check_target=False, ab=ab, variant=f"ab={arm}", stage=stage)
            total = sorted(stage_ms["total"])
            medians[arm] = total[len(total) // 2] if total else None
        progress(f"[swaplab] {device.serial}: A/B round {i + 1}/{rounds}: "
                 + ", ".join(f"{a} {m:.2f} ms" for a, m in medians.items() if m is not None))
        out.append({"round": i, "order": list(order), "median_ms": medians})
    return out
