"""Run-level guards on verdicts, so that a team can trust a failed gate. Pure: no I/O.

A run compares ~50 metrics; at 1% false alarms per metric about 4 runs in 10 would fail
(1 - 0.99^48). These guards turn per-metric verdicts into per-run ones:

- `resolution_floor`: a change smaller than the timing resolution that matters (0.1 ms,
  or 1% of the device's frame total) is never a regression: a 0.025 ms stage moving 20% is
  noise, not a product change.
- `holm`: Holm's step-down correction over the run's significant verdicts, so that the
  chance of any false "regressed" in a run stays at alpha (family-wise), not per metric.
- `require_history`: a two-run verdict needs a history of MIN_HISTORY runs.
- `settings_differ`: measurements taken with other runner settings are not comparable.
- `disturbed`: two runs of one device whose environment differed (another process used a
  core in one of them; see harness.record.health) cannot be compared: the verdict is
  "unknown: environment disturbed (...)" with the evidence, never "regressed".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

REGRESSED, IMPROVED, UNKNOWN = "regressed", "improved", "unknown"

#: a time metric must move at least this much (ms) ...
FLOOR_MS = 0.1
#: ... and at least this share of the device's frame total
FLOOR_OF_TOTAL = 0.01
#: other processes using more CPU than this (in cores) disturb a CPU-shared device
DISTURBED_CORES = 0.25


def resolution_floor(row: Any, frame_total_ms: float | None) -> float | None:
    """The smallest absolute change (in the metric's unit) that counts for `row`; None when
    the metric is not a time in ms."""
    if (row.unit or "").lower() != "ms":
        return None
    floor = FLOOR_MS
    if frame_total_ms:
        floor = max(floor, FLOOR_OF_TOTAL * frame_total_ms)
    return floor


def apply_floor(rows: Sequence[Any], frame_totals: Mapping[str, float]) -> list[Any]:
    """Significant changes below the resolution floor become "unknown" (never a
    regression). `frame_totals`: device -> median frame total (ms) in the baseline."""
    out = []
    for r in rows:
        floor = resolution_floor(r, frame_totals.get(r.device))
        if (r.verdict in (REGRESSED, IMPROVED) and floor is not None
                and r.median_base is not None and r.median_cand is not None
                and abs(r.median_cand - r.median_base) < floor):
            r = dataclasses.replace(
                r, verdict=UNKNOWN,
                reason=(f"change {r.median_cand - r.median_base:+.3g} ms is below the "
                        f"resolution floor {floor:.3g} ms ({r.reason})"))
        out.append(r)
    return out


def holm(rows: Sequence[Any], alpha: float) -> list[Any]:
    """Holm's step-down over the rows' p-values (every compared row counts in the family):
    a significant verdict whose adjusted p is not below `alpha` becomes "unknown"."""
    tested = sorted((r.p_value, i) for i, r in enumerate(rows) if r.p_value is not None)
    m = len(tested)
    adjusted: dict[int, float] = {}
    running = 0.0
    for k, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (m - k) * p))
        adjusted[i] = running
    out = []
    for i, r in enumerate(rows):
        if r.verdict in (REGRESSED, IMPROVED) and adjusted.get(i, 1.0) >= alpha:
            r = dataclasses.replace(
                r, verdict=UNKNOWN,
                reason=(f"not significant across the run's {m} comparisons (Holm: p "
                        f"{r.p_value:.2g} -> {adjusted.get(i, 1.0):.2g}, alpha {alpha:g})"))
        out.append(r)
    return out


def disturbed(base: Mapping[str, Any] | None, cand: Mapping[str, Any] | None) -> str | None:
    """Why two runs' environments cannot be compared (None: comparable, or unknown).
    `base` / `cand`: harness.record.health summaries."""
    if not base or not cand:
        return None
    bp, cp = (max(1, int(h.get("host_cpu_parallel") or 1)) for h in (base, cand))
    if bp != cp:  # a parallel run (harness.fleet): devices on this host's CPU load each other
        return (f"host CPU shared by {cp} device(s) measuring at once in the candidate run, "
                f"{bp} in the baseline")
    b, c = base.get("other_cpu_cores_mean"), cand.get("other_cpu_cores_mean")
    if b is None or c is None:
        return None
    bs, cs = base.get("steal_cores_mean") or 0.0, cand.get("steal_cores_mean") or 0.0
    worst = max(b, c, bs, cs)
    if worst <= DISTURBED_CORES and abs(c - b) <= DISTURBED_CORES:
        return None
    return (f"environment disturbed (other processes used {c:.2f} of {cand.get('cores')} "
            f"cores in the candidate run, {b:.2f} in the baseline; steal {cs:.2f} vs "
            f"{bs:.2f}; limit {DISTURBED_CORES:g})")


def run_disturbed(health: Mapping[str, Any] | None) -> bool:
    """Whether one run's own environment was disturbed: other processes, or steal, used
    more than DISTURBED_CORES of the host (harness.record.health). Unknown health: False.
    Such runs say little about a CPU-shared device's run-to-run noise."""
    if not health:
        return False
    return max(health.get("other_cpu_cores_mean") or 0.0,
               health.get("steal_cores_mean") or 0.0) > DISTURBED_CORES


def mark_disturbed(rows: Iterable[Any], devices: Iterable[str], why: str) -> list[Any]:
    """Rows of the given (CPU-shared) devices become "unknown" with `why`; a comparison
    that already says "same" keeps it (the disturbance did not hide a change)."""
    devices = set(devices)
    return [dataclasses.replace(r, verdict=UNKNOWN, reason=f"{why}; was: {r.verdict}")
            if r.device in devices and r.verdict in (REGRESSED, IMPROVED) else r
            for r in rows]


#: runs of history (of one device x test x metric, before the candidate, the baseline
#: included) before a two-run comparison may say "regressed": with fewer, the run-to-run
#: noise cannot be estimated (harness.stats.changepoint.run_noise_from_medians needs 5)
#: and the rule falls back to a prior that gave 17% false alarms across this host's runs
#: (docs/statistics.md). A profile sets its own with `[regression] min_history = N`.
MIN_HISTORY = 5


def require_history(row: Any, runs: int, need: int) -> Any:
    """A significant verdict resting on fewer than `need` runs of history becomes
    "unknown: too little history (N runs, need M)"."""
    if row.verdict not in (REGRESSED, IMPROVED) or runs >= need:
        return row
    return dataclasses.replace(
        row, verdict=UNKNOWN,
        reason=(f"too little history ({runs} runs, need {need}) to estimate the run-to-run "
                f"noise; was: {row.verdict} ({row.reason})"))


def settings_differ(base: Mapping[str, Any] | None, cand: Mapping[str, Any] | None
                    ) -> str | None:
    """Why two measurements' runner settings (harness.runner.settings) make them not
    comparable, e.g. "runner settings differ (threads 1 vs 2)" (baseline first); None when
    every setting both know is equal (a setting only one side recorded is not evidence)."""
    if not base or not cand:
        return None
    diffs = [f"{k} {_setting(base[k])} vs {_setting(cand[k])}"
             for k in sorted(set(base) & set(cand)) if base[k] != cand[k]]
    if not diffs:
        return None
    return f"runner settings differ ({', '.join(diffs)}; baseline vs candidate)"


def _setting(v: Any) -> str:
    if isinstance(v, Mapping) and "values" in v:
        v = v["values"]
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(str(x) for x in v) + "]"
    return str(v)


def mark_not_comparable(row: Any, why: str) -> Any:
    """Any verdict between measurements taken with different runner settings (even
    "same": they measured different things) becomes "unknown" with `why`."""
    if row.verdict == UNKNOWN and row.reason.startswith("runner settings differ"):
        return row
    return dataclasses.replace(row, verdict=UNKNOWN, reason=f"{why}; was: {row.verdict}")
