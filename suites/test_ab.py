"""A/B interleaved latency: a baseline runner build (`--ab-runner PATH|GITREF`) and this
build alternate on the same device in rounds (ABBA order), so drift, thermal state and
background load hit both arms alike (FAI-PEP runs treatment and control this way).

Every measurement carries extra["ab"] = {"arm": "baseline"|"candidate", "round": i,
"build": ...}; at session end harness.history.compare compares the arms round by round
(harness.stats.ab_arms.compare_ab_measurements: Wilcoxon signed-rank over rounds + bootstrap
CI of the median ratio) and a regression fails the run. Skipped without --ab-runner.
"""

import pytest

from harness.runner.ab import resolve_baseline_runner, run_ab_latency


def test_ab_latency(request, swap_runner, recorder, artifacts_dir, lab):
    opt = request.config.getoption("ab_runner", None)
    if not opt:
        pytest.skip("A/B mode needs --ab-runner PATH|GITREF (a baseline swap_runner build)")
    device = swap_runner.device  # Android devices compare Android builds (static, as pushed)
    baseline = resolve_baseline_runner(
        opt, device.abi, progress=lab.progress,
        platform="android" if device.platform == "android" else None)
    n = request.config.getoption("ab_rounds") or swap_runner.settings.ab_rounds
    rounds = run_ab_latency(swap_runner, baseline, recorder, artifacts_dir, rounds=n,
                            frames=request.config.getoption("ab_frames"),
                            progress=lab.progress)
    assert len(rounds) == n
