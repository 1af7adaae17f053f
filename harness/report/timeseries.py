"""Time-series charts of the power and thermal suites as inline SVG. Pure: a
`swaplab.timeseries/1` document (harness.power.sustained.timeseries) in, SVG text out.

One chart, stacked panels sharing the time axis: frame latency (ms; thermally affected
frames in red), power (W), hottest temperature (C; with the fallback's limit and
limit - hysteresis as dashed lines), the camera frame rate and the runner's mode
(tiny/small/base), step lines with every thermal-fallback switch marked and labelled (frame
rate, GPU - skipped too - and mode). Panels without data are left out; simulated data says so in the title.
Every text is XML-escaped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from harness.report.base import register_section
from harness.report.links import artifact_file
from harness.report.svg import esc, fmt

MODES = ("tiny", "small", "base")
W, PANEL_H, GAP, LEFT, RIGHT, TOP = 640, 90, 26, 56, 12, 28


def _finite(points):
    return [(t, v) for t, v in points if v is not None and math.isfinite(t) and math.isfinite(v)]


def _panels(doc: dict) -> list[dict]:
    frames = [f for f in doc.get("frames", []) if not f.get("warmup")]
    samples = doc.get("samples", [])
    out = []
    lat = _finite([(f["t_s"], f.get("total_ms")) for f in frames])
    if lat:
        out.append({"title": "frame latency", "unit": "ms", "points": lat,
                    "marks": [(f["t_s"], f["total_ms"]) for f in frames
                              if f.get("thermally_affected") and f.get("total_ms") is not None]})
    pw = _finite([(s["t_s"], s.get("power_w")) for s in samples])
    if pw:
        out.append({"title": "power", "unit": "W", "points": pw})
    tc = _finite([(s["t_s"], s.get("temp_max_c")) for s in samples])
    if tc:
        lines = []
        if doc.get("limit_c") is not None:
            lines.append((float(doc["limit_c"]), "limit"))
            if doc.get("hysteresis_c") is not None:
                lines.append((float(doc["limit_c"]) - float(doc["hysteresis_c"]),
                              "limit - hysteresis"))
        out.append({"title": "temperature (hottest zone)", "unit": "C", "points": tc,
                    "lines": lines})
    fallback = doc.get("fallback_switches") or []
    fps = _finite([(f["t_s"], f.get("camera_fps")) for f in frames])
    fps_switches = [s for s in fallback if s.get("rung") == "fps"]
    if fps and (len({v for _, v in fps}) > 1 or fps_switches):
        out.append({"title": "camera frame rate", "unit": "fps", "points": fps, "step": True,
                     "switches": [s.get("t_s", 0.0) for s in fps_switches],
                     "labels": [(s.get("t_s", 0.0), f"fps {s.get('from')}->{s.get('to')}")
                                for s in fps_switches]})
    modes = [(f["t_s"], float(MODES.index(f["mode"]))) for f in frames if f.get("mode") in MODES]
    others = [s for s in fallback if s.get("rung") != "fps"]  # gpu steps (or skips)
    if modes and (len({m for _, m in modes}) > 1 or doc.get("mode_switches") or others):
        marks = doc.get("mode_switches", []) + others
        out.append({"title": "mode", "unit": "", "points": modes, "step": True,
                    "switches": [s.get("t_s", 0.0) for s in marks],
                    "labels": [(s.get("t_s", 0.0),
                                f"{s.get('rung', 'mode')} {s.get('from')}->{s.get('to')}"
                                + (" skipped" if s.get("skipped") else "")) for s in marks]})
    return out


def timeseries_svg(doc: dict, title: str = "") -> str:
    """The chart of one time-series document; "" when it holds nothing to plot."""
    panels = _panels(doc)
    if not panels:
        return ""
    ts = [t for p in panels for t, _ in p["points"]]
    t0, t1 = min(ts), max(ts)
    if t1 <= t0:
        t1 = t0 + 1.0
    plot_w = W - LEFT - RIGHT
    height = TOP + len(panels) * (PANEL_H + GAP) + 10
    sim = " (simulated sensors)" if doc.get("simulated") else ""
    head = title or f"{doc.get('kind', 'run')} on {doc.get('device', '?')}"
    parts = [(f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{W}" '
             f'height="{height}" viewBox="0 0 {W} {height}" font-family="sans-serif" '
             f'font-size="10">'),
             f'<text x="{LEFT}" y="14" font-size="12" font-weight="bold">{esc(head + sim)}</text>']

    def x(t: float) -> float:
        return LEFT + (t - t0) / (t1 - t0) * plot_w

    for k, p in enumerate(panels):
        y0 = TOP + k * (PANEL_H + GAP) + 12
        vals = [v for _, v in p["points"]] + [v for v, _ in p.get("lines", [])]
        lo, hi = min(vals), max(vals)
        if p.get("step"):
            lo, hi = 0.0, 2.0
        if hi <= lo:
            lo, hi = lo - 1, hi + 1
        pad = (hi - lo) * 0.08
        lo, hi = lo - pad, hi + pad

        def y(v: float, y0=y0, lo=lo, hi=hi) -> float:
            return y0 + PANEL_H - (v - lo) / (hi - lo) * PANEL_H

        unit = f" ({p['unit']})" if p["unit"] else ""
        parts.append(f'<text x="{LEFT}" y="{y0 - 3:.1f}" fill="#333">{esc(p["title"] + unit)}</text>')
        parts.append(f'<rect x="{LEFT}" y="{y0}" width="{plot_w}" height="{PANEL_H}" '
                     'fill="none" stroke="#ccc"/>')
        if p.get("step"):
            for i, m in enumerate(MODES):
                parts.append(f'<text x="{LEFT - 4}" y="{y(i) + 3:.1f}" text-anchor="end">{m}</text>')
        else:
            for v in (lo + pad, hi - pad):
                parts.append(f'<text x="{LEFT - 4}" y="{y(v) + 3:.1f}" text-anchor="end">'
                             f'{esc(fmt(v))}</text>')
        for v, label in p.get("lines", []):
            parts.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                         f'stroke="#e15759" stroke-dasharray="4 3"/>'
                         f'<text x="{LEFT + plot_w - 2}" y="{y(v) - 2:.1f}" text-anchor="end" '
                         f'fill="#e15759">{esc(label)} {esc(fmt(v))}</text>')
        pts = p["points"]
        if p.get("step"):
            path = []
            for i, (t, v) in enumerate(pts):
                if i:
                    path.append(f"{x(t):.1f},{y(pts[i - 1][1]):.1f}")
                path.append(f"{x(t):.1f},{y(v):.1f}")
            coords = " ".join(path)
            for t in p.get("switches", []):
                parts.append(f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{y0}" '
                             f'y2="{y0 + PANEL_H}" stroke="#f28e2b" stroke-dasharray="2 2"/>')
            for k, (t, text) in enumerate(p.get("labels", [])):
                parts.append(f'<text x="{x(t) + 2:.1f}" y="{y0 + 10 + 10 * (k % 4)}" '
                             f'fill="#f28e2b" font-size="9">{esc(text)}</text>')
        else:
            coords = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        parts.append(f'<polyline points="{coords}" fill="none" stroke="#4e79a7" '
                     'stroke-width="1.3"/>')
        for t, v in p.get("marks", []):
            parts.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2" fill="#e15759"/>')
    yb = TOP + len(panels) * (PANEL_H + GAP) - GAP + 24
    parts.append(f'<text x="{LEFT}" y="{yb}">{esc(fmt(t0))} s</text>'
                 f'<text x="{LEFT + plot_w}" y="{yb}" text-anchor="end">{esc(fmt(t1))} s</text>')
    if any(p.get("marks") for p in panels):
        parts.append(f'<text x="{LEFT + plot_w / 2:.0f}" y="{yb}" text-anchor="middle" '
                     'fill="#e15759">red dots: thermally affected frames</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeseries_charts(docs: Sequence[tuple[str, dict]]) -> list[dict]:
    """[{"title", "svg"}] for (title, document) pairs, skipping empty ones."""
    out = []
    for title, doc in docs:
        svg = timeseries_svg(doc, title)
        if svg:
            out.append({"title": title, "svg": svg})
    return out


# --- the HTML report section ------------------------------------------------------------

def _load_docs(record: dict, run_dir) -> list[tuple[dict, dict]]:
    out = []
    for a in record.get("artifacts", []):
        if a.get("kind") != "samples" or not a.get("timeseries"):
            continue
        path = artifact_file(run_dir, a.get("path"))
        if path is None:
            continue  # only files inside the run folder
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and doc.get("schema") == "swaplab.timeseries/1":
            out.append((a, doc))
    return out


def report_section(record: dict, run_dir) -> tuple[str, str] | None:
    """Report section (harness.report.base.register_section): per power/thermal run the
    chart of latency, power, temperature and mode over time, what throttled it and which
    metrics the device could not measure (with the reasons)."""
    docs = _load_docs(record, run_dir)
    if not docs:
        return None
    parts = [("<p>Time series of the sustained and thermal-fallback runs. Throttled frames "
             "(thermal status above NONE, a cluster's frequency drop, or the same work "
             "slowing down) are kept as a separate latency variant; they are red in the "
             "latency panel when the cause is <b>thermal</b> (evidence from a measured "
             "sensor), not when it is CPU contention or unknown.</p>")]
    for a, doc in docs:
        test = str(a.get("test") or "").split("::")[-1]
        parts.append(f"<h3>{esc(test)} · {esc(doc.get('device', ''))}</h3>")
        parts.append(timeseries_svg(doc, f"{doc.get('kind', '')} on {doc.get('device', '')}"))
        thr = doc.get("throttle") or {}
        if thr:
            if thr.get("affected"):
                parts.append(f"<p><b>Throttled</b> (cause: {esc(thr.get('cause', 'unknown'))}"
                             f"; {esc(thr.get('cause_detail', ''))}): "
                             f"{thr.get('affected_frames')} of {thr.get('frames')} frames.</p><ul>"
                             + "".join(f"<li>{esc(r)}</li>" for r in thr.get("reasons", []))
                             + "</ul>")
            else:
                parts.append("<p>Not throttled.</p>")
        check = doc.get("check")
        if check:
            parts.append(f"<p>Fallback: {check.get('steps_down')} step(s) down, "
                         f"{check.get('steps_up')} up; limit {esc(doc.get('limit_c'))} C, "
                         f"hysteresis {esc(doc.get('hysteresis_c'))} C; rule check "
                         f"{'ok' if check.get('ok') else 'FAILED'}.</p>")
            if check.get("problems"):
                parts.append("<ul>" + "".join(f"<li>{esc(p)}</li>" for p in check["problems"])
                             + "</ul>")
        unmeasured = doc.get("unmeasured") or {}
        if unmeasured:
            parts.append("<p>Not measured on this device:</p><ul>" + "".join(
                f"<li>{esc(k)}: {esc(v)}</li>" for k, v in sorted(unmeasured.items())) + "</ul>")
    return "Power and thermal", "".join(parts)


def register() -> None:
    register_section(report_section)
