"""Two-sample comparison of benchmark samples: SwapLab's regression rule.

Pure functions, no I/O (asv style). Input: the raw per-frame samples of one metric from a
baseline run and a candidate run, plus which direction is better. Output: a
:class:`SampleComparison` with the relative median change, a block-bootstrap confidence interval
for it, a Mann-Whitney U p-value, and a verdict: ``improved``, ``regressed``, ``same`` or
``unknown`` with a one-line reason.

Why blocks: per-frame samples of one run are not independent. Caches, DVFS governors and
the slow warm-up of the SoC make neighbouring frames alike (lag-1 autocorrelation 0.3-0.8
on phones) and add a slow drift. Tests and bootstraps that treat the n frames as n
independent draws then believe they know the median n/(effective n) times better than they
do, and flag noise as "significant". SwapLab therefore

* estimates the autocorrelation of each run and picks a block length from it,
* bootstraps the median with a *moving block bootstrap* (whole blocks are resampled, so
  the within-block dependence is kept), and
* runs the Mann-Whitney U test on *block medians* (one value per block, close to
  independent) instead of on the raw frames.

Two more corrections make the interval honest: the bootstrap replicates are stretched by
t(k-1)/z (k = number of blocks: the median is known from k values, not from n), and they
get the *between-run* noise added (``run_noise``: how much a run's median moves between
runs of unchanged code; estimated from history, or a conservative prior), because one pair
of runs cannot see thermal-state or background-load differences between runs.

The verdict then also needs an effect size: a change smaller than ``threshold`` (relative,
default 3%) is never a regression, however significant. See docs/statistics.md for the
calibration that chose the defaults.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _sps
from scipy.stats import mstats as _mstats

from .bootstrap import (
    block_length,
    block_medians,
    bootstrap_median_change,
    clean,
)

__all__ = [
    "DEFAULT_RULE",
    "RuleConfig",
    "RunNoise",
    "SampleComparison",
    "bootstrap_median_change",
    "compare_interleaved",
    "compare_samples",
    "is_regression",
]

IMPROVED = "improved"
REGRESSED = "regressed"
SAME = "same"
UNKNOWN = "unknown"
VERDICTS = (IMPROVED, REGRESSED, SAME, UNKNOWN)


@dataclasses.dataclass(frozen=True)
class RuleConfig:
    """Parameters of the decision rule (defaults chosen by benchmarks/calibration.py).

    threshold      smallest relative change of the median that can be a regression or an
                   improvement (0.03 = 3%). Per metric / profile overrides are resolved by
                   the caller (harness.stats.thresholds.threshold_for).
    alpha          significance level of the Mann-Whitney U test on block medians.
    confidence     level of the bootstrap confidence interval of the median change; the
                   interval must exclude 0 for a non-"same" verdict.
    same_margin    "same" is only claimed when the whole confidence interval lies within
                   +-same_margin (relative); otherwise the verdict is "unknown"
                   (inconclusive, need more samples). None = 2 * threshold.
    min_samples    fewer samples on either side -> "unknown: need more samples".
    min_blocks     fewer blocks on either side -> the MWU cannot reach alpha; "unknown".
    resamples      bootstrap resamples.
    seed           seed of the bootstrap generator (results are reproducible).
    block          fixed block length; None = chosen from the lag-1 autocorrelation.
    run_noise_prior  relative sd of a run's median between runs of unchanged code, used
                   when the caller has no history to estimate it (see ``run_noise`` of
                   :func:`compare_samples`). Conservative on purpose.
    run_noise_floor  lower bound for a history estimate of that noise (a short history
                   can look quieter than the device is).
    """

    threshold: float = 0.03
    alpha: float = 0.01
    confidence: float = 0.99
    same_margin: float | None = None
    min_samples: int = 8
    min_blocks: int = 4
    resamples: int = 2000
    seed: int = 20261123
    block: int | None = None
    run_noise_prior: float = 0.015
    run_noise_floor: float = 0.003

    def with_threshold(self, threshold: float | None) -> RuleConfig:
        if threshold is None:
            return self
        return dataclasses.replace(self, threshold=float(threshold))

    @property
    def margin(self) -> float:
        return self.same_margin if self.same_margin is not None else 2.0 * self.threshold


DEFAULT_RULE = RuleConfig()


@dataclasses.dataclass(frozen=True)
class RunNoise:
    """Between-run noise estimated from a history: relative sd of a run's median and the
    number of runs it was estimated from. A sd from 10 runs is itself uncertain (its
    relative error is ~25%), so a verdict that uses it widens its interval with Student-t
    tails of runs - 1 degrees of freedom instead of normal ones (the predictive
    distribution of a new difference when the sd is estimated)."""

    sd: float
    runs: int

    @property
    def df(self) -> int:
        return max(1, self.runs - 1)


@dataclasses.dataclass(frozen=True)
class SampleComparison:
    """Result of comparing a candidate sample set with a baseline sample set.

    change, ci_low, ci_high: relative change of the median, candidate vs baseline
    (median_cand / median_base - 1; +0.07 = 7% larger), whatever the direction.
    worse_change: the same change signed so that positive is worse (for direction
    "higher" it is -change).
    """

    verdict: str
    reason: str
    direction: str
    n_base: int
    n_cand: int
    median_base: float | None
    median_cand: float | None
    change: float | None
    ci_low: float | None
    ci_high: float | None
    confidence: float
    p_value: float | None
    threshold: float
    block: int | None = None

    @property
    def worse_change(self) -> float | None:
        if self.change is None:
            return None
        return self.change if self.direction == "lower" else -self.change

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["worse_change"] = self.worse_change
        return d

    def describe(self) -> str:
        """One human line: 'regressed: median 45.1 -> 48.3 (+7.1%, 99% CI +5.2%..+9.0%, p=0.0003)'."""
        if self.change is None:
            return f"{self.verdict}: {self.reason}"
        ci = ""
        if self.ci_low is not None and self.ci_high is not None:
            ci = f", {self.confidence:.0%} CI {self.ci_low:+.1%}..{self.ci_high:+.1%}"
        p = f", p={self.p_value:.2g}" if self.p_value is not None else ""
        return (
            f"{self.verdict}: median {_fmt(self.median_base)} -> {_fmt(self.median_cand)} "
            f"({self.change:+.1%}{ci}{p}); {self.reason}"
        )


def _fmt(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x:.4g}"


def compare_samples(base: Sequence[float], cand: Sequence[float], direction: str = "lower",
                    rule: RuleConfig = DEFAULT_RULE, *, threshold: float | None = None,
                    run_noise: float | RunNoise | None = None) -> SampleComparison:
    """Compare candidate samples with baseline samples of one metric.

    direction: "lower" (lower is better, e.g. latency_ms) or "higher" (e.g. fps).
    threshold: overrides rule.threshold (per-metric threshold).
    run_noise: relative sd of a run's median between runs of unchanged code: a
      RunNoise estimated from history (harness.history.store.run_noise_for; its interval gets
      t tails), a float taken as known, or None = rule.run_noise_prior.

    Verdict:
      regressed  the median moved in the worse direction by >= threshold, the bootstrap
                 CI of the change excludes 0, and MWU on block medians gives p < alpha;
      improved   the same in the better direction;
      same       none of that, and the whole CI lies within +-same_margin;
      unknown    too few samples, or inconclusive (CI too wide to say "same").
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', not {direction!r}")
    rule = rule.with_threshold(threshold)
    b_arr, c_arr = clean(base), clean(cand)
    nb, nc = int(b_arr.size), int(c_arr.size)
    common = {"direction": direction, "n_base": nb, "n_cand": nc,
              "confidence": rule.confidence, "threshold": rule.threshold}
    if min(nb, nc) < rule.min_samples:
        which = "baseline" if nb < nc else "candidate"
        return SampleComparison(UNKNOWN, f"need more samples: n={min(nb, nc)} < {rule.min_samples}"
                          f" ({which})", median_base=_med(b_arr), median_cand=_med(c_arr),
                          change=None, ci_low=None, ci_high=None, p_value=None, **common)
    mb, mc = float(np.median(b_arr)), float(np.median(c_arr))
    if mb <= 0.0 or mc < 0.0:
        # relative changes of a metric that is 0 or signed are meaningless; compare raw
        if mb == mc and np.array_equal(np.sort(b_arr), np.sort(c_arr)):
            return SampleComparison(SAME, "identical samples", median_base=mb, median_cand=mc,
                              change=0.0, ci_low=0.0, ci_high=0.0, p_value=1.0, **common)
        return SampleComparison(UNKNOWN, f"baseline median is {mb:g}: relative change undefined",
                          median_base=mb, median_cand=mc, change=None, ci_low=None,
                          ci_high=None, p_value=None, **common)
    blk = rule.block if rule.block is not None else max(block_length(b_arr),
                                                        block_length(c_arr))
    rn, df = _run_noise(rule, run_noise)
    change, lo, hi = bootstrap_median_change(b_arr, c_arr, confidence=rule.confidence,
                                             resamples=rule.resamples, seed=rule.seed,
                                             block=blk, run_noise=rn, run_noise_df=df)
    bm_b, bm_c = block_medians(b_arr, blk), block_medians(c_arr, blk)
    common["block"] = blk
    if min(bm_b.size, bm_c.size) < rule.min_blocks:
        need = rule.min_blocks * blk
        return SampleComparison(UNKNOWN, f"need more samples: {min(bm_b.size, bm_c.size)} blocks of "
                          f"{blk} correlated frames < {rule.min_blocks} (n >= {need})",
                          median_base=mb, median_cand=mc, change=change, ci_low=lo,
                          ci_high=hi, p_value=None, **common)
    if np.array_equal(np.sort(bm_b), np.sort(bm_c)):
        p = 1.0
    else:
        p = float(_sps.mannwhitneyu(bm_c, bm_b, alternative="two-sided").pvalue)
    verdict = decide(change, lo, hi, p, direction, rule)
    thr = rule.threshold
    if verdict in (REGRESSED, IMPROVED):
        reason = (f"{abs(change):.1%} {'worse' if verdict == REGRESSED else 'better'} "
                  f"(>= {thr:.0%}), CI excludes 0, p={p:.2g} < {rule.alpha:g}")
    elif verdict == SAME:
        why = f"not significant (p={p:.2g})" if abs(change) >= thr else f"below {thr:.0%}"
        reason = f"change {change:+.1%} {why}; CI within +-{rule.margin:.0%}"
    else:
        reason = (f"inconclusive: CI {lo:+.1%}..{hi:+.1%} wider than +-{rule.margin:.0%} "
                  f"(p={p:.2g}); need more samples or an A/B interleaved run")
    return SampleComparison(verdict, reason, median_base=mb, median_cand=mc, change=change,
                      ci_low=lo, ci_high=hi, p_value=p, **common)


