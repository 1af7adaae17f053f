"""Summary statistics of raw samples. Pure functions, no I/O.

Percentiles interpolate linearly between order statistics (numpy's default, "type 7"),
so p50 of [1, 2] is 1.5.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

PERCENTILES = (50, 90, 95, 99)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """q in [0, 100] of already sorted values (linear interpolation)."""
    if not sorted_values:
        raise ValueError("percentile of no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be in [0, 100], got {q}")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    frac = pos - lo
    return float(sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac)


def summarize(samples: Iterable[float]) -> dict:
    """n, mean, stdev (sample, 0 for n < 2), min, max, p50, p90, p95, p99.

    No samples gives {"n": 0}; non-finite samples raise ValueError.
    """
    values = [float(v) for v in samples]
    for v in values:
        if not math.isfinite(v):
            raise ValueError(f"non-finite sample {v!r}")
    if not values:
        return {"n": 0}
    values.sort()
    n = len(values)
    mean = math.fsum(values) / n
    stdev = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    out = {"n": n, "mean": mean, "stdev": stdev, "min": values[0], "max": values[-1]}
    for q in PERCENTILES:
        out[f"p{q}"] = percentile(values, q)
    return out


def statistic(summary: dict, name: str) -> float | None:
    """A named statistic of a summary (p50, p95, max, mean, ...); None without samples."""
    if summary.get("n", 0) == 0:
        return None
    if name == "median":
        name = "p50"
    if name not in summary:
        raise KeyError(f"unknown statistic {name!r}; known: {', '.join(sorted(summary))}")
    return float(summary[name])


def verdict(value: float | None, target: float, direction: str) -> str:
    """'pass' or 'fail' of a value against a target; 'none' without a value."""
    if value is None:
        return "none"
    if direction == "lower":
        return "pass" if value <= target else "fail"
    if direction == "higher":
        return "pass" if value >= target else "fail"
    raise ValueError(f"direction must be 'lower' or 'higher', got {direction!r}")
