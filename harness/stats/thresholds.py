"""Relative regression thresholds: from the profiles' ``[regression]`` tables to the
threshold of one profile x metric. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def threshold_for(thresholds: Mapping[str, Any] | None, profile: str | None,
                  metric: str) -> float | None:
    """Relative regression threshold for a metric, most specific first:
    "PROFILE:METRIC", "METRIC", "PROFILE:*", "*" (or "default"). Values are fractions
    (0.05) or percent strings ("5%"). None = the rule's default."""
    if not thresholds:
        return None
    for key in (f"{profile}:{metric}" if profile else None, metric,
                f"{profile}:*" if profile else None, "*", "default"):
        if key is not None and key in thresholds:
            v = thresholds[key]
            if isinstance(v, str) and v.strip().endswith("%"):
                return float(v.strip()[:-1]) / 100.0
            return float(v)
    return None


def thresholds_from_profiles(profiles: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Relative thresholds from profile data, for compare_runs / gate_runs.

    Proposed profile table (device_profiles/NAME.toml):
        [regression]
        threshold = 0.03            # all metrics of this profile
        latency_total_ms = 0.05     # one metric
    -> {"NAME:*": 0.03, "NAME:latency_total_ms": 0.05}. Profiles without it add nothing.
    """
    out: dict[str, Any] = {}
    for name, prof in profiles.items():
        reg = (prof or {}).get("regression") or {}
        for k, v in reg.items():
            if k == "min_history":  # runs of history, not a threshold (min_history_for)
                continue
            out[f"{name}:*" if k == "threshold" else f"{name}:{k}"] = v
    return out
