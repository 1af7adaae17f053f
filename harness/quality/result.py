"""One score of a swapped frame: value, threshold, pass/fail and the evidence
(shared by every family of scores in harness.quality)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any


@dataclasses.dataclass
class Score:
    name: str            # colour, seam, pose, background_ssim, background_psnr, identity
    metric: str          # record metric name (unit suffix where it has one)
    unit: str
    direction: str       # "lower" or "higher" is better
    value: float | None  # None: could not be scored (see detail["reason"])
    threshold: float | None
    passed: bool | None  # None: not scored
    detail: dict[str, Any] = dataclasses.field(default_factory=dict)

    def message(self) -> str:
        if self.value is None:
            return f"{self.metric}: not scored ({self.detail.get('reason', 'unknown')})"
        op = "<=" if self.direction == "lower" else ">="
        verdict = "pass" if self.passed else "FAIL"
        return (f"{self.metric} = {self.value:.4g} {self.unit}".rstrip()
                + f" (threshold {op} {self.threshold:g}): {verdict}")


def _score(name, metric, unit, direction, value, threshold, detail=None) -> Score:
    detail = dict(detail or {})
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return Score(name, metric, unit, direction, None, threshold, None, detail)
    value = float(value)
    passed = value <= threshold if direction == "lower" else value >= threshold
    return Score(name, metric, unit, direction, value, threshold, bool(passed), detail)