def decide(change: float, lo: float, hi: float, p: float, direction: str,
           rule: RuleConfig) -> str:
    """The verdict from a relative change, its confidence interval and a p-value:
    regressed / improved need the threshold the worse / better way, an interval that
    excludes 0 and p < alpha; same needs the whole interval within +-margin."""
    sign = 1.0 if direction == "lower" else -1.0
    worse = sign * change
    worse_lo, worse_hi = sorted((sign * lo, sign * hi))
    if worse >= rule.threshold and worse_lo > 0.0 and p < rule.alpha:
        return REGRESSED
    if -worse >= rule.threshold and worse_hi < 0.0 and p < rule.alpha:
        return IMPROVED
    if lo >= -rule.margin and hi <= rule.margin:
        return SAME
    return UNKNOWN


def _run_noise(rule: RuleConfig, run_noise: float | RunNoise | None
               ) -> tuple[float, int | None]:
    """(sd, degrees of freedom or None) of the between-run noise a comparison uses."""
    if run_noise is None:
        return rule.run_noise_prior, None
    if isinstance(run_noise, RunNoise):
        return max(rule.run_noise_floor, run_noise.sd), run_noise.df
    return max(rule.run_noise_floor, float(run_noise)), None


def is_regression(base: Sequence[float], cand: Sequence[float], direction: str = "lower",
                  rule: RuleConfig = DEFAULT_RULE, *, threshold: float | None = None,
                  run_noise: float | RunNoise | None = None) -> bool:
    """Same answer as ``compare_samples(...).verdict == "regressed"``, but cheap checks
    (effect size, MWU on block medians) come first and the bootstrap only runs when they
    pass. For gating many metrics and for the calibration's many trials."""
    rule = rule.with_threshold(threshold)
    b_arr, c_arr = clean(base), clean(cand)
    if min(b_arr.size, c_arr.size) < rule.min_samples:
        return False
    mb, mc = float(np.median(b_arr)), float(np.median(c_arr))
    if mb <= 0.0 or mc < 0.0:
        return False
    sign = 1.0 if direction == "lower" else -1.0
    if sign * (mc / mb - 1.0) < rule.threshold:
        return False
    blk = rule.block if rule.block is not None else max(block_length(b_arr),
                                                        block_length(c_arr))
    bm_b, bm_c = block_medians(b_arr, blk), block_medians(c_arr, blk)
    if min(bm_b.size, bm_c.size) < rule.min_blocks or np.array_equal(np.sort(bm_b),
                                                                     np.sort(bm_c)):
        return False
    if not _sps.mannwhitneyu(bm_c, bm_b, alternative="two-sided").pvalue < rule.alpha:
        return False
    return compare_samples(b_arr, c_arr, direction, rule,
                           run_noise=run_noise).verdict == REGRESSED


