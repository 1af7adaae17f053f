import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.stats.descriptive import percentile, statistic, summarize, verdict


def test_summary_of_two():
    s = summarize([1.0, 2.0])
    assert s["n"] == 2 and s["mean"] == 1.5 and s["p50"] == 1.5
    assert s["min"] == 1.0 and s["max"] == 2.0
    assert math.isclose(s["stdev"], math.sqrt(0.5))


def test_empty_and_single():
    assert summarize([]) == {"n": 0}
    assert summarize([3.0])["p99"] == 3.0 and summarize([3.0])["stdev"] == 0.0
    assert statistic({"n": 0}, "p95") is None


def test_non_finite_rejected():
    with pytest.raises(ValueError):
        summarize([1.0, float("nan")])


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=200),
       st.sampled_from([0, 50, 90, 95, 99, 100]))
def test_percentile_matches_numpy(values, q):
    assert math.isclose(percentile(sorted(values), q), float(np.percentile(values, q)),
                        rel_tol=1e-9, abs_tol=1e-6)


def test_verdicts():
    assert verdict(100, 120, "lower") == "pass"
    assert verdict(121, 120, "lower") == "fail"
    assert verdict(0.9, 0.8, "higher") == "pass"
    assert verdict(None, 1, "lower") == "none"
    with pytest.raises(ValueError):
        verdict(1, 1, "sideways")
