"""A/B interleaved runs inside one record: pure grouping + compare_interleaved.

Convention for the plugin (agreed here, nothing else depends on it yet): in an A/B run
the baseline and candidate runner builds alternate on the same device, and every
measurement of one arm in one round carries
``extra = {"ab": {"arm": "baseline" | "candidate", "round": <int>, "build": "<label>"}}``.
:func:`compare_ab_measurements` pairs the arms round by round per device x test x metric.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .compare import DEFAULT_RULE, RuleConfig, compare_interleaved
from .gate import VerdictRow
from .thresholds import threshold_for

__all__ = ["ab_arm", "compare_ab_measurements"]


def ab_arm(measurement: Mapping) -> str | None:
    """"baseline" / "candidate" for a measurement of an A/B run, else None. The baseline
    arm is another build: it belongs in no trend and no comparison between runs."""
    return ((measurement.get("extra") or {}).get("ab") or {}).get("arm")


def compare_ab_measurements(measurements: Iterable[Mapping], *, run_id: str = "",
                            rule: RuleConfig = DEFAULT_RULE,
                            thresholds=None) -> list[VerdictRow]:
    """Verdict rows (baseline_run/candidate_run = "<run_id>:baseline"/":candidate") for
    every device x test x metric that has A/B-tagged measurements.
    thresholds: as harness.stats.thresholds.threshold_for."""
    groups: dict[tuple, dict[str, dict[int, list[float]]]] = {}
    meta: dict[tuple, Mapping] = {}
    for m in measurements:
        arm, rnd = ab_arm(m), ((m.get("extra") or {}).get("ab") or {}).get("round")
        if arm not in ("baseline", "candidate") or not isinstance(rnd, int):
            continue
        key = (m.get("device"), m.get("test"), m.get("metric"))
        meta.setdefault(key, m)
        groups.setdefault(key, {"baseline": {}, "candidate": {}})[arm].setdefault(
            rnd, []).extend(float(v) for v in (m.get("samples") or []))
    rows = []
    for key, arms in groups.items():
        m0 = meta[key]
        rounds = sorted(set(arms["baseline"]) & set(arms["candidate"]))
        thr = threshold_for(thresholds, m0.get("profile"), key[2])
        c = compare_interleaved([arms["baseline"][r] for r in rounds],
                                [arms["candidate"][r] for r in rounds],
                                m0.get("direction") or "lower", rule, threshold=thr)
        rows.append(VerdictRow.from_samples(
            c, device=key[0], profile=m0.get("profile"), test=key[1], metric=key[2],
            unit=m0.get("unit"), direction=m0.get("direction") or "lower",
            baseline_run=f"{run_id}:baseline", candidate_run=f"{run_id}:candidate"))
    return rows
