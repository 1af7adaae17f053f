"""The regression rules of three well-known tools, for side-by-side calibration.

Each function takes the raw samples of a baseline and a candidate, "lower is better", and
returns True when that tool would flag the candidate as a *regression*. They follow the
published rules, applied to the same per-frame samples SwapLab's rule sees:

* Perfherder (Mozilla Treeherder): Welch t statistic of the means
  ``t = (mean_c - mean_b) / sqrt(var_b/n_b + var_c/n_c)`` with ``|t| > 7`` and a change of
  the mean of at least 2%.
* pytest-benchmark ``--benchmark-compare-fail=median:5%``: the candidate median is more
  than 5% above the baseline median. No statistics.
* asv (airspeed velocity) ``asv compare --factor 1.1``: the candidate value (median) is
  more than 1.1 times the baseline and, when raw samples are available, the Mann-Whitney U
  test says the samples differ with ``p < 0.002``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _sps

__all__ = [
    "REFERENCE_RULES",
    "asv_regressed",
    "perfherder_regressed",
    "pytest_benchmark_regressed",
]


def _arr(x: Sequence[float]) -> np.ndarray:
    a = np.asarray(x, float)
    return a[np.isfinite(a)]


def perfherder_regressed(base: Sequence[float], cand: Sequence[float], *,
                         t_threshold: float = 7.0, min_change: float = 0.02) -> bool:
    b, c = _arr(base), _arr(cand)
    if b.size < 2 or c.size < 2:
        return False
    mb, mc = b.mean(), c.mean()
    delta = mc - mb
    if delta == 0 or mb == 0:
        return False
    vb, vc = b.var(ddof=1), c.var(ddof=1)
    t = math.inf if vb == 0 and vc == 0 else delta / math.sqrt(vb / b.size + vc / c.size)
    return bool(t > t_threshold and delta / mb >= min_change)


def pytest_benchmark_regressed(base: Sequence[float], cand: Sequence[float], *,
                               percent: float = 5.0) -> bool:
    b, c = _arr(base), _arr(cand)
    if b.size == 0 or c.size == 0:
        return False
    mb, mc = float(np.median(b)), float(np.median(c))
    if mb == 0:
        return False
    return bool((mc - mb) / mb * 100.0 > percent)


def asv_regressed(base: Sequence[float], cand: Sequence[float], *, factor: float = 1.1,
                  p_threshold: float = 0.002) -> bool:
    b, c = _arr(base), _arr(cand)
    if b.size == 0 or c.size == 0:
        return False
    mb, mc = float(np.median(b)), float(np.median(c))
    if b.size > 1 and c.size > 1:
        p = _sps.mannwhitneyu(b, c, alternative="two-sided").pvalue
        if not p < p_threshold:
            return False
    return bool(mc > mb * factor)


REFERENCE_RULES = {
    "perfherder (|t|>7, >=2%)": perfherder_regressed,
    "pytest-benchmark (median:5%)": pytest_benchmark_regressed,
    "asv (factor 1.1, MWU p<0.002)": asv_regressed,
}
