"""The moving block bootstrap of a median change, and the block length it rests on.

Per-frame samples of one run are not independent (caches, DVFS, warm-up): whole blocks are
resampled so the within-block dependence is kept; see harness.stats.compare. Pure, no I/O.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _sps

__all__ = ["block_length", "block_medians", "bootstrap_median_change", "clean",
           "lag1_autocorrelation"]


def clean(samples: Sequence[float] | np.ndarray) -> np.ndarray:
    a = np.asarray(list(samples) if not isinstance(samples, np.ndarray) else samples, float)
    return a[np.isfinite(a)]


def lag1_autocorrelation(x: np.ndarray) -> float:
    """Lag-1 autocorrelation of a series (robust-ish: ranks, so outliers do not dominate)."""
    x = np.asarray(x, float)
    if x.size < 4:
        return 0.0
    r = _sps.rankdata(x)
    r = r - r.mean()
    den = float(np.dot(r, r))
    if den == 0.0:
        return 0.0
    return float(np.dot(r[:-1], r[1:]) / den)


def block_length(x: np.ndarray, max_fraction: float = 0.125) -> int:
    """Block length for the block bootstrap / block medians of one series.

    From the lag-1 autocorrelation rho (of ranks): an AR(1)-like series has an integrated
    autocorrelation time tau = (1 + rho) / (1 - rho); blocks of ~2 tau keep most of the
    dependence inside a block. Slow drift raises rho and so the block length, which
    widens the interval, as it should. Capped so that at least 1/max_fraction blocks remain.
    """
    n = int(np.asarray(x).size)
    if n < 2:
        return 1
    rho = min(max(lag1_autocorrelation(x), 0.0), 0.95)
    tau = (1.0 + rho) / (1.0 - rho)
    b = math.ceil(2.0 * tau) if rho > 0.05 else 1
    cap = max(1, int(n * max_fraction))
    return max(1, min(b, cap))


def block_medians(x: np.ndarray, b: int) -> np.ndarray:
    """Medians of consecutive non-overlapping blocks of length b (a short last block is
    merged into the previous one)."""
    x = np.asarray(x, float)
    n = x.size
    if b <= 1 or n < 2 * b:
        return x.copy() if b <= 1 else np.array([np.median(x)])
    k = n // b
    out = [np.median(x[i * b:(i + 1) * b]) for i in range(k - 1)]
    out.append(np.median(x[(k - 1) * b:]))
    return np.asarray(out)


def _block_boot_medians(x: np.ndarray, b: int, resamples: int, rng: np.random.Generator
                        ) -> np.ndarray:
    """Moving-block-bootstrap replicates of the median of x (vectorised, batched)."""
    n = x.size
    b = max(1, min(b, n))
    k = math.ceil(n / b)
    offs = np.arange(b, dtype=np.int32)
    out = np.empty(resamples)
    batch = max(1, min(resamples, 4_000_000 // max(1, k * b)))
    for lo in range(0, resamples, batch):
        hi = min(resamples, lo + batch)
        starts = rng.integers(0, n - b + 1, size=(hi - lo, k), dtype=np.int32)
        if b == 1:
            idx = starts
        else:
            idx = (starts[:, :, None] + offs).reshape(hi - lo, k * b)[:, :n]
        out[lo:hi] = _row_medians(x[idx])
    return out


def _row_medians(a: np.ndarray) -> np.ndarray:
    """Median of each row (same as np.median(a, axis=1), one partition pass)."""
    n = a.shape[1]
    h = n // 2
    if n % 2:
        return np.partition(a, h, axis=1)[:, h]
    p = np.partition(a, (h - 1, h), axis=1)
    return 0.5 * (p[:, h - 1] + p[:, h])


def bootstrap_median_change(base: Sequence[float], cand: Sequence[float], *,
                            confidence: float = 0.99, resamples: int = 2000,
                            seed: int = 0, block: int | None = None,
                            run_noise: float = 0.0, run_noise_df: int | None = None
                            ) -> tuple[float, float, float]:
    """(point, low, high): relative change of the median cand vs base and its percentile
    confidence interval from a moving block bootstrap of each side (independently).

    block None -> chosen per side with :func:`block_length`; 1 = the ordinary bootstrap.
    run_noise: relative sd of one run's median across runs of unchanged code (what the
    history shows). One pair of runs cannot see run-to-run differences (thermal state,
    background load), so the log-ratio replicates get extra Gaussian noise to bring
    their variance up to at least 2 * run_noise**2 (the variance of the difference of two
    run medians). 0 = within-run noise only. run_noise_df: the noise was estimated with
    that many degrees of freedom, so the extra noise has Student-t tails (None = known).
    """
    b_arr, c_arr = clean(base), clean(cand)
    if b_arr.size == 0 or c_arr.size == 0:
        raise ValueError("both sample sets must hold finite values")
    mb, mc = float(np.median(b_arr)), float(np.median(c_arr))
    if mb == 0.0:
        raise ValueError("baseline median is 0: relative change undefined")
    rng = np.random.default_rng(seed)
    bb = block if block is not None else block_length(b_arr)
    bc = block if block is not None else block_length(c_arr)
    rb = _block_boot_medians(b_arr, bb, resamples, rng)
    rc = _block_boot_medians(c_arr, bc, resamples, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        lr = np.log(rc / rb)
    lr = lr[np.isfinite(lr)]
    tail = (1.0 - confidence) / 2.0
    # Small-sample correction: percentiles of a bootstrap act like normal quantiles, but
    # the median is known from only k independent blocks. Stretch the replicates about
    # their centre by t_{k-1} / z at the interval's tail (k = fewer blocks of the two).
    k = min(math.ceil(b_arr.size / bb), math.ceil(c_arr.size / bc))
    if k >= 2 and lr.size > 1:
        stretch = float(_sps.t.ppf(1.0 - tail, k - 1) / _sps.norm.ppf(1.0 - tail))
        centre = float(np.median(lr))
        lr = centre + (lr - centre) * stretch
    if run_noise and lr.size > 1:
        extra2 = 2.0 * math.log1p(run_noise) ** 2 - float(lr.var())
        if extra2 > 0:
            draw = (rng.standard_t(run_noise_df, lr.size) if run_noise_df
                    else rng.normal(0.0, 1.0, lr.size))
            lr = lr + math.sqrt(extra2) * draw
    lo, hi = np.quantile(lr, [tail, 1.0 - tail])
    return mc / mb - 1.0, math.expm1(float(lo)), math.expm1(float(hi))
