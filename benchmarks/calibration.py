#!/usr/bin/env python3
"""Calibrate SwapLab's regression rule against Perfherder, pytest-benchmark and asv.

A benchmark script, not a timed test. For each noise scenario it draws pairs of runs
(baseline, candidate) of per-frame latency samples with realistic phone noise:

* lognormal frame noise with coefficient of variation 2-15%,
* AR(1) autocorrelation between neighbouring frames (caches, DVFS),
* slow thermal drift within a run (a warm-up curve of random height and speed),
* a run-to-run offset (thermal state / background load differs between runs),
* outlier frames (interrupts, GC, page faults) 1.3-3x slower,

multiplies the candidate by (1 + shift) for shift = 0, 2, 5, 10%, and asks every rule
whether it flags a regression. The rate at shift 0 is the false-alarm rate, the others
are detection power. All rules see the same sample pairs. With ``--records`` it also
resamples the lab's own recorded runs (reports/runs/*/record.json): a moving block
bootstrap of a real per-frame series gives baseline and candidate with the real noise,
autocorrelation and outliers.

    nice python benchmarks/calibration.py                 # full table (a few minutes)
    nice python benchmarks/calibration.py --quick         # smoke run (seconds)
    nice python benchmarks/calibration.py --records 'reports/runs/*/record.json'
    nice python benchmarks/calibration.py --no-synthetic --records '/tmp/calib-runs/runs/*/record.json' \
        --records '/tmp/calib-ab/runs/*/record.json'

With several recorded runs of the same test x device x metric, the recorded-runs table
pairs *different* runs (baseline = run i, candidate = run j, history = medians of up to
10 other runs), so it sees the real run-to-run noise; a second table block-resamples
within single runs (within-run noise only, no run-to-run term). Recorded A/B interleaved
runs (suites/test_ab.py; for calibration an A/A run: `--ab-runner HEAD`, the same build in
both arms) give one table per `--ab-rounds` count: rounds drawn from all recorded rounds,
SwapLab's paired rule against the two-sample rules on the pooled arms.

Every synthetic table also has an oracle row: the median change flagged above the 99th
percentile of its own 0% scores. It is told the noise, which no real rule is, so it
shows how much power a rule on the median change can have at exactly 1% false alarms.
(Not for the recorded tables: they pool series of very different noise, and one
threshold over all of them bounds nothing.)

Prints a markdown table (docs/statistics.md publishes it).
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
from scipy.signal import lfilter
from scipy.stats import wilcoxon

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.stats.changepoint import run_noise_from_medians
from harness.stats.compare import DEFAULT_RULE, RuleConfig, compare_interleaved, is_regression
from harness.stats.tool_rules import REFERENCE_RULES

SHIFTS = (0.0, 0.02, 0.05, 0.10)


@dataclasses.dataclass(frozen=True)
class Noise:
    name: str
    cv: float            # frame-to-frame coefficient of variation (lognormal)
    phi: float           # AR(1) coefficient of the log noise
    drift: float         # max height of the thermal warm-up drift within a run (relative)
    run_sd: float        # sd of the run-to-run offset (relative)
    outliers: float      # fraction of outlier frames


SCENARIOS = (
    Noise("quiet: CV 2%", 0.02, 0.3, 0.01, 0.003, 0.005),
    Noise("typical: CV 5%", 0.05, 0.5, 0.02, 0.005, 0.01),
    Noise("noisy: CV 10%", 0.10, 0.6, 0.04, 0.01, 0.02),
    Noise("very noisy: CV 15%", 0.15, 0.7, 0.06, 0.01, 0.03),
    Noise("thermal: CV 5%, runs differ", 0.05, 0.5, 0.08, 0.03, 0.01),
)


def synth_series(rng: np.random.Generator, n: int, nz: Noise, base: float = 50.0,
                 shift: float = 0.0, offset: float | None = None) -> np.ndarray:
    """One run of n per-frame latencies (ms)."""
    sigma = math.sqrt(math.log1p(nz.cv ** 2))
    e = rng.normal(0.0, sigma * math.sqrt(1.0 - nz.phi ** 2), n)
    e[0] = rng.normal(0.0, sigma)
    z = lfilter([1.0], [1.0, -nz.phi], e)     # AR(1), stationary from the first frame
    height = rng.uniform(0.0, nz.drift)
    speed = rng.uniform(0.15, 0.6) * n
    drift = height * (1.0 - np.exp(-np.arange(n) / speed))
    off = rng.normal(0.0, nz.run_sd) if offset is None else offset
    out = np.where(rng.random(n) < nz.outliers, rng.uniform(1.3, 3.0, n), 1.0)
    return base * (1.0 + shift) * np.exp(z + drift + off) * out


def synth_interleaved(rng: np.random.Generator, rounds: int, per_round: int, nz: Noise,
                      shift: float, base: float = 50.0):
    """A/B interleaved: one device session alternating baseline and candidate builds,
    per_round frames each, order alternating per round (ABBA...)."""
    s = synth_series(rng, 2 * rounds * per_round, nz, base)
    b_rounds, c_rounds = [], []
    for r in range(rounds):
        first = s[(2 * r) * per_round:(2 * r + 1) * per_round]
        second = s[(2 * r + 1) * per_round:(2 * r + 2) * per_round]
        a, b = (first, second) if r % 2 == 0 else (second, first)
        b_rounds.append(a)
        c_rounds.append(b * (1.0 + shift))
    return b_rounds, c_rounds


def block_resample(rng: np.random.Generator, x: np.ndarray, n: int, block: int = 10) -> np.ndarray:
    k = math.ceil(n / block)
    starts = rng.integers(0, max(1, x.size - block + 1), size=k)
    idx = (starts[:, None] + np.arange(block)).ravel()[:n]
    return x[np.minimum(idx, x.size - 1)]


def load_recorded(pattern: str, min_n: int = 40) -> list[tuple[str, np.ndarray]]:
    """Per-frame latency series from recorded runs (metrics ending in _ms, lower better).
    Labels are RUN_ID:DEVICE:METRIC (+ ':TEST' when the record names it)."""
    out = []
    for path in sorted(glob.glob(pattern)):
        try:
            rec = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        for m in rec.get("measurements", []):
            s = np.asarray([v for v in m.get("samples", []) if isinstance(v, (int, float))], float)
            if (m.get("direction") == "lower" and str(m.get("metric", "")).endswith("_ms")
                    and "latency" in m.get("metric", "") and s.size >= min_n
                    and np.all(np.isfinite(s)) and np.median(s) > 0):
                label = f"{rec.get('run_id')}:{m.get('device')}:{m['metric']}"
                if m.get("test"):
                    label += f":{m['test']}"
                out.append((label, s))
    return out


def load_recorded_ab(pattern: str) -> dict[str, list[tuple[np.ndarray, np.ndarray]]]:
    """Rounds of recorded A/B interleaved runs (measurements tagged extra["ab"], see
    harness.stats.ab_arms): {DEVICE:METRIC:TEST: [(baseline frames, candidate frames), ...]}
    over all matched runs. A round is the independent unit of an A/B comparison."""
    pools: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    for path in sorted(glob.glob(pattern)):
        try:
            rec = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            continue
        rounds: dict[str, dict[int, dict[str, np.ndarray]]] = {}
        for m in rec.get("measurements", []):
            ab = (m.get("extra") or {}).get("ab") or {}
            metric = str(m.get("metric", ""))
            if (ab.get("arm") not in ("baseline", "candidate") or not isinstance(ab.get("round"), int)
                    or m.get("direction") != "lower" or "latency" not in metric):
                continue
            s = np.asarray([v for v in m.get("samples", []) if isinstance(v, (int, float))], float)
            if s.size >= 3 and np.all(np.isfinite(s)) and np.median(s) > 0:
                key = f"{m.get('device')}:{metric}:{m.get('test')}"
                rounds.setdefault(key, {}).setdefault(ab["round"], {})[ab["arm"]] = s
        for key, by_round in rounds.items():
            pools.setdefault(key, []).extend((arms["baseline"], arms["candidate"])
                                             for _, arms in sorted(by_round.items())
                                             if len(arms) == 2)
    return pools


def pooled(rule):
    """A two-sample rule applied to A/B data: all baseline frames vs all candidate frames."""
    return lambda b, c: rule(np.concatenate(b), np.concatenate(c))


def recorded_ab_draw(pools: dict[str, list[tuple[np.ndarray, np.ndarray]]], rounds: int):
    """draw(rng, shift) for run_scenario: `rounds` rounds of one series, drawn without
    replacement from all its recorded rounds; the arms of a round are swapped at random
    (in an A/A recording they are exchangeable)."""
    keys = sorted(pools)

    def draw(rng, shift):
        pool = pools[keys[rng.integers(len(keys))]]
        b_rounds, c_rounds = [], []
        for i in rng.choice(len(pool), size=rounds, replace=False):
            b, c = pool[i]
            if rng.random() < 0.5:
                b, c = c, b
            b_rounds.append(b)
            c_rounds.append(c * (1.0 + shift))
        return b_rounds, c_rounds, None
    return draw


def wilcoxon_paired_rule(b_rounds, c_rounds, rule: RuleConfig = DEFAULT_RULE) -> bool:
    """The A/B rule before the trimmed mean (an ablation): median of the paired log ratios
    >= threshold and Wilcoxon signed-rank p < alpha."""
    d = np.array([np.log(np.median(c) / np.median(b)) for b, c in zip(b_rounds, c_rounds)])
    if np.all(d == 0) or np.expm1(np.median(d)) < rule.threshold:
        return False
    return bool(wilcoxon(d).pvalue < rule.alpha)


def ab_rules(rounds: int, variants: bool = False) -> dict:
    """SwapLab's paired A/B rule, and the two-sample rules on the pooled arms."""
    rules = {f"**swaplab A/B**, paired over {rounds} rounds":
                 lambda b, c: compare_interleaved(b, c).verdict == "regressed"}
    if variants:
        rules["ablation: Wilcoxon signed-rank instead of the trimmed mean"] = wilcoxon_paired_rule
    rules["swaplab two-run rule on the pooled arms (prior)"] = pooled(
        our_rule(DEFAULT_RULE, history=False))
    rules.update({f"{name} on the pooled arms": pooled(rule)
                  for name, rule in REFERENCE_RULES.items()})
    return rules


