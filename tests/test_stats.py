"""harness.stats: regression rule, bootstrap CI, change points, reference rules, gating."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from harness.stats import (
    DEFAULT_RULE,
    RuleConfig,
    bootstrap_median_change,
    compare_interleaved,
    compare_samples,
    detect_steps,
    gate,
)
from harness.stats.bootstrap import block_length, block_medians
from harness.stats.changepoint import robust_noise, run_noise_from_medians
from harness.stats.compare import RunNoise, is_regression
from harness.stats.gate import VerdictRow
from harness.stats.tool_rules import asv_regressed, perfherder_regressed, pytest_benchmark_regressed


def lognormal(seed: int, n: int, median: float = 50.0, cv: float = 0.05) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return median * rng.lognormal(0.0, cv, n)


def ar1(seed: int, n: int, phi: float, sd: float = 0.05, median: float = 50.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.empty(n)
    z[0] = rng.normal(0, sd)
    e = rng.normal(0, sd * np.sqrt(1 - phi ** 2), n)
    for t in range(1, n):
        z[t] = phi * z[t - 1] + e[t]
    return median * np.exp(z)


# ----------------------------------------------------------------- verdicts

def test_clear_regression_is_detected():
    c = compare_samples(lognormal(1, 100), lognormal(2, 100, median=55.0), "lower")
    assert c.verdict == "regressed", c.describe()
    assert 0.07 < c.change < 0.13
    assert c.ci_low > 0 and c.p_value < DEFAULT_RULE.alpha
    assert "worse" in c.reason
    assert c.worse_change == pytest.approx(c.change)


def test_clear_improvement_is_detected():
    c = compare_samples(lognormal(1, 100), lognormal(2, 100, median=45.0), "lower")
    assert c.verdict == "improved", c.describe()
    assert c.change < 0


def test_identical_distributions_are_same():
    c = compare_samples(lognormal(3, 200, cv=0.02), lognormal(4, 200, cv=0.02), "lower",
                        run_noise=0.0)
    assert c.verdict == "same", c.describe()
    assert c.ci_low < 0 < c.ci_high or abs(c.change) < DEFAULT_RULE.threshold
    x = lognormal(5, 50)
    assert compare_samples(x, x.copy()).verdict == "same"


def test_small_n_is_unknown_with_reason():
    c = compare_samples([10.0, 11.0, 10.5], lognormal(1, 100, median=10.0))
    assert c.verdict == "unknown"
    assert c.reason.startswith("need more samples: n=3 < 8")
    assert c.change is None


def test_non_finite_samples_are_dropped():
    base = list(lognormal(6, 20)) + [float("nan"), float("inf")]
    c = compare_samples(base, lognormal(7, 20))
    assert c.n_base == 20


def test_wide_interval_is_unknown_not_same():
    # 12% CV, 20 samples: a 0% change cannot be told from a +-6% one
    c = compare_samples(lognormal(8, 20, cv=0.12), lognormal(9, 20, cv=0.12))
    assert c.verdict in ("unknown", "same")
    if c.verdict == "unknown":
        assert "inconclusive" in c.reason


def test_direction_higher_is_better():
    fps_b = lognormal(10, 100, median=30.0)
    fps_drop = lognormal(11, 100, median=27.0)
    fps_gain = lognormal(12, 100, median=33.0)
    assert compare_samples(fps_b, fps_drop, "higher").verdict == "regressed"
    assert compare_samples(fps_b, fps_gain, "higher").verdict == "improved"
    # the same drop is an improvement when lower is better
    assert compare_samples(fps_b, fps_drop, "lower").verdict == "improved"
    with pytest.raises(ValueError):
        compare_samples(fps_b, fps_drop, "sideways")


def test_effect_size_threshold():
    # 2% shift with tiny noise: significant, but below the 3% threshold -> not regressed
    b, c = lognormal(13, 200, cv=0.005), lognormal(14, 200, cv=0.005, median=51.0)
    r = compare_samples(b, c, run_noise=0.0)
    assert r.verdict == "same" and "below 3%" in r.reason
    assert compare_samples(b, c, threshold=0.01, run_noise=0.0).verdict == "regressed"


def test_between_run_noise_widens_interval():
    b, c = lognormal(15, 100, cv=0.02), lognormal(16, 100, cv=0.02, median=52.0)
    narrow = compare_samples(b, c, run_noise=0.0)
    wide = compare_samples(b, c, run_noise=0.03)
    assert (wide.ci_high - wide.ci_low) > 2 * (narrow.ci_high - narrow.ci_low)
    assert narrow.verdict == "regressed" and wide.verdict != "regressed"


def test_estimated_run_noise_gets_t_tails():
    # the same sd, once known and once estimated from 6 runs: the estimate's own
    # uncertainty widens the interval (t with 5 df vs normal at 99%: ~1.55x)
    b, c = lognormal(15, 100, cv=0.02), lognormal(16, 100, cv=0.02, median=52.0)
    known = compare_samples(b, c, run_noise=0.03)
    estimated = compare_samples(b, c, run_noise=RunNoise(0.03, runs=6))
    many = compare_samples(b, c, run_noise=RunNoise(0.03, runs=200))
    def width(r):
        return r.ci_high - r.ci_low
    assert width(estimated) > 1.3 * width(known)
    assert width(many) == pytest.approx(width(known), rel=0.1)


def test_is_regression_matches_compare_samples():
    rng = np.random.default_rng(17)
    for k in range(12):
        shift = [0.0, 0.03, 0.05, 0.1][k % 4]
        b = ar1(100 + k, 100, phi=0.5, sd=rng.uniform(0.02, 0.12))
        c = ar1(200 + k, 100, phi=0.5, sd=0.05) * (1 + shift)
        for d in ("lower", "higher"):
            for noise in (None, 0.005):
                assert is_regression(b, c, d, run_noise=noise) == (
                    compare_samples(b, c, d, run_noise=noise).verdict == "regressed")


def test_results_are_reproducible():
    b, c = lognormal(18, 100), lognormal(19, 100, median=52.0)
    assert compare_samples(b, c) == compare_samples(b, c)


# ----------------------------------------------------------------- bootstrap / blocks

@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bootstrap_ci_contains_true_shift(seed):
    rng = np.random.default_rng(seed)
    base = 100 + rng.normal(0, 3, 400)
    cand = 105 + rng.normal(0, 3, 400)          # true median change: +5%
    point, lo, hi = bootstrap_median_change(base, cand, confidence=0.99, seed=seed, block=1)
    assert lo < 0.05 < hi
    assert abs(point - 0.05) < 0.01
    assert hi - lo < 0.02


def test_block_length_follows_autocorrelation():
    iid = lognormal(20, 200)
    corr = ar1(21, 200, phi=0.8)
    assert block_length(iid) <= 2
    assert block_length(corr) >= 6
    assert block_length(corr) <= 200 // 8
    bm = block_medians(np.arange(25.0), 10)
    assert list(bm) == [4.5, 17.0]


def test_autocorrelated_runs_get_wider_interval_than_iid_bootstrap():
    b, c = ar1(22, 200, phi=0.8), ar1(23, 200, phi=0.8)
    _, lo_blk, hi_blk = bootstrap_median_change(b, c, seed=1)
    _, lo_iid, hi_iid = bootstrap_median_change(b, c, seed=1, block=1)
    assert (hi_blk - lo_blk) > 1.5 * (hi_iid - lo_iid)


def test_interleaved_ab_cancels_drift():
    rng = np.random.default_rng(24)
    rounds, per = 12, 10
    drift = np.linspace(0, 0.15, 2 * rounds * per)          # 15% thermal drift
    s = 50 * np.exp(drift + rng.normal(0, 0.02, drift.size))
    base = [s[(2 * r) * per:(2 * r + 1) * per] for r in range(rounds)]
    cand = [s[(2 * r + 1) * per:(2 * r + 2) * per] for r in range(rounds)]
    # no code change: the drift alone makes each candidate block ~0.6% slower
    assert compare_interleaved(base, cand).verdict == "same"
    slower = [c * 1.08 for c in cand]
    r = compare_interleaved(base, slower)
    assert r.verdict == "regressed" and 0.06 < r.change < 0.10
    short = compare_interleaved(base[:3], cand[:3])
    assert short.verdict == "unknown" and "need more rounds" in short.reason


def test_interleaved_ab_is_robust_to_wild_rounds():
    # 20 rounds; in 6 of them one arm's process met interference and ran 35% slower (the
    # bimodal noise of a shared host). The trimmed mean looks past them.
    rng = np.random.default_rng(26)

    def session(shift):
        base, cand = [], []
        for r in range(20):
            b = 10 * np.exp(rng.normal(0, 0.03, 10))
            c = 10 * (1 + shift) * np.exp(rng.normal(0, 0.03, 10))
            if r % 10 in (1, 4, 7):            # the slow process is baseline or candidate
                (b if r < 10 else c)[:] *= 1.35
            base.append(b)
            cand.append(c)
        return base, cand
    same = compare_interleaved(*session(0.0))
    assert same.verdict != "regressed" and abs(same.change) < 0.02
    slower = compare_interleaved(*session(0.06))
    assert slower.verdict == "regressed" and 0.04 < slower.change < 0.08, slower.reason
    assert "trimmed mean" in slower.reason


# ----------------------------------------------------------------- change points

def test_change_point_finds_planted_step():
    rng = np.random.default_rng(25)
    x = np.r_[rng.normal(100, 1.0, 40), rng.normal(108, 1.0, 25)]
    cp = detect_steps(x)
    assert len(cp.indices) == 1 and abs(cp.indices[0] - 40) <= 1
    m = cp.segment_medians
    assert abs(m[0] - 100) < 1 and abs(m[1] - 108) < 1
    step = cp.steps()[0]
    assert step["change"] == pytest.approx(0.08, abs=0.015)


def test_change_point_two_steps_and_no_false_steps():
    rng = np.random.default_rng(26)
    flat = rng.normal(50, 0.5, 80)
    flat[30] = 80.0                              # one outlier run is not a step
    assert detect_steps(flat).indices == []
    x = np.r_[rng.normal(50, 0.5, 30), rng.normal(55, 0.5, 30), rng.normal(51, 0.5, 30)]
    idx = detect_steps(x).indices
    assert len(idx) == 2 and abs(idx[0] - 30) <= 1 and abs(idx[1] - 60) <= 1


def test_change_point_small_and_edge_cases():
    assert detect_steps([]).indices == []
    assert detect_steps([5.0]).segments == [(0, 1, 5.0)]
    assert detect_steps([5.0] * 10).indices == []
    # a 0.5% step is merged away (min_rel_step 1%)
    x = np.r_[np.full(20, 100.0), np.full(20, 100.5)]
    assert detect_steps(x).indices == []
    with pytest.raises(ValueError):
        detect_steps([1.0, float("nan")])


def test_run_noise_estimates():
    rng = np.random.default_rng(27)
    med = 50 * np.exp(rng.normal(0, 0.02, 40))
    noise = run_noise_from_medians(med)
    assert 0.012 < noise.sd < 0.032 and noise.runs == 40
    assert run_noise_from_medians([50, 51, 49]) is None
    assert robust_noise(np.r_[np.zeros(20), np.ones(20) * 10]) == 0.0


# ----------------------------------------------------------------- reference rules

def test_reference_rules():
    b = lognormal(28, 100, cv=0.02)
    same = lognormal(29, 100, cv=0.02)
    up6 = lognormal(30, 100, cv=0.02, median=53.0)
    up12 = lognormal(31, 100, cv=0.02, median=56.0)
    assert not perfherder_regressed(b, same) and perfherder_regressed(b, up6)
    assert not pytest_benchmark_regressed(b, same) and pytest_benchmark_regressed(b, up6)
    assert not pytest_benchmark_regressed(b, lognormal(32, 100, cv=0.02, median=52.0))
    assert not asv_regressed(b, up6) and asv_regressed(b, up12)
    # none of them flags an improvement as a regression
    down = lognormal(33, 100, cv=0.02, median=44.0)
    assert not any(f(b, down) for f in (perfherder_regressed, pytest_benchmark_regressed,
                                         asv_regressed))


# ----------------------------------------------------------------- gating

def _row(verdict, metric="latency_total_ms", change=0.07):
    return VerdictRow(device="emu-1", profile="host", test="suites/test_latency.py::t",
                      metric=metric, unit="ms", direction="lower", baseline_run="B",
                      candidate_run="C", verdict=verdict, reason="r", n_base=100, n_cand=100,
                      median_base=45.1, median_cand=45.1 * (1 + change), change=change,
                      ci_low=change - 0.02, ci_high=change + 0.02, confidence=0.99,
                      p_value=0.0003, threshold=0.03)


def test_gate_one_line_per_failure_and_exit_status():
    rows = [_row("regressed"), _row("same", change=0.0), _row("improved", "mem_mb", -0.1),
            _row("unknown", "power_avg_w", 0.01)]
    targets = [
        {"test": "t", "device": "emu-1", "profile": "host", "metric": "latency_total_ms",
         "unit": "ms", "direction": "lower", "summary": {"p95": 130.25},
         "target": {"key": "latency_p95_ms", "statistic": "p95", "value": 120.0,
                    "verdict": "fail"}},
        {"test": "t", "device": "emu-1", "metric": "memory_peak_mb", "unit": "mb",
         "summary": {"max": 80}, "target": {"key": "memory_peak_mb", "statistic": "max",
                                            "value": 120.0, "verdict": "pass"}},
    ]
    g = gate(rows, targets)
    assert g.exit_status == 1 and not g.ok
    assert len(g.lines) == 2
    assert g.lines[0].startswith("REGRESSED latency_total_ms on emu-1 (profile host): "
                                 "median 45.1 ms -> 48.26 ms (+7.0%")
    assert "vs run B" in g.lines[0]
    assert g.lines[1].startswith("TARGET FAILED latency_p95_ms on emu-1")
    assert "p95 130.2 ms > target 120.0 ms" in g.lines[1]
    assert gate([_row("same", change=0.0)], targets[1:]).exit_status == 0
    strict = gate(rows, (), fail_on_unknown=True)
    assert len(strict.lines) == 2 and strict.lines[1].startswith("UNKNOWN power_avg_w")
    # dict rows (as JSON from the history) work too
    assert gate([_row("regressed").as_dict()]).lines == [_row("regressed").line()]


def test_rule_config_threshold_override():
    r = RuleConfig().with_threshold(0.05)
    assert r.threshold == 0.05 and r.margin == 0.10
    assert RuleConfig().with_threshold(None) == RuleConfig()


def test_ab_measurements_are_paired_by_round():
    from harness.stats.ab_arms import compare_ab_measurements
    rng = np.random.default_rng(40)
    ms = []
    for r in range(12):
        level = 50 * (1 + 0.01 * r)                     # drift across rounds
        for arm, f in (("baseline", 1.0), ("candidate", 1.10)):
            ms.append({"device": "d", "test": "t", "metric": "latency_total_ms", "unit": "ms",
                       "direction": "lower", "profile": "host",
                       "samples": list(level * f * rng.lognormal(0, 0.02, 10)),
                       "extra": {"ab": {"arm": arm, "round": r}}})
    ms.append({"device": "d", "test": "t", "metric": "other", "samples": [1.0]})  # untagged
    rows = compare_ab_measurements(ms, run_id="RUN")
    assert len(rows) == 1
    assert rows[0].verdict == "regressed" and rows[0].baseline_run == "RUN:baseline"
    assert 0.07 < rows[0].change < 0.13
    rows = compare_ab_measurements(ms, thresholds={"latency_total_ms": 0.2})
    assert rows[0].verdict != "regressed"


def test_calibration_generator_and_quick_table():
    import importlib.util
    spec = importlib.util.spec_from_file_location("calibration", ROOT / "benchmarks/calibration.py")
    cal = importlib.util.module_from_spec(spec)
    sys.modules["calibration"] = cal          # dataclasses look their module up
    spec.loader.exec_module(cal)
    rng = np.random.default_rng(41)
    nz = cal.Noise("t", cv=0.10, phi=0.6, drift=0.0, run_sd=0.0, outliers=0.0)
    x = np.log(cal.synth_series(rng, 20000, nz))
    assert np.std(x) == pytest.approx(np.sqrt(np.log1p(0.01)), rel=0.1)
    assert np.corrcoef(x[:-1], x[1:])[0, 1] == pytest.approx(0.6, abs=0.05)
    b, c = cal.synth_interleaved(rng, 8, 10, nz, 0.05)
    assert len(b) == len(c) == 8 and all(len(r) == 10 for r in b)
    res = cal.run_scenario(lambda g, s: (cal.synth_series(g, 50, nz),
                                         cal.synth_series(g, 50, nz, shift=s), None),
                           {"pb": cal.REFERENCE_RULES["pytest-benchmark (median:5%)"]},
                           trials_null=20, trials_alt=20, seed=1)
    assert set(res["pb"]) == set(cal.SHIFTS) and res["pb"][0.10] > res["pb"][0.0]
    assert "| pb |" in cal.fmt_table("t", res, 20, 20)
    res = cal.run_scenario(lambda g, s: (cal.synth_series(g, 50, nz),
                                         cal.synth_series(g, 50, nz, shift=s), None),
                           {}, trials_null=400, trials_alt=100, seed=2,
                           oracle=cal.median_change_score)
    oracle = res[cal.ORACLE]
    assert oracle[0.0] <= 0.01 and oracle[0.10] > oracle[0.02] > oracle[0.0]


def test_calibration_reads_recorded_ab_rounds(tmp_path):
    import importlib.util
    spec = importlib.util.spec_from_file_location("calibration", ROOT / "benchmarks/calibration.py")
    cal = importlib.util.module_from_spec(spec)
    sys.modules["calibration"] = cal
    spec.loader.exec_module(cal)

    def m(metric, arm, rnd, samples):
        return {"device": "local", "test": "t::ab", "metric": metric, "direction": "lower",
                "samples": samples, "extra": {"ab": {"arm": arm, "round": rnd, "build": "x"}}}
    ms = []
    for r in range(3):
        ms += [m("latency_total_ms", "baseline", r, [10.0 + r] * 5),
               m("latency_total_ms", "candidate", r, [11.0 + r] * 5)]
    ms.append(m("latency_total_ms", "baseline", 3, [9.0] * 5))          # no candidate arm
    ms.append({"device": "local", "test": "t::x", "metric": "latency_total_ms",
               "direction": "lower", "samples": [5.0] * 50})             # not A/B
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "record.json").write_text(json.dumps({"measurements": ms}))
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "record.json").write_text("{not json")
    pools = cal.load_recorded_ab(str(tmp_path / "*" / "record.json"))
    assert list(pools) == ["local:latency_total_ms:t::ab"]
    rounds = pools["local:latency_total_ms:t::ab"]
    assert [(b[0], c[0]) for b, c in rounds] == [(10.0, 11.0), (11.0, 12.0), (12.0, 13.0)]


@pytest.mark.parametrize("direction,change,lo,hi,crossing", [
    ("lower", 0.20, 0.05, 0.35, (-0.01, 0.35)),
    ("higher", -0.20, -0.35, -0.05, (-0.35, 0.01)),
])
def test_verdict_needs_significance_as_well_as_size(direction, change, lo, hi, crossing):
    """A large change whose interval excludes 0 is still not a regression while the test
    statistic says it could be chance (p >= alpha): every condition of the rule counts."""
    from harness.stats.compare import DEFAULT_RULE, decide

    assert decide(change, lo, hi, 0.001, direction, DEFAULT_RULE) == "regressed"
    assert decide(change, lo, hi, DEFAULT_RULE.alpha, direction, DEFAULT_RULE) == "unknown"
    assert decide(change, lo, hi, 0.5, direction, DEFAULT_RULE) == "unknown"
    # the interval condition on its own too
    assert decide(change, *crossing, 0.001, direction, DEFAULT_RULE) == "unknown"
