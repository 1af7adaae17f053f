"""More inline-SVG charts for the report: baseline-vs-candidate distribution overlay and
trends across runs with change points. Pure functions; every text is XML-escaped."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from harness.report.svg import cdf_points, esc, fmt, histogram_bins, nice_ticks, svg_open

BASE_COLOR, CAND_COLOR = "#8c8c8c", "#e15759"


def distribution_overlay(base: Sequence[float], cand: Sequence[float], unit: str = "ms",
                         title: str = "", labels: tuple[str, str] = ("baseline", "candidate"),
                         width: int = 520, height: int = 220) -> str:
    """Histograms (outlined steps, left axis: share of frames) and empirical CDFs (lines,
    right axis) of a baseline and a candidate sample set on one axis."""
    b = sorted(float(v) for v in base if math.isfinite(v))
    c = sorted(float(v) for v in cand if math.isfinite(v))
    if not b and not c:
        return ""
    edges, _ = histogram_bins(b + c)
    lo, hi = edges[0], edges[-1]
    span = (hi - lo) or 1.0
    left, right, top, bottom = 44, 44, 54 if title else 36, 30
    pw, ph = width - left - right, height - top - bottom

    def sx(v: float) -> float:
        return left + (v - lo) / span * pw

    def shares(vals):
        counts = [0] * (len(edges) - 1)
        for v in vals:
            i = min(max(int((v - lo) / span * len(counts)), 0), len(counts) - 1)
            counts[i] += 1
        n = len(vals) or 1
        return [k / n for k in counts]

    sb, sc = shares(b), shares(c)
    smax = max(sb + sc) or 1.0
    out = svg_open("overlay", width, height, "baseline vs candidate", title, title_size=13)
    for k, (name, color, vals) in enumerate(((labels[0], BASE_COLOR, b),
                                               (labels[1], CAND_COLOR, c))):
        x, ly = left, top - 20 + k * 13
        med = vals[len(vals) // 2] if vals else None
        text = f"{name} (n={len(vals)}" + (f", median {fmt(med)} {unit})" if med is not None
                                           else ")")
        out.append(f'<rect x="{x}" y="{ly - 8}" width="10" height="10" fill="{color}"/>'
                   f'<text x="{x + 14}" y="{ly + 1}" font-size="10">{esc(text)}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>')
    for vals, sh, color, cls in ((b, sb, BASE_COLOR, "base"), (c, sc, CAND_COLOR, "cand")):
        if not vals:
            continue
        pts = [f"{sx(edges[0]):.2f},{top + ph:.2f}"]
        for i, s in enumerate(sh):
            y = top + ph - s / smax * ph
            pts.append(f"{sx(edges[i]):.2f},{y:.2f}")
            pts.append(f"{sx(edges[i + 1]):.2f},{y:.2f}")
        pts.append(f"{sx(edges[-1]):.2f},{top + ph:.2f}")
        out.append(f'<polyline class="hist-{cls}" points="{" ".join(pts)}" fill="{color}" '
                   f'fill-opacity="0.18" stroke="{color}" stroke-width="1"/>')
        out.append(f'<polyline class="cdf cdf-{cls}" points="{cdf_points(vals, sx, top, ph)}" '
                   f'fill="none" stroke="{color}" stroke-width="1.6"/>')
    for t in nice_ticks(lo, hi):
        out.append(f'<text x="{sx(t):.1f}" y="{top + ph + 14}" font-size="10" '
                   f'text-anchor="middle">{fmt(t)}</text>')
    out.append(f'<text x="{left}" y="{height - 2}" font-size="11">{esc(unit)} (filled: share of '
               f'frames, left axis; lines: CDF, right axis)</text>'
               f'<text x="{left - 4}" y="{top + 8}" font-size="10" text-anchor="end">'
               f'{smax:.0%}</text><text x="{left + pw + 4}" y="{top + 8}" font-size="10">100%'
               f'</text><text x="{left + pw + 4}" y="{top + ph}" font-size="10">0%</text>')
    out.append("</svg>")
    return "".join(out)


def trend_chart(points: Sequence[Mapping], change_points: Sequence[Mapping] = (),
                segments: Sequence[Sequence] = (), unit: str = "", title: str = "",
                highlight: Sequence[str] = (), width: int = 520, height: int = 180) -> str:
    """Run medians over runs (oldest left), segment medians of the step fit as a grey
    step line, change points as dashed vertical lines labelled with their change;
    runs in `highlight` (e.g. this run, the baseline) get a ring."""
    vals = [float(p["median"]) for p in points if p.get("median") is not None]
    if not vals:
        return ""
    n = len(points)
    left, right, top, bottom = 48, 12, 24 if title else 10, 26
    pw, ph = width - left - right, height - top - bottom
    seg_vals = [float(s[2]) for s in segments if len(s) >= 3 and s[2] is not None]
    lo, hi = min(vals + seg_vals), max(vals + seg_vals)
    if hi <= lo:
        lo, hi = lo * 0.95 - 1e-9, hi * 1.05 + 1e-9
    pad = (hi - lo) * 0.1
    lo, hi = lo - pad, hi + pad

    def sx(i: float) -> float:
        return left + (i + 0.5) / n * pw

    def sy(v: float) -> float:
        return top + ph - (v - lo) / (hi - lo) * ph

    out = svg_open("trend", width, height, "trend", title, title_y=15, title_size=13)
    out.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>')
    for s in segments:
        if len(s) < 3 or s[2] is None:
            continue
        start, end, med = int(s[0]), int(s[1]), float(s[2])
        out.append(f'<line class="segment" x1="{sx(start - 0.4):.1f}" x2="{sx(end - 0.6):.1f}" '
                   f'y1="{sy(med):.1f}" y2="{sy(med):.1f}" stroke="#999" stroke-width="3" '
                   f'opacity="0.6"/>')
    for cp in change_points:
        i = cp.get("index")
        if i is None:
            continue
        x = sx(i - 0.5)
        ch = cp.get("change")
        label = f"{ch:+.1%}" if isinstance(ch, (int, float)) else "step"
        out.append(f'<line class="change-point" x1="{x:.1f}" x2="{x:.1f}" y1="{top}" '
                   f'y2="{top + ph}" stroke="#b07aa1" stroke-dasharray="4 3"/>'
                   f'<text x="{x + 3:.1f}" y="{top + 11}" font-size="10" fill="#b07aa1">'
                   f'{esc(label)}<title>change point at run {esc(cp.get("run_id", ""))} '
                   f'(commit {esc(str(cp.get("commit") or "")[:12])})</title></text>')
    coords = " ".join(f"{sx(i):.1f},{sy(float(p['median'])):.1f}" for i, p in enumerate(points)
                      if p.get("median") is not None)
    out.append(f'<polyline points="{coords}" fill="none" stroke="#4e79a7" stroke-width="1.2"/>')
    for i, p in enumerate(points):
        if p.get("median") is None:
            continue
        ring = p.get("run_id") in highlight
        out.append(f'<circle cx="{sx(i):.1f}" cy="{sy(float(p["median"])):.1f}" '
                   f'r="{4 if ring else 2.5}" fill="{"#fff" if ring else "#4e79a7"}" '
                   f'stroke="#4e79a7" stroke-width="{2 if ring else 1}"><title>'
                   f'{esc(p.get("run_id", ""))} {esc(str(p.get("commit") or "")[:10])} '
                   f'{esc(p.get("branch") or "")}: {fmt(float(p["median"]))} {esc(unit)}'
                   f'</title></circle>')
    for v in (lo + pad, hi - pad):
        out.append(f'<text x="{left - 4}" y="{sy(v) + 3:.1f}" font-size="10" '
                   f'text-anchor="end">{fmt(v)}</text>')
    out.append(f'<text x="{left}" y="{height - 6}" font-size="10">{n} run(s), oldest left; '
               f'median {esc(unit)} per run; dashed: change points</text>')
    out.append("</svg>")
    return "".join(out)


def cpu_freq_chart(doc: Mapping, title: str = "", width: int = 640, height: int = 140) -> str:
    """CPU frequency (GHz) per policy/core over time from a swaplab.timeseries/1 document
    (samples[].cpu_khz), on the same time axis as its latency chart; mode switches
    dashed. "" when the run recorded no frequencies."""
    lines: dict[str, list[tuple[float, float]]] = {}
    for s in doc.get("samples") or []:
        for cpu, khz in (s.get("cpu_khz") or {}).items():
            if isinstance(khz, (int, float)) and math.isfinite(khz) and s.get("t_s") is not None:
                lines.setdefault(str(cpu), []).append((float(s["t_s"]), khz / 1e6))
    if not lines:
        return ""
    left, right, top, bottom = 56, 12, 24, 22
    pw, ph = width - left - right, height - top - bottom
    ts = [t for pts in lines.values() for t, _ in pts]
    vs = [v for pts in lines.values() for _, v in pts]
    t0, t1 = min(ts), max(ts) if max(ts) > min(ts) else min(ts) + 1
    lo, hi = 0.0, max(vs) * 1.1 or 1.0

    def sx(t):
        return left + (t - t0) / (t1 - t0) * pw

    def sy(v):
        return top + ph - (v - lo) / (hi - lo) * ph

    palette = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#e15759"]
    out = [(f'<svg xmlns="http://www.w3.org/2000/svg" class="chart cpufreq" width="{width}" '
            f'height="{height}" viewBox="0 0 {width} {height}" font-size="10">'),
           (f'<text x="{left}" y="14" font-size="12" font-weight="bold">'
           f'{esc(title or "CPU frequency")}</text>'),
           f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#ccc"/>']
    for sw in doc.get("mode_switches") or []:
        if isinstance(sw.get("t_s"), (int, float)):
            x = sx(float(sw["t_s"]))
            out.append(f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top}" y2="{top + ph}" '
                       f'stroke="#f28e2b" stroke-dasharray="2 2"/>')
    for k, (cpu, pts) in enumerate(sorted(lines.items())):
        color = palette[k % len(palette)]
        coords = " ".join(f"{sx(t):.1f},{sy(v):.1f}" for t, v in pts)
        out.append(f'<polyline points="{coords}" fill="none" stroke="{color}" '
                   f'stroke-width="1.2"/><text x="{left + 4 + 70 * k}" y="{top + ph + 16}" '
                   f'fill="{color}">cpu {esc(cpu)}</text>')
    out.append(f'<text x="{left - 4}" y="{sy(hi / 1.1) + 3:.1f}" text-anchor="end">'
               f'{fmt(hi / 1.1)} GHz</text><text x="{left - 4}" y="{top + ph}" '
               f'text-anchor="end">0</text>')
    out.append("</svg>")
    return "".join(out)
