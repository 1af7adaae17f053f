"""Context for the report's comparison verdicts and per-device sections: targets,
baseline-vs-candidate latency distributions, per-frame latency over time, trends across
runs with change points (from the history), quality images and raw files.

Everything returned here is data or SVG made by the escaping chart functions; the
template autoescapes the rest."""

from __future__ import annotations

import json
import math
from pathlib import Path

from markupsafe import Markup

from harness.history.store import history_db_for_run, samples_for, trend
from harness.record.recorder import NOT_CHECKED
from harness.record.units import format_value
from harness.report import charts
from harness.report.links import artifact_file, artifact_href
from harness.report.timeseries import timeseries_svg
from harness.runner.telemetry import TelemetryError, parse_telemetry

VERDICT_ORDER = {"regressed": 0, "unknown": 1, "improved": 2, "same": 3}
QUALITY_ROLES = ("source", "target", "output", "baseline", "candidate", "golden", "diff")
TREND_METRICS = ("latency_total_ms", "memory_peak_mb", "cold_start_ms", "latency_blend_ms")
MAX_TRENDS = 8


def _short(nodeid: str) -> str:
    return str(nodeid or "").split("::")[-1]


def _pct(v) -> str:
    return f"{v:+.1%}" if isinstance(v, (int, float)) and math.isfinite(v) else ""


def comparison_rows(record: dict) -> list[dict]:
    comp = record.get("comparison") or {}
    rows = []
    for r in comp.get("rows") or []:
        unit = r.get("unit") or ""
        ci = (f"{_pct(r.get('ci_low'))} .. {_pct(r.get('ci_high'))}"
              if r.get("ci_low") is not None and r.get("ci_high") is not None else "")
        rows.append({**r, "test_short": _short(r.get("test")),
                     "base": format_value(r.get("median_base"), unit)
                     if r.get("median_base") is not None else "",
                     "cand": format_value(r.get("median_cand"), unit)
                     if r.get("median_cand") is not None else "",
                     "change_txt": _pct(r.get("change")), "ci_txt": ci,
                     "p_txt": f"{r['p_value']:.2g}" if r.get("p_value") is not None else "",
                     "thr_txt": f"{r['threshold']:.0%}" if r.get("threshold") is not None
                     else ""})
    rows.sort(key=lambda r: (VERDICT_ORDER.get(r["verdict"], 9), r["device"], r["metric"]))
    return rows


def _db(run_dir: Path) -> Path | None:
    db = history_db_for_run(run_dir)
    return db if db.is_file() else None


def _telemetry_doc(path: Path) -> dict | None:
    """A swaplab.timeseries/1-like document from one telemetry file (time = cumulative
    frame time), for harness.report.timeseries."""
    try:
        tel = parse_telemetry(path.read_text(encoding="utf-8"), source=str(path))
    except (OSError, UnicodeDecodeError, TelemetryError):
        return None
    t = 0.0
    frames, samples, t_of = [], [], {}
    for f in tel.frames:
        total_ms = (f.get("stage_ns") or {}).get("total", 0) / 1e6
        t += total_ms / 1000.0
        t_of[f["index"]] = t
        frames.append({"index": f["index"], "t_s": round(t, 4), "warmup": f.get("warmup"),
                       "mode": f.get("mode"), "total_ms": total_ms, "temp_c": f.get("temp_c")})
        if f.get("temp_c") is not None and not f.get("warmup"):
            samples.append({"t_s": round(t, 4), "temp_max_c": f["temp_c"], "power_w": None})
    switches = [dict(sw, t_s=round(t_of.get(sw.get("index"), 0.0), 4))
                for sw in tel.mode_switches]
    return {"schema": "swaplab.timeseries/1", "frames": frames, "samples": samples,
            "mode_switches": switches}