def group_runs(recorded: list[tuple[str, np.ndarray]], min_runs: int = 3
               ) -> dict[str, list[np.ndarray]]:
    """Series of the same device x metric x test from different runs, keyed without the
    run id; only keys with at least min_runs runs (a baseline, a candidate, history)."""
    groups: dict[str, list[np.ndarray]] = {}
    for label, x in recorded:
        key = label.split(":", 1)[1] if ":" in label else label
        groups.setdefault(key, []).append(x)
    return {k: v for k, v in groups.items() if len(v) >= min_runs}


HISTORY_RUNS = 10


def our_rule(rule: RuleConfig, history: bool = True, known_sd: bool = False):
    """history=True: the between-run noise comes from the medians of HISTORY_RUNS earlier
    runs of unchanged code, as harness.history.compare.compare_runs does; False: the rule's prior.
    known_sd: use the history's sd as if it were known (normal tails; an ablation)."""
    def f(b, c, h=None):
        # same answer as compare_samples(...).verdict == "regressed" (tested), faster
        noise = run_noise_from_medians(h) if (history and h is not None) else None
        if known_sd and noise is not None:
            noise = noise.sd
        return is_regression(b, c, "lower", rule, run_noise=noise)
    f.wants_history = history
    return f


def median_change_score(b, c) -> float:
    """log(median c / median b); for A/B data (lists of rounds) the paired version, the
    median over rounds of log(median c_i / median b_i)."""
    if isinstance(b, list):
        return float(np.median([np.log(np.median(ci) / np.median(bi)) for bi, ci in zip(b, c)]))
    return float(np.log(np.median(c) / np.median(b)))


