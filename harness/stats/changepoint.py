"""Change-point (step) detection over a history series, asv style.

The series is one value per run (normally the run's median of a metric on one device),
oldest first. We fit a piecewise-constant function minimising

    sum over segments of sum |x_i - median(segment)|  +  penalty * (number of segments)

(the L1 "Potts" problem asv's step detection solves), exactly, by dynamic programming
over a precomputed cost matrix (running medians with two heaps). L1 and medians make single outlier runs cost little, so they do not become
steps of their own. The penalty scales with a robust estimate of the run-to-run noise
(from the median absolute first difference, which a few steps barely move) and log(n), so
a step has to be several noise sigmas high or several runs long to be worth a segment.
Finally, neighbouring segments whose medians differ by less than ``min_rel_step`` are
merged (a 0.3% "step" is not news).
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Sequence

import numpy as np

from .compare import RunNoise

__all__ = ["ChangePoints", "detect_steps", "robust_noise", "run_noise_from_medians"]


@dataclasses.dataclass(frozen=True)
class ChangePoints:
    """indices: positions i where a new segment starts (x[i] is the first value after the
    change); segments: (start, end_exclusive, median) for every segment, in order."""

    indices: list[int]
    segments: list[tuple[int, int, float]]
    penalty: float
    sigma: float

    @property
    def segment_medians(self) -> list[float]:
        return [m for _, _, m in self.segments]

    def steps(self) -> list[dict]:
        """One dict per change: index, before, after, relative change."""
        out = []
        for k, i in enumerate(self.indices):
            before, after = self.segments[k][2], self.segments[k + 1][2]
            rel = (after / before - 1.0) if before else math.nan
            out.append({"index": i, "before": before, "after": after, "change": rel})
        return out


def robust_noise(x: np.ndarray) -> float:
    """Noise sigma of a piecewise-constant series: 1.4826 * MAD of first differences / sqrt 2."""
    x = np.asarray(x, float)
    if x.size < 3:
        return 0.0
    d = np.diff(x)
    mad = float(np.median(np.abs(d - np.median(d))))
    return 1.4826 * mad / math.sqrt(2.0)


def _l1_cost_matrix(x: np.ndarray) -> np.ndarray:
    """C[i, j] = sum |x[i:j] - median(x[i:j])| for all 0 <= i < j <= n (O(n^2 log n)):
    for each start, a running median with two heaps, cost = sum(upper) - sum(lower)
    (- the median when the length is odd)."""
    n = x.size
    C = np.zeros((n + 1, n + 1))
    xs = x.tolist()
    for i in range(n):
        lo: list[float] = []   # max-heap (negated): the smaller half
        hi: list[float] = []   # min-heap: the larger half (holds the extra one)
        s_lo = s_hi = 0.0
        row = C[i]
        for j in range(i, n):
            v = xs[j]
            if hi and v < hi[0]:
                heapq.heappush(lo, -v)
                s_lo += v
            else:
                heapq.heappush(hi, v)
                s_hi += v
            if len(lo) > len(hi):
                u = -heapq.heappop(lo)
                s_lo -= u
                heapq.heappush(hi, u)
                s_hi += u
            elif len(hi) > len(lo) + 1:
                u = heapq.heappop(hi)
                s_hi -= u
                heapq.heappush(lo, -u)
                s_lo += u
            c = s_hi - s_lo
            if len(hi) > len(lo):
                c -= hi[0]
            row[j + 1] = c
    return C


def detect_steps(values: Sequence[float], *, gamma: float = 3.0, min_rel_step: float = 0.01,
                 min_size: int = 2, max_points: int = 500) -> ChangePoints:
    """Find steps in ``values`` (oldest first). Non-finite values are not allowed.

    gamma         penalty multiplier: penalty = gamma * sigma * log(n) (+ a floor so an
                  almost noiseless series does not split on rounding);
    min_rel_step  merge neighbouring segments whose medians differ by less than this
                  (relative to the earlier one);
    min_size      smallest segment length in points (2: one outlier run is never a step
                  of its own, and the newest run needs one more to confirm a step);
    max_points    only the newest max_points values are analysed (O(n^2 log n) time,
                  O(n^2) memory).
    """
    x_all = np.asarray(values, float)
    if not np.all(np.isfinite(x_all)):
        raise ValueError("values must be finite")
    offset = max(0, x_all.size - max_points)
    x = x_all[offset:]
    n = x.size
    if n == 0:
        return ChangePoints([], [], 0.0, 0.0)
    sigma = robust_noise(x)
    scale = float(np.median(np.abs(x))) or 1.0
    sigma_eff = max(sigma, 1e-3 * scale)
    penalty = gamma * sigma_eff * math.log(max(n, 2)) + sigma_eff
    min_size = max(1, int(min_size))

    # optimal partitioning: F[j] = min over i <= j - min_size of F[i] + C(i, j) + penalty
    C = _l1_cost_matrix(x)
    F = np.full(n + 1, np.inf)
    F[0] = -penalty
    last = np.zeros(n + 1, int)
    for j in range(min_size, n + 1):
        cand = F[:j - min_size + 1] + C[:j - min_size + 1, j]
        i = int(np.argmin(cand))
        F[j], last[j] = cand[i] + penalty, i
    bounds = []
    j = n
    while j > 0:
        i = int(last[j])
        bounds.append((i, j))
        j = i
    bounds.reverse()
    segs = [(i, j, float(np.median(x[i:j]))) for i, j in bounds]

    # merge segments whose medians barely differ
    merged = True
    while merged and len(segs) > 1:
        merged = False
        for k in range(len(segs) - 1):
            a, b = segs[k], segs[k + 1]
            ref = abs(a[2]) or 1.0
            if abs(b[2] - a[2]) / ref < min_rel_step:
                i, j = a[0], b[1]
                segs[k:k + 2] = [(i, j, float(np.median(x[i:j])))]
                merged = True
                break
    segs = [(i + offset, j + offset, m) for i, j, m in segs]
    return ChangePoints([s[0] for s in segs[1:]], segs, penalty, sigma)


def run_noise_from_medians(medians: Sequence[float], *, min_runs: int = 5) -> RunNoise | None:
    """Relative sd of a run's median between runs, from a history of run medians (oldest
    first), with the number of runs it rests on. None with fewer than min_runs usable
    values.

    Root mean square of the first differences of the log medians, / sqrt 2: a step in
    the history touches one difference only; outlier runs are tamed by winsorising the
    differences at 5 robust sigmas (MAD) first. Not 3: on a shared host a slow run is not
    a rare outlier but part of the noise (run medians are bimodal there), and clipping it
    at 3 sigmas hid it from the interval (1.7% false alarms across recorded runs, 1.0%
    at 5). (Calibration: more efficient than a MAD of
    a handful of differences, which over- and underestimates wildly with 10 runs.)
    """
    m = np.asarray([v for v in medians if v is not None and np.isfinite(v) and v > 0], float)
    if m.size < min_runs:
        return None
    d = np.diff(np.log(m))
    centre = float(np.median(d))
    mad = float(np.median(np.abs(d - centre)))
    if mad > 0:
        lim = 5.0 * 1.4826 * mad
        d = np.clip(d, centre - lim, centre + lim)
    return RunNoise(math.expm1(math.sqrt(float(np.mean(d ** 2)) / 2.0)), int(m.size))
