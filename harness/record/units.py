"""Units of measurements: the unit a metric name carries (``_ms``, ``_mb``, ``_w``, ``_c``)
and how a value of a unit is written for people (failure messages, the report)."""

from __future__ import annotations

_UNIT_NAMES = {"ms": "ms", "mb": "MB", "w": "W", "c": "°C", "ratio": "", "count": ""}


def format_value(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    u = _UNIT_NAMES.get(unit, unit)
    if unit == "ratio":
        return f"{value * 100:.1f}%"
    digits = 1 if abs(value) >= 10 else 2
    return f"{value:.{digits}f} {u}".strip()


def unit_of(metric: str) -> str:
    for suffix in ("ms", "mb", "w", "c", "kb", "ns"):
        if metric.endswith("_" + suffix):
            return suffix
    if metric.endswith("_rate") or "_rate_" in metric:
        return "ratio"
    return ""