ORACLE = ("oracle: median change above its 99th percentile at 0% "
          "(knows the noise; not a usable rule)")


def run_scenario(draw, rules: dict, trials_null: int, trials_alt: int, seed: int,
                 oracle=None) -> dict:
    """draw(rng, shift) -> (base, cand, history medians | None).
    Returns {rule: {shift: rate}}. Rules get (base, cand) or, if they take it, history.

    oracle(base, cand) -> score: flagged when the score exceeds the 99th percentile of
    its scores on the 0% pairs. It is told the null distribution, which no real rule
    is: the most power any rule built on that score can have at exactly 1% false alarms."""
    res = {name: {} for name in rules}
    scores: dict[float, list[float]] = {}
    for si, shift in enumerate(SHIFTS):
        trials = trials_null if shift == 0.0 else trials_alt
        rng = np.random.default_rng([seed, si])
        hits = {name: 0 for name in rules}
        for _ in range(trials):
            b, c, h = draw(rng, shift)
            for name, rule in rules.items():
                hits[name] += bool(rule(b, c, h) if getattr(rule, "wants_history", False)
                                   else rule(b, c))
            if oracle is not None:
                scores.setdefault(shift, []).append(oracle(b, c))
        for name in rules:
            res[name][shift] = hits[name] / trials
    if oracle is not None:
        limit = float(np.quantile(scores[0.0], 0.99))
        res[ORACLE] = {shift: float(np.mean(np.asarray(v) > limit)) for shift, v in scores.items()}
    return res


