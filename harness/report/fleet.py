"""The report's view of many devices at once (docs/fleet.md): a device x metric overview
against the targets, the device-health table (connects, drops, retries, offline since),
a per-device timeline of the run's tests, and which device sections start unfolded.

Data for the autoescaping template, and SVG whose every text is escaped here: device
serials, names and test ids come from devices and are untrusted."""

from __future__ import annotations

import datetime as _dt

from harness.report.svg import esc, fmt, svg_open

#: verdict order of a cell: the worst of the device's measurements of that metric
_WORST = {"fail": 0, "pass": 1}
_TEST_COLOURS = {"passed": "#59a14f", "failed": "#e15759", "error": "#e15759",
                 "dropped": "#f28e2b", "skipped": "#bab0ac"}


def overview(record: dict, verdict_rows: list[dict]) -> dict:
    """{"metrics": [metric...], "rows": [{serial, name, profile, cells, tests, health}]}:
    one row per device, one column per metric that has a target on some device; a cell
    shows the worst verdict of that device's measurements of the metric (value vs target)
    and how many passed."""
    devices = dict(record.get("devices") or {})
    for m in record.get("measurements") or []:
        devices.setdefault(m.get("device"), {})
    targeted = [r for r in verdict_rows if r["verdict"] in _WORST]
    metrics = sorted({r["metric"] for r in targeted})
    tests = record.get("tests") or []
    rows = []
    for serial, info in devices.items():
        if serial is None:
            continue
        cells = []
        for metric in metrics:
            mine = [r for r in targeted if r["device"] == serial and r["metric"] == metric]
            if not mine:
                cells.append(None)
                continue
            worst = min(mine, key=lambda r: _WORST[r["verdict"]])
            cells.append({"verdict": worst["verdict"], "value": worst["value"],
                          "target": worst["target"], "variant": worst["variant"],
                          "passed": sum(r["verdict"] == "pass" for r in mine), "n": len(mine)})
        outcomes: dict[str, int] = {}
        for t in tests:
            if t.get("device") == serial:
                outcomes[t["outcome"]] = outcomes.get(t["outcome"], 0) + 1
        rows.append({"serial": serial, "name": (info or {}).get("name") or "",
                     "profile": (info or {}).get("profile") or "", "cells": cells,
                     "tests": outcomes, "health": health_of(info or {})})
    return {"metrics": metrics, "rows": rows}


def health_of(info: dict) -> dict:
    """A device's health entry (harness.fleet.health); a device that never dropped has
    none in the record: it connected once."""
    h = dict(info.get("health") or {})
    for key, default in (("connects", 1), ("drops", 0), ("reconnects", 0), ("retries", 0)):
        h.setdefault(key, default)
    h.setdefault("offline_since", None)
    h.setdefault("events", [])
    return h


def needs_attention(row: dict) -> bool:
    """A device section starts unfolded when something about the device went wrong."""
    bad_cell = any(c and c["verdict"] == "fail" for c in row["cells"])
    bad_test = any(row["tests"].get(o) for o in ("failed", "error", "dropped"))
    return bad_cell or bad_test or bool(row["health"]["drops"])


def _seconds(stamp: str | None) -> float | None:
    if not stamp:
        return None
    try:
        return _dt.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def timeline_svg(record: dict, width: int = 1000) -> str:
    """One lane per device, one bar per test from its start to its end (coloured by
    outcome), time from the run's start: where the devices ran in parallel and where one
    waited or dropped. Empty when the record has no test end times."""
    start = _seconds(record.get("started"))
    bars = []
    for t in record.get("tests") or []:
        end = _seconds(t.get("ended"))
        if end is None or start is None or t.get("device") is None:
            continue
        dur = max(0.0, float(t.get("duration_s") or 0.0))
        bars.append((str(t["device"]), max(0.0, end - dur - start), end - start, t))
    if not bars:
        return ""
    lanes = list(dict.fromkeys(b[0] for b in bars))
    span = max(b[2] for b in bars) or 1.0
    label_w, lane_h, top = 170, 22, 28
    height = top + lane_h * len(lanes) + 24
    sx = (width - label_w - 10) / span
    out = svg_open("timeline", width, height, "tests per device over the run",
                   "Tests per device over the run (s from the run's start)")
    for i, serial in enumerate(lanes):
        y = top + i * lane_h
        out.append(f'<text x="4" y="{y + 15}" font-size="11">{esc(serial[:28])}</text>')
    for serial, t0, t1, t in bars:
        y = top + lanes.index(serial) * lane_h + 3
        x = label_w + t0 * sx
        w = max(1.0, (t1 - t0) * sx)
        colour = _TEST_COLOURS.get(t.get("outcome"), "#bab0ac")
        out.append(f'<rect x="{fmt(x)}" y="{y}" width="{fmt(w)}" height="{lane_h - 6}" '
                   f'fill="{colour}" stroke="#fff"><title>{esc(t.get("nodeid"))}: '
                   f'{esc(t.get("outcome"))}, {fmt(t1 - t0)} s</title></rect>')
    axis_y = top + lane_h * len(lanes) + 14
    for k in range(6):
        v = span * k / 5
        out.append(f'<text x="{fmt(label_w + v * sx)}" y="{axis_y}" font-size="10" '
                   f'text-anchor="middle">{fmt(v)}</text>')
    out.append("</svg>")
    return "\n".join(out)
