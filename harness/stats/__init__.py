"""SwapLab statistics: pure algorithms, no I/O (asv style).

- :mod:`harness.stats.compare`     two-sample regression rule (block bootstrap + MWU)
- :mod:`harness.stats.changepoint` step detection over a run history
- :mod:`harness.stats.tool_rules`   Perfherder / pytest-benchmark / asv rules (calibration)
- :mod:`harness.stats.gate`        CI gating: verdict rows + target verdicts -> lines, exit
- :mod:`harness.stats.ab_arms`          A/B interleaved measurements of one record -> verdict rows
"""

from .changepoint import ChangePoints, detect_steps
from .compare import (
    DEFAULT_RULE,
    IMPROVED,
    REGRESSED,
    SAME,
    UNKNOWN,
    RuleConfig,
    RunNoise,
    SampleComparison,
    bootstrap_median_change,
    compare_interleaved,
    compare_samples,
)
from .gate import GateResult, gate

__all__ = [
    "DEFAULT_RULE",
    "IMPROVED",
    "REGRESSED",
    "SAME",
    "UNKNOWN",
    "ChangePoints",
    "GateResult",
    "RuleConfig",
    "RunNoise",
    "SampleComparison",
    "bootstrap_median_change",
    "compare_interleaved",
    "compare_samples",
    "detect_steps",
    "gate",
]
