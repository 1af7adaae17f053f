"""CI gating: relative verdicts (vs a baseline) + absolute target verdicts -> one summary
line per failure and an exit status. Pure: no I/O."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["GateResult", "VerdictRow", "gate", "target_failures"]


@dataclasses.dataclass(frozen=True)
class VerdictRow:
    """One device x metric (x test) comparison between a baseline and a candidate run."""

    device: str
    profile: str | None
    test: str
    metric: str
    unit: str | None
    direction: str
    baseline_run: str | None
    candidate_run: str
    verdict: str                 # improved | regressed | same | unknown
    reason: str
    n_base: int = 0
    n_cand: int = 0
    median_base: float | None = None
    median_cand: float | None = None
    change: float | None = None  # relative change of the median, cand / base - 1
    ci_low: float | None = None
    ci_high: float | None = None
    confidence: float | None = None
    p_value: float | None = None
    threshold: float | None = None

    @classmethod
    def from_samples(cls, c: Any, **where: Any) -> VerdictRow:
        """A row from a two-sample result (harness.stats.compare.SampleComparison) and
        where it was measured (device, profile, test, metric, unit, direction, runs)."""
        return cls(verdict=c.verdict, reason=c.reason, n_base=c.n_base, n_cand=c.n_cand,
                   median_base=c.median_base, median_cand=c.median_cand, change=c.change,
                   ci_low=c.ci_low, ci_high=c.ci_high, confidence=c.confidence,
                   p_value=c.p_value, threshold=c.threshold, **where)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def line(self) -> str:
        """'REGRESSED latency_total_ms on host (profile host): median 45.1 ms -> 48.3 ms
        (+7.1%, 99% CI +5.2%..+9.0%, p=0.0003; threshold 3%) vs run X [test]'."""
        unit = f" {self.unit}" if self.unit else ""
        where = f"{self.metric} on {self.device}"
        if self.profile:
            where += f" (profile {self.profile})"
        if self.change is None:
            return f"{self.verdict.upper()} {where}: {self.reason} [{self.test}]"
        parts = [f"{self.change:+.1%}"]
        if self.ci_low is not None and self.ci_high is not None:
            conf = f"{self.confidence:.0%} " if self.confidence else ""
            parts.append(f"{conf}CI {self.ci_low:+.1%}..{self.ci_high:+.1%}")
        if self.p_value is not None:
            parts.append(f"p={self.p_value:.2g}")
        tail = f"; threshold {self.threshold:.0%}" if self.threshold is not None else ""
        return (f"{self.verdict.upper()} {where}: median {_g(self.median_base)}{unit} -> "
                f"{_g(self.median_cand)}{unit} ({', '.join(parts)}{tail}) vs run "
                f"{self.baseline_run} [{self.test}]")


def _g(x: float | None) -> str:
    return "?" if x is None else f"{x:.4g}"


@dataclasses.dataclass(frozen=True)
class GateResult:
    lines: list[str]
    exit_status: int
    regressions: list[Any]
    target_failures: list[Mapping]

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


def _get(row: Any, key: str, default=None):
    if isinstance(row, Mapping):
        return row.get(key, default)
    return getattr(row, key, default)


def target_failures(measurements: Iterable[Mapping]) -> list[Mapping]:
    """Measurements (record format) whose absolute target verdict is "fail"."""
    return [m for m in measurements
            if isinstance(m.get("target"), Mapping) and m["target"].get("verdict") == "fail"]


def _target_line(m: Mapping) -> str:
    t = m["target"]
    stat = t.get("statistic") or "value"
    observed = (m.get("summary") or {}).get(stat)
    unit = f" {m['unit']}" if m.get("unit") else ""
    cmp = "<" if m.get("direction") == "higher" else ">"
    obs = f"{observed:.4g}{unit}" if isinstance(observed, (int, float)) else "?"
    where = f"{t.get('key') or m.get('metric')} on {m.get('device')}"
    if m.get("profile"):
        where += f" (profile {m['profile']})"
    return (f"TARGET FAILED {where}: {stat} {obs} {cmp} target {t.get('value')}{unit} "
            f"[{m.get('test')}]")


def gate(rows: Iterable[Any], measurements: Iterable[Mapping] = (), *,
         fail_on_unknown: bool = False) -> GateResult:
    """rows: VerdictRow objects or their dicts (from harness.history.compare.compare_runs);
    measurements: the candidate record's measurements (their "target" verdicts).

    One line per regression and per failed target; exit status 1 if there is any,
    else 0. fail_on_unknown also fails (and lists) "unknown" verdicts.
    """
    rows = list(rows)
    regs = [r for r in rows if _get(r, "verdict") == "regressed"]
    unknown = [r for r in rows if _get(r, "verdict") == "unknown"] if fail_on_unknown else []
    fails = target_failures(list(measurements))
    lines = []
    for r in regs + unknown:
        lines.append(r.line() if hasattr(r, "line") else VerdictRow(**{
            f.name: r.get(f.name) for f in dataclasses.fields(VerdictRow)}).line())
    lines += [_target_line(m) for m in fails]
    return GateResult(lines, 1 if lines else 0, regs, fails)
