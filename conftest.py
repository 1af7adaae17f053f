"""What the suites share. The SwapLab plugin (harness.plugin, loaded through its pytest11
entry point) provides the fixtures: device, profile, swap_runner, swap, recorder, lab."""

from __future__ import annotations

import pytest

from harness.runner.telemetry import STAGES


@pytest.fixture
def record_latency(recorder):
    """Record a run's end-to-end and per-stage frame times (measured frames only).

    The end-to-end metric is `latency_total_ms`, stages are `latency_<stage>_ms`;
    targets apply only when `check_target` (the profile's own mode)."""

    def _record(run, variant: str, check_target: bool = True):
        stage_ms = run.stage_ms
        total = recorder.measure("latency_total_ms", stage_ms["total"], unit="ms",
                                 direction="lower", check_target=check_target,
                                 variant=variant, stage="total",
                                 warmup_frames=len(run.telemetry.warmup))
        for stage in STAGES:
            if stage == "total":
                continue
            recorder.measure(f"latency_{stage}_ms", stage_ms[stage], unit="ms",
                             direction="lower", check_target=check_target,
                             variant=variant, stage=stage)
        return total

    return _record