def _med(a: np.ndarray) -> float | None:
    return float(np.median(a)) if a.size else None


#: share of rounds trimmed from each end for the A/B paired statistic
AB_TRIM = 0.2


def compare_interleaved(base_rounds: Sequence[Sequence[float]],
                        cand_rounds: Sequence[Sequence[float]], direction: str = "lower",
                        rule: RuleConfig = DEFAULT_RULE, *, threshold: float | None = None
                        ) -> SampleComparison:
    """A/B interleaved comparison: round i ran the baseline build then the candidate build
    (or the other way round) on the same device, back to back.

    Drift and thermal state are shared within a round, so the paired statistic
    d_i = log(median(cand_i) / median(base_i)) cancels them. What remains is heavy-tailed:
    most rounds agree closely, but a round whose two processes met different interference
    (another tenant, a core migration, a DVFS step) differs by 20-40%. So the change is
    the 20% trimmed mean of the d_i, and test and interval are the Tukey-McLaughlin
    trimmed-mean t (winsorised standard error, n - 2g - 1 degrees of freedom): on the
    lab's recorded A/A runs it keeps false alarms lower than the Wilcoxon signed-rank test
    and detects more (docs/statistics.md). Needs min_blocks rounds, and 8 at least (a
    round is the independent unit).
    """
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', not {direction!r}")
    rule = rule.with_threshold(threshold)
    if len(base_rounds) != len(cand_rounds):
        raise ValueError("base_rounds and cand_rounds must have the same number of rounds")
    pairs = [(clean(b), clean(c)) for b, c in zip(base_rounds, cand_rounds)]
    pairs = [(b, c) for b, c in pairs if b.size and c.size]
    allb = np.concatenate([b for b, _ in pairs]) if pairs else np.array([])
    allc = np.concatenate([c for _, c in pairs]) if pairs else np.array([])
    common = {"direction": direction, "n_base": int(allb.size), "n_cand": int(allc.size),
              "confidence": rule.confidence, "threshold": rule.threshold, "block": None}
    mb, mc = _med(allb), _med(allc)
    need = max(rule.min_blocks, 8)
    if len(pairs) < need:
        return SampleComparison(UNKNOWN, f"need more rounds: {len(pairs)} < {need}",
                          median_base=mb, median_cand=mc, change=None, ci_low=None,
                          ci_high=None, p_value=None, **common)
    if any(np.median(b) <= 0 or np.median(c) <= 0 for b, c in pairs):
        return SampleComparison(UNKNOWN, "non-positive medians: relative change undefined",
                          median_base=mb, median_cand=mc, change=None, ci_low=None,
                          ci_high=None, p_value=None, **common)
    d = np.array([math.log(np.median(c) / np.median(b)) for b, c in pairs])
    point = float(_sps.trim_mean(d, AB_TRIM))
    se = float(_mstats.trimmed_stde(d, limits=(AB_TRIM, AB_TRIM)))
    df = d.size - 2 * int(AB_TRIM * d.size) - 1
    tail = (1.0 - rule.confidence) / 2.0
    if se > 0.0:
        p = float(2.0 * _sps.t.sf(abs(point) / se, df))
        half = float(_sps.t.ppf(1.0 - tail, df)) * se
    else:
        p, half = (1.0 if point == 0.0 else 0.0), 0.0
    lo, hi = point - half, point + half
    change, lo, hi = math.expm1(point), math.expm1(lo), math.expm1(hi)
    verdict = decide(change, lo, hi, p, direction, rule)
    if verdict in (REGRESSED, IMPROVED):
        reason = (f"paired: {abs(change):.1%} {'worse' if verdict == REGRESSED else 'better'} "
                  f"over {d.size} rounds (trimmed mean), p={p:.2g}")
    elif verdict == SAME:
        reason = f"paired: change {change:+.1%}, CI within +-{rule.margin:.0%}"
    else:
        reason = (f"inconclusive: CI {lo:+.1%}..{hi:+.1%} over {d.size} rounds; "
                  "need more rounds")
    return SampleComparison(verdict, reason, median_base=mb, median_cand=mc, change=change,
                      ci_low=lo, ci_high=hi, p_value=p, **common)
