"""The HTML report of one run: verdicts first, then per-stage breakdown, latency
distributions, swapped output frames, tests and environment. jinja2 with autoescape on;
charts come from harness.report.svg (pure functions that escape their own text)."""

from __future__ import annotations

import html as _html
from collections import OrderedDict
from pathlib import Path

import jinja2
from markupsafe import Markup

from harness.record.recorder import NOT_CHECKED
from harness.record.units import format_value
from harness.report import svg
from harness.report.base import SECTIONS
from harness.report.devices import comparison_rows, device_views
from harness.report.fleet import needs_attention, overview, timeline_svg
from harness.report.links import artifact_href
from harness.runner.telemetry import STAGES

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _env() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              autoescape=True, undefined=jinja2.ChainableUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def _short_test(nodeid: str) -> str:
    name = nodeid.split("::")[-1]
    return name.split("[")[0]


def _variant(m: dict) -> str:
    return (m.get("extra") or {}).get("variant") or ""


def verdict_rows(record: dict) -> list[dict]:
    devices = record.get("devices", {})
    rows = []
    for m in record.get("measurements", []):
        t = m.get("target")
        s = m.get("summary") or {}
        op = "≤" if m.get("direction") == "lower" else "≥"
        rows.append({
            "device": m["device"],
            "device_name": (devices.get(m["device"]) or {}).get("name", ""),
            "profile": m.get("profile") or "",
            "test": _short_test(m["test"]),
            "nodeid": m["test"],
            "metric": m["metric"],
            "variant": _variant(m),
            "statistic": t["statistic"] if t else "p50" if s.get("n", 0) > 1 else "value",
            "value": format_value(t["measured"] if t else s.get("p50"), m.get("unit", "")),
            "target": f"{op} {format_value(t['value'], m.get('unit', ''))} ({t['key']})" if t else "",
            "verdict": t["verdict"] if t else "recorded",
            "reason": (t or {}).get("reason", ""),
            "n": s.get("n", 0),
            "p50": format_value(s.get("p50"), m.get("unit", "")),
            "p95": format_value(s.get("p95"), m.get("unit", "")),
            "p99": format_value(s.get("p99"), m.get("unit", "")),
        })
    order = {"fail": 0, "pass": 1, NOT_CHECKED: 2, "none": 3, "recorded": 4}
    rows.sort(key=lambda r: (order.get(r["verdict"], 9), r["device"], r["metric"], r["variant"]))
    return rows


def stage_chart(record: dict) -> str:
    groups: OrderedDict[tuple, dict] = OrderedDict()
    for m in record.get("measurements", []):
        stage = (m.get("extra") or {}).get("stage")
        if not stage or stage == "total" or not m.get("summary", {}).get("n"):
            continue
        key = (m["device"], _variant(m), _short_test(m["test"]))
        groups.setdefault(key, {})[stage] = m["summary"]["mean"]
    rows = []
    for (device, variant, test), parts in groups.items():
        ordered = {s: parts[s] for s in STAGES if s in parts}
        ordered.update({s: v for s, v in parts.items() if s not in ordered})
        rows.append((f"{device} · {test} · {variant}" if variant else f"{device} · {test}",
                     ordered))
    return svg.stacked_bars(rows, unit="ms", title="Mean time per stage (measured frames)")


def latency_charts(record: dict) -> list[dict]:
    out = []
    for m in record.get("measurements", []):
        if m["metric"] != "latency_total_ms" or not m.get("samples"):
            continue
        s = m["summary"]
        markers = {"p50": s.get("p50"), "p95": s.get("p95")}
        if m.get("target"):
            markers["target"] = m["target"]["value"]
        title = f"{m['device']} · {_short_test(m['test'])} · {_variant(m)} · end to end"
        out.append({"title": title, "svg": Markup(svg.histogram_cdf(
            m["samples"], unit="ms", title=title, markers=markers, width=520)),
            "n": s.get("n")})
    return out


def images(record: dict, run_dir: Path) -> list[dict]:
    out = []
    for a in record.get("artifacts", []):
        if a.get("kind") not in ("output_frame", "screenshot"):
            continue
        href = artifact_href(run_dir, a.get("path"))
        if href is None:
            continue  # only files inside the run folder
        out.append({"path": href, "device": a.get("device") or "",
                    "caption": " · ".join(str(x) for x in (a.get("device"), a.get("mode"),
                                                         a.get("label")) if x)})
    return out


def _with_stages(views: list[dict], record: dict) -> list[dict]:
    """Each device view gets its own per-stage stacked bars."""
    for v in views:
        ms = [m for m in record.get("measurements", []) if m.get("device") == v["serial"]]
        v["stages"] = Markup(stage_chart({"measurements": ms})) if ms else ""
    return views


def _folding(views: list[dict], fleet: dict) -> list[dict]:
    """A device section starts open when it is the only one or something went wrong."""
    attention = {r["serial"]: needs_attention(r) for r in fleet["rows"]}
    for v in views:
        v["open"] = len(views) == 1 or attention.get(v["serial"], False)
    return views


def render_html(record: dict, run_dir: Path) -> str:
    rows = verdict_rows(record)
    fleet = overview(record, rows)
    counts = {k: sum(1 for r in rows if r["verdict"] == k)
              for k in ("pass", "fail", NOT_CHECKED, "recorded")}
    tests = record.get("tests", [])
    test_counts: dict[str, int] = {}
    for t in tests:
        test_counts[t["outcome"]] = test_counts.get(t["outcome"], 0) + 1
    sections = []
    for provider in SECTIONS:
        try:
            got = provider(record, Path(run_dir))
        except Exception as e:  # noqa: BLE001 - a broken extension must not lose the report
            got = ("Section error",
                   f"<p>{_html.escape(type(e).__name__)}: {_html.escape(str(e))}</p>")
        if got:
            sections.append({"title": got[0], "html": Markup(got[1])})
    status = record.get("effective_status") or record.get("status")
    env = record.get("environment", {})
    return _env().get_template("report.html.j2").render(
        record=record, run_id=record.get("run_id", ""), status=status,
        verdicts=[r for r in rows if r["verdict"] in ("pass", "fail", NOT_CHECKED)],
        measurements=rows, counts=counts, tests=tests, test_counts=test_counts,
        stage_svg=Markup(stage_chart(record)), latency=latency_charts(record),
        images=images(record, Path(run_dir)), environment=env,
        devices=record.get("devices", {}), sections=sections,
        artifacts=[{"path": a["path"], "href": artifact_href(run_dir, a.get("path"))}
                   for a in record.get("artifacts", [])
                   if a.get("kind") == "telemetry" and artifact_href(run_dir, a.get("path"))],
        comparison=record.get("comparison") or {}, comparison_rows=comparison_rows(record),
        device_views=_folding(_with_stages(device_views(record, Path(run_dir), rows), record),
                              fleet),
        fleet=fleet, fleet_timeline=Markup(timeline_svg(record)),
        has_trace=any(a.get("kind") == "telemetry" for a in record.get("artifacts", [])),
    )
