"""Charts as inline SVG strings. Pure functions: data in, SVG text out, no I/O.

Every text that reaches the SVG is XML-escaped here, so callers may pass untrusted
labels (device names, test ids).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

#: one colour per stage, in the stage order of the telemetry
STAGE_COLORS = {
    "decode": "#8c8c8c", "enhance": "#f2c14e", "detect": "#4e79a7", "landmarks": "#59a14f",
    "align": "#b07aa1", "warp": "#76b7b2", "color": "#ff9da7", "mask": "#9c755f",
    "blend": "#e15759", "other": "#bab0ac",
}
_FALLBACK = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1"]


def esc(text: object) -> str:
    return escape(str(text), quote=True)


def fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def svg_open(kind: str, width: int, height: int, label: str, title: str = "", *,
             title_y: int = 16, title_size: int = 14, title_class: str = "") -> list[str]:
    """The opening <svg> tag of a chart (class "chart KIND", an aria label) and its
    bold title line, if any; the caller appends the rest and "</svg>"."""
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {kind}" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
            f'aria-label="{esc(title or label)}">')]
    if title:
        cls = f' class="{title_class}"' if title_class else ""
        out.append(f'<text x="4" y="{title_y}"{cls} font-size="{title_size}" '
                   f'font-weight="bold">{esc(title)}</text>')
    return out


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.floor(lo / step) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        if v >= lo - step * 1e-9:
            ticks.append(round(v, 10))
        v += step
    return ticks


def stacked_bars(rows: Sequence[tuple[str, Mapping[str, float]]], unit: str = "ms",
                 title: str = "", width: int = 720) -> str:
    """Horizontal stacked bars: one row per label, one segment per stage (in order).

    rows: [(label, {stage: value})]. Zero and negative segments are left out.
    """
    if not rows:
        return ""
    label_w, right, bar_h, gap, top = 260, 70, 22, 10, 28 if title else 8
    stages: list[str] = []
    for _, parts in rows:
        for s in parts:
            if s not in stages:
                stages.append(s)
    totals = [sum(max(v, 0.0) for v in parts.values()) for _, parts in rows]
    vmax = max(totals) or 1.0
    plot_w = width - label_w - right
    legend_h = 24
    height = top + len(rows) * (bar_h + gap) + 24 + legend_h
    out = svg_open("stacked", width, height, "per-stage breakdown", title, title_y=18,
                   title_class="title")
    y = top
    for (label, parts), total in zip(rows, totals):
        out.append(f'<text x="{label_w - 6}" y="{y + bar_h * 0.7:.1f}" text-anchor="end" '
                   f'font-size="12">{esc(label)}</text>')
        x = float(label_w)
        for i, s in enumerate(stages):
            v = max(parts.get(s, 0.0), 0.0)
            if v <= 0:
                continue
            w = v / vmax * plot_w
            color = STAGE_COLORS.get(s, _FALLBACK[i % len(_FALLBACK)])
            out.append(f'<rect x="{x:.2f}" y="{y}" width="{w:.2f}" height="{bar_h}" '
                       f'fill="{color}"><title>{esc(s)}: {fmt(v)} {esc(unit)}</title></rect>')
            x += w
        out.append(f'<text x="{x + 4:.1f}" y="{y + bar_h * 0.7:.1f}" font-size="12">'
                   f'{fmt(total)} {esc(unit)}</text>')
        y += bar_h + gap
    # axis
    for t in nice_ticks(0, vmax):
        tx = label_w + t / vmax * plot_w
        out.append(f'<line x1="{tx:.1f}" y1="{top - 2}" x2="{tx:.1f}" y2="{y}" stroke="#ddd" '
                   f'stroke-width="1"/><text x="{tx:.1f}" y="{y + 14}" font-size="10" '
                   f'text-anchor="middle">{fmt(t)}</text>')
    # legend
    lx, ly = 4.0, y + 30
    for i, s in enumerate(stages):
        color = STAGE_COLORS.get(s, _FALLBACK[i % len(_FALLBACK)])
        out.append(f'<rect x="{lx:.1f}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 13:.1f}" y="{ly}" font-size="11">{esc(s)}</text>')
        lx += 20 + 7 * len(s)
    out.append("</svg>")
    return "".join(out)


def histogram_bins(samples: Sequence[float], bins: int | None = None) -> tuple[list[float], list[int]]:
    """Bin edges and counts (Sturges' rule by default)."""
    values = [float(v) for v in samples]
    if not values:
        return [], []
    lo, hi = min(values), max(values)
    if bins is None:
        bins = max(1, min(40, math.ceil(math.log2(len(values)) + 1)))
    if hi == lo:
        hi = lo + 1.0 if lo == 0 else lo * 1.01
    step = (hi - lo) / bins
    edges = [lo + i * step for i in range(bins + 1)]
    counts = [0] * bins
    for v in values:
        i = min(int((v - lo) / step), bins - 1)
        counts[i] += 1
    return edges, counts


def cdf_points(sorted_values: Sequence[float], sx, top: float, ph: float) -> str:
    """SVG polyline points of the empirical CDF as a step line (0 at the bottom of the
    plot area, 1 at `top`); `sx` maps a value to its x coordinate."""
    n = len(sorted_values)
    bottom = top + ph
    pts = [f"{sx(sorted_values[0]):.2f},{bottom:.2f}"]
    for i, v in enumerate(sorted_values):
        pts.append(f"{sx(v):.2f},{bottom - i / n * ph:.2f}")
        pts.append(f"{sx(v):.2f},{bottom - (i + 1) / n * ph:.2f}")
    return " ".join(pts)


def histogram_cdf(samples: Sequence[float], unit: str = "ms", title: str = "",
                  markers: Mapping[str, float] | None = None, width: int = 720,
                  height: int = 220) -> str:
    """Histogram (bars, left axis: count) with the empirical CDF (line, right axis)
    of the samples; `markers` draws labelled vertical lines (e.g. p95, target)."""
    values = sorted(float(v) for v in samples)
    if not values:
        return ""
    edges, counts = histogram_bins(values)
    left, right, top, bottom = 44, 44, 26 if title else 10, 30
    pw, ph = width - left - right, height - top - bottom
    lo, hi = edges[0], edges[-1]
    data_span = (hi - lo) or abs(hi) or 1.0
    off_chart: list[str] = []
    shown: dict[str, float] = {}
    for name, v in (markers or {}).items():
        if v is None or not math.isfinite(v):
            continue
        if lo - data_span <= v <= hi + data_span:  # near the data: widen the axis
            lo, hi = min(lo, v), max(hi, v)
            shown[name] = v
        else:  # far away (e.g. a generous target): say so instead of squashing the data
            off_chart.append(f"{name} {fmt(v)} {unit} (off chart)")
    span = (hi - lo) or 1.0

    def sx(v: float) -> float:
        return left + (v - lo) / span * pw

    cmax = max(counts) or 1
    out = svg_open("histogram", width, height, "distribution", title)
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>')
    for i, c in enumerate(counts):
        x0, x1 = sx(edges[i]), sx(edges[i + 1])
        h = c / cmax * ph
        out.append(f'<rect x="{x0:.2f}" y="{top + ph - h:.2f}" width="{max(x1 - x0 - 1, 0.5):.2f}" '
                   f'height="{h:.2f}" fill="#4e79a7" opacity="0.75"><title>{fmt(edges[i])}-'
                   f'{fmt(edges[i + 1])} {esc(unit)}: {c}</title></rect>')
    out.append(f'<polyline points="{cdf_points(values, sx, top, ph)}" fill="none" '
               f'stroke="#e15759" stroke-width="1.5" class="cdf"/>')
    for k, (name, v) in enumerate(shown.items()):
        x = sx(v)
        anchor, tx = ("end", x - 3) if x > left + pw * 0.8 else ("start", x + 3)
        out.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{top + ph}" stroke="#333" '
                   f'stroke-dasharray="4 3"/><text x="{tx:.1f}" y="{top + 11 + 12 * k}" '
                   f'font-size="10" text-anchor="{anchor}">{esc(name)} {fmt(v)}</text>')
    if off_chart:
        out.append(f'<text x="{left + pw}" y="{height - 2}" font-size="10" text-anchor="end">'
                   f'{esc("; ".join(off_chart))}</text>')
    for t in nice_ticks(lo, hi):
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 14}" font-size="10" '
                   f'text-anchor="middle">{fmt(t)}</text>')
    out.append(f'<text x="{left}" y="{height - 2}" font-size="11">'
               f'{esc(unit)} (bars: frames, left axis; line: CDF, right axis)</text>')
    out.append(f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">{cmax}</text>'
               f'<text x="{left - 4}" y="{top + ph}" font-size="10" text-anchor="end">0</text>'
               f'<text x="{left + pw + 4}" y="{top + 8}" font-size="10">100%</text>'
               f'<text x="{left + pw + 4}" y="{top + ph}" font-size="10">0%</text>')
    out.append("</svg>")
    return "".join(out)