def fmt_table(title: str, results: dict, trials_null: int, trials_alt: int) -> str:
    lines = [f"**{title}** ({trials_null} pairs at 0%, {trials_alt} per shift)", "",
             "| rule | false alarms (0%) | power 2% | power 5% | power 10% |",
             "|---|---:|---:|---:|---:|"]
    for name, r in results.items():
        cells = [f"{r[s]:.1%}" for s in SHIFTS]
        if r[0.0] > 0.01:
            cells[0] += " !"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="frames per run (default 100)")
    ap.add_argument("--trials-null", type=int, default=1500)
    ap.add_argument("--trials-alt", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="200/100 trials: smoke run")
    ap.add_argument("--seed", type=int, default=6)
    ap.add_argument("--records", action="append",
                    help="glob of recorded runs (record.json) to resample; repeatable; "
                         "'' = none (default: reports/runs/*/record.json). Plain runs feed "
                         "the across-runs and within-run tables, A/B runs the A/B tables")
    ap.add_argument("--no-ab", action="store_true", help="skip the A/B interleaved rows")
    ap.add_argument("--ab-rounds", default="10,20,40",
                    help="rounds per A/B comparison drawn from recorded A/B runs, one table "
                         "each (default 10,20,40)")
    ap.add_argument("--ab-long", default="40",
                    help="rounds of the longer synthetic A/B tables per scenario, one table "
                         "each ('' = none; default 40)")
    ap.add_argument("--variants", action="store_true",
                    help="also show our rule with threshold 2%% and 5%% (design trade-off)")
    ap.add_argument("--no-synthetic", action="store_true",
                    help="skip the synthetic scenarios (recorded runs only)")
    a = ap.parse_args(argv)
    if a.records is None:
        a.records = [str(ROOT / "reports/runs/*/record.json")]
    a.records = [g for g in a.records if g]
    if a.quick:
        a.trials_null, a.trials_alt = 200, 100
    rules = {f"**swaplab**, {HISTORY_RUNS}-run history": our_rule(DEFAULT_RULE),
             f"swaplab, no history (prior {DEFAULT_RULE.run_noise_prior:.1%})":
                 our_rule(DEFAULT_RULE, history=False)}
    if a.variants:
        rules["swaplab, threshold 2%"] = our_rule(DEFAULT_RULE.with_threshold(0.02))
        rules["swaplab, threshold 5%"] = our_rule(DEFAULT_RULE.with_threshold(0.05))
        rules["ablation: frames as independent (block 1)"] = our_rule(
            dataclasses.replace(DEFAULT_RULE, block=1))
        rules["ablation: no between-run noise term"] = our_rule(
            dataclasses.replace(DEFAULT_RULE, run_noise_prior=0.0, run_noise_floor=0.0),
            history=False)
        rules["ablation: history sd taken as known (normal tails)"] = our_rule(
            DEFAULT_RULE, known_sd=True)
    rules.update(REFERENCE_RULES)
    t0 = time.time()
    out = [(f"Frames per run: {a.n}; seed {a.seed}; rule defaults: threshold "
            f"{DEFAULT_RULE.threshold:.0%}, MWU alpha {DEFAULT_RULE.alpha}, "
            f"{DEFAULT_RULE.confidence:.0%} block-bootstrap CI, "
            f"{DEFAULT_RULE.resamples} resamples."),
           ""]
    for k, nz in enumerate(() if a.no_synthetic else SCENARIOS):
        def draw(rng, shift, nz=nz):
            hist = [float(np.median(synth_series(rng, a.n, nz))) for _ in range(HISTORY_RUNS)]
            return (synth_series(rng, a.n, nz), synth_series(rng, a.n, nz, shift=shift), hist)
        res = run_scenario(draw, rules, a.trials_null, a.trials_alt, a.seed * 100 + k,
                           oracle=median_change_score)
        if not a.no_ab:
            per = 10
            rounds = max(8, a.n // per)

            def draw_ab(rng, shift, nz=nz, rounds=rounds, per=per):
                return (*synth_interleaved(rng, rounds, per, nz, shift), None)
            ab = run_scenario(draw_ab, {f"swaplab A/B interleaved ({rounds}x{per} frames/arm)":
                                        lambda b, c: compare_interleaved(b, c).verdict == "regressed"},
                              a.trials_null, a.trials_alt, a.seed * 100 + 50 + k)
            res.update(ab)
        nzdesc = (f"{nz.name}, AR(1) phi {nz.phi}, drift <= {nz.drift:.0%}, run offset sd "
                  f"{nz.run_sd:.1%}, outliers {nz.outliers:.1%}")
        out.append(fmt_table(nzdesc, res, a.trials_null, a.trials_alt))
        out.append("")
        for long_r in ([] if a.no_ab else sorted({int(r) for r in a.ab_long.split(",") if r})):
            def draw_long(rng, shift, nz=nz, long_r=long_r):
                return (*synth_interleaved(rng, long_r, 10, nz, shift), None)
            res = run_scenario(draw_long, ab_rules(long_r, a.variants), a.trials_null,
                               a.trials_alt, a.seed * 100 + 60 + k, oracle=median_change_score)
            out.append(fmt_table(f"{nz.name}: a longer A/B run, {long_r} rounds x 10 frames "
                                 f"per arm; every rule sees the same {long_r * 10} frames per "
                                 "arm", res, a.trials_null, a.trials_alt))
            out.append("")
        print(f"[calibration] {nz.name} done at {time.time() - t0:.0f}s", file=sys.stderr)
    recorded = [x for g in a.records for x in load_recorded(g)]
    groups = group_runs(recorded)
    if groups:
        keys = sorted(groups)
        out.append("Recorded runs, run-to-run spread of the run medians per series "
                   "(sd of log median, i.e. ~relative sd):")
        out.append("")
        for key in keys:
            meds = np.log([np.median(x) for x in groups[key]])
            out.append(f"- `{key}`: {len(groups[key])} runs, median "
                       f"{math.exp(np.median(meds)):.3g} ms, run-to-run sd "
                       f"{np.std(meds, ddof=1):.1%}")
        out.append("")

        def draw_across(rng, shift):
            runs = groups[keys[rng.integers(len(keys))]]
            i, j = rng.choice(len(runs), size=2, replace=False)
            rest = [k for k in range(len(runs)) if k not in (i, j)]
            # oldest first, as the lab's history is (runs load in run-id = time order)
            pick = np.sort(rng.choice(rest, size=min(HISTORY_RUNS, len(rest)), replace=False))
            hist = [float(np.median(runs[k])) for k in pick]
            b, c = runs[i], runs[j]
            if a.n < b.size:
                b = b[:a.n]
            if a.n < c.size:
                c = c[:a.n]
            return b, c * (1.0 + shift), hist
        res = run_scenario(draw_across, rules, a.trials_null, a.trials_alt, a.seed * 100 + 98)
        nruns = sorted({len(v) for v in groups.values()})
        out.append(fmt_table(f"recorded runs, across runs: {len(keys)} series x "
                             f"{'-'.join(map(str, (nruns[0], nruns[-1]))) if len(nruns) > 1 else nruns[0]}"
                             " runs; baseline and candidate are two different real runs, "
                             f"history = medians of up to {HISTORY_RUNS} other runs",
                             res, a.trials_null, a.trials_alt))
        out.append("")
        print(f"[calibration] recorded (across runs) done at {time.time() - t0:.0f}s",
              file=sys.stderr)
    if recorded:
        def draw_rec(rng, shift):
            _, x = recorded[rng.integers(len(recorded))]
            n = min(a.n, x.size)
            hist = [float(np.median(block_resample(rng, x, n))) for _ in range(HISTORY_RUNS)]
            return (block_resample(rng, x, n), block_resample(rng, x, n) * (1.0 + shift), hist)
        res = run_scenario(draw_rec, rules, a.trials_null, a.trials_alt, a.seed * 100 + 99)
        out.append(fmt_table(f"recorded runs, within one run: {len(recorded)} latency series, "
                             "block-resampled (blocks of 10 frames; no run-to-run noise)",
                             res, a.trials_null, a.trials_alt))
        out.append("")
    else:
        out.append("(no recorded runs with >= 40 latency samples found: synthetic only)")
        out.append("")
    ab_pools: dict[str, list] = {}
    for g in a.records:
        for key, rounds in load_recorded_ab(g).items():
            ab_pools.setdefault(key, []).extend(rounds)
    for R in sorted({int(r) for r in a.ab_rounds.split(",") if r}):
        pools = {k: v for k, v in ab_pools.items() if len(v) >= 2 * R}
        if not pools:
            continue
        res = run_scenario(recorded_ab_draw(pools, R), ab_rules(R, a.variants), a.trials_null,
                           a.trials_alt, a.seed * 100 + 97)
        per = int(np.median([b.size for v in pools.values() for b, _ in v]))
        nrounds = sum(len(v) for v in pools.values()) // len(pools)
        out.append(fmt_table(f"recorded A/A interleaved runs, {R} rounds: {len(pools)} series x "
                             f"{nrounds} recorded rounds of {per} frames per arm; each trial "
                             f"draws {R} rounds, the candidate arm times (1 + shift)",
                             res, a.trials_null, a.trials_alt))
        out.append("")
        print(f"[calibration] recorded A/B ({R} rounds) done at {time.time() - t0:.0f}s",
              file=sys.stderr)
    out.append(f"`!` = more than 1% false alarms. Wall time {time.time() - t0:.0f} s.")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