def _timeline(record: dict, run_dir: Path, serial: str) -> list[dict]:
    out = []
    for a in record.get("artifacts") or []:
        if a.get("device") != serial or not artifact_file(run_dir, a.get("path")):
            continue
        test = _short(a.get("test"))
        if a.get("kind") == "telemetry" and test.startswith(("test_latency", "test_mode")):
            doc = _telemetry_doc(artifact_file(run_dir, a["path"]))
            title = f"{test} · {a.get('label') or ''} · per-frame latency"
        elif a.get("kind") == "samples" and a.get("timeseries"):
            try:
                doc = json.loads(artifact_file(run_dir, a["path"]).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            title = f"{test} · {a.get('label') or ''} · latency, power, temperature, mode"
        else:
            continue
        svg = timeseries_svg(doc, title) if isinstance(doc, dict) else ""
        if svg:
            out.append({"title": title, "svg": Markup(svg)})
            freq = charts.cpu_freq_chart(doc, f"{test} · CPU frequency")
            if freq:
                out.append({"title": f"{test} · CPU frequency", "svg": Markup(freq)})
        if len(out) >= 6:
            break
    return out


def _overlays(record: dict, run_dir: Path, serial: str, db: Path | None) -> list[dict]:
    comp = record.get("comparison") or {}
    base = comp.get("baseline_run")
    out = []
    for m in record.get("measurements") or []:
        if m.get("device") != serial or m.get("metric") != "latency_total_ms" \
                or not m.get("samples"):
            continue
        ab = (m.get("extra") or {}).get("ab")
        if ab:
            continue  # A/B arms: shown pooled below
        b_samples = []
        if base and db is not None:
            try:
                b_samples = samples_for(db, base, serial, m["metric"], m.get("test"))
            except Exception:  # noqa: BLE001 - a missing baseline just means no overlay
                b_samples = []
        if not b_samples:
            continue
        title = f"{_short(m.get('test'))} · latency vs baseline"
        out.append({"title": title, "svg": Markup(charts.distribution_overlay(
            b_samples, m["samples"], unit=m.get("unit") or "ms", title=title,
            labels=(f"baseline {base}", "this run")))})
    arms: dict[tuple, dict[str, list[float]]] = {}
    for m in record.get("measurements") or []:
        ab = (m.get("extra") or {}).get("ab") or {}
        if m.get("device") == serial and m.get("metric") == "latency_total_ms" and \
                ab.get("arm") in ("baseline", "candidate"):
            arms.setdefault((m.get("test"),), {"baseline": [], "candidate": []})[
                ab["arm"]].extend(m.get("samples") or [])
    for (test,), d in arms.items():
        title = f"{_short(test)} · A/B interleaved latency"
        out.append({"title": title, "svg": Markup(charts.distribution_overlay(
            d["baseline"], d["candidate"], unit="ms", title=title,
            labels=("A/B baseline build", "A/B candidate build")))})
    return out


def _trends(record: dict, serial: str, db: Path | None) -> list[dict]:
    if db is None:
        return []
    comp = record.get("comparison") or {}
    highlight = [record.get("run_id"), comp.get("baseline_run")]
    seen, out = set(), []
    ms = [m for m in record.get("measurements") or [] if m.get("device") == serial]
    ms.sort(key=lambda m: (m.get("metric") not in TREND_METRICS, not m.get("target")))
    for m in ms:
        key = (m.get("test"), m.get("metric"))
        if key in seen or not (m.get("metric") in TREND_METRICS or m.get("target")):
            continue
        seen.add(key)
        try:
            tr = trend(db, m["metric"], device=serial, test=m.get("test"), limit=60)
        except Exception:  # noqa: BLE001, S112 - no trend is no reason to lose the report
            continue
        if len(tr["points"]) < 2:
            continue
        title = f"{m['metric']} · {_short(m.get('test'))}"
        out.append({"title": title, "change_points": tr["change_points"],
                    "svg": Markup(charts.trend_chart(
                        tr["points"], tr["change_points"], tr["segments"],
                        unit=m.get("unit") or "", title=title, highlight=highlight))})
        if len(out) >= MAX_TRENDS:
            break
    return out


def _quality(record: dict, run_dir: Path, serial: str) -> list[dict]:
    groups: dict[tuple, dict] = {}
    for a in record.get("artifacts") or []:
        if a.get("kind") != "quality_image" or a.get("device") != serial:
            continue
        if not artifact_file(run_dir, a.get("path", "")):
            continue
        key = (a.get("test"), a.get("variant"))
        g = groups.setdefault(key, {"test": _short(a.get("test")),
                                    "variant": a.get("variant") or "", "images": {}})
        g["images"][a.get("role") or "image"] = artifact_href(run_dir, a["path"])
    out = []
    for g in groups.values():
        imgs = g["images"]
        if "panel" in imgs:
            shown = [("panel: " + " | ".join(r for r in QUALITY_ROLES if r in imgs),
                      imgs["panel"])]
        else:
            shown = [(r, imgs[r]) for r in QUALITY_ROLES if r in imgs]
            shown += [(r, p) for r, p in imgs.items() if r not in QUALITY_ROLES]
        out.append({**g, "shown": [{"role": r, "path": p} for r, p in shown],
                    "all": [{"role": r, "path": p} for r, p in imgs.items()]})
    return out


def _raw_files(record: dict, run_dir: Path, serial: str) -> list[dict]:
    return [{"path": a["path"], "href": artifact_href(run_dir, a["path"]), "kind": a.get("kind"),
             "label": a.get("label") or ""}
            for a in record.get("artifacts") or []
            if a.get("device") == serial and a.get("kind") in ("telemetry", "samples")
            and artifact_file(run_dir, a.get("path", ""))]


def device_views(record: dict, run_dir: Path | str, verdict_rows: list[dict]) -> list[dict]:
    """One dict per device of the record (and devices only seen in measurements)."""
    run_dir = Path(run_dir)
    db = _db(run_dir)
    devices = dict(record.get("devices") or {})
    for m in record.get("measurements") or []:
        devices.setdefault(m.get("device"), {})
    comp = comparison_rows(record)
    out = []
    for serial, info in devices.items():
        if serial is None:
            continue
        out.append({
            "serial": serial, "name": (info or {}).get("name") or "",
            "profile": (info or {}).get("profile") or "",
            "targets": [r for r in verdict_rows if r["device"] == serial
                        and r["verdict"] in ("pass", "fail", NOT_CHECKED)],
            "comparison": [r for r in comp if r.get("device") == serial],
            "overlays": _overlays(record, run_dir, serial, db),
            "timeline": _timeline(record, run_dir, serial),
            "trends": _trends(record, serial, db),
            "quality": _quality(record, run_dir, serial),
            "raw": _raw_files(record, run_dir, serial),
        })
    return out
