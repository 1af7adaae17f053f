"""Perfetto / Chrome trace export of the per-frame stages: `<run>/trace.json`.

Chrome Trace Event format (JSON object form), opens in ui.perfetto.dev and
chrome://tracing:
  * one process (pid) per device, named by its serial and name;
  * one thread (tid) per runner invocation (telemetry artifact), named
    "<test> · <label>"; invocations are laid out one after another on the time axis;
  * per frame a complete event (ph "X", cat "frame") spanning `stage_ns.total`, with the
    stages nested inside it in pipeline order (cat "stage"; the rest of the total that
    no stage accounts for is "other"); ts/dur in microseconds;
  * mode switches as instant events (ph "i").
"""

from __future__ import annotations

import json
from pathlib import Path

from harness.files import atomic_write_json
from harness.report import register_reporter
from harness.report.base import Reporter
from harness.report.links import artifact_file
from harness.runner.telemetry import STAGES, TelemetryError, parse_telemetry

TRACE_NAME = "trace.json"
GAP_US = 1000.0  # between two runner invocations on one lane



def build_trace(record: dict, run_dir: Path | str) -> dict:
    """The trace document of a run (telemetry artifacts that cannot be read are skipped
    and listed in metadata.skipped)."""
    run_dir = Path(run_dir)
    devices = record.get("devices") or {}
    pids: dict[str, int] = {}
    events: list[dict] = []
    skipped: list[str] = []
    lane_end: dict[int, float] = {}
    tid_next: dict[int, int] = {}
    for a in record.get("artifacts") or []:
        if a.get("kind") != "telemetry":
            continue
        path = artifact_file(run_dir, a.get("path", ""))
        if path is None:
            skipped.append(str(a.get("path")))
            continue
        try:
            tel = parse_telemetry(path.read_text(encoding="utf-8"), source=str(path))
        except (OSError, UnicodeDecodeError, TelemetryError) as e:
            skipped.append(f"{a.get('path')}: {e}")
            continue
        serial = str(a.get("device") or "?")
        if serial not in pids:
            pid = len(pids) + 1
            pids[serial] = pid
            name = (devices.get(serial) or {}).get("name") or ""
            events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                           "args": {"name": f"{serial} {name}".strip()}})
            events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0,
                           "args": {"sort_index": pid}})
        pid = pids[serial]
        tid = tid_next.get(pid, 0) + 1
        tid_next[pid] = tid
        test = str(a.get("test") or "").split("::")[-1]
        label = a.get("label") or Path(a.get("path", "")).name
        events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                       "args": {"name": f"{test} · {label}"}})
        events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                       "args": {"sort_index": tid}})
        t = lane_end.get(pid, 0.0)
        start_of: dict[int, float] = {}
        for f in tel.frames:
            ns = f.get("stage_ns") or {}
            total = float(ns.get("total") or 0) / 1e3
            start_of[f["index"]] = t
            events.append({"ph": "X", "cat": "frame", "name": f"frame {f['index']}"
                           + (" (warm-up)" if f.get("warmup") else ""),
                           "pid": pid, "tid": tid, "ts": round(t, 3), "dur": round(total, 3),
                           "args": {"index": f["index"], "warmup": f.get("warmup"),
                                    "mode": f.get("mode"), "faces": f.get("faces"),
                                    "detected": f.get("detected"),
                                    "enhanced": f.get("enhanced"),
                                    "temp_c": f.get("temp_c"), "rss_kb": f.get("rss_kb"),
                                    "source_frame": f.get("source_frame")}})
            s = t
            for stage in STAGES:
                if stage == "total":
                    continue
                d = float(ns.get(stage) or 0) / 1e3
                if d <= 0:
                    continue
                d = min(d, t + total - s)
                if d <= 0:
                    break
                events.append({"ph": "X", "cat": "stage", "name": stage, "pid": pid,
                               "tid": tid, "ts": round(s, 3),
                               "dur": round(round(s + d, 3) - round(s, 3), 3)})
                s += d
            if t + total - s > 1.0:
                events.append({"ph": "X", "cat": "stage", "name": "other", "pid": pid,
                               "tid": tid, "ts": round(s, 3), "dur": round(t + total - s, 3)})
            t += total
        for sw in tel.mode_switches:
            events.append({"ph": "i", "s": "t", "cat": "mode_switch",
                           "name": f"mode {sw.get('from')} -> {sw.get('to')}", "pid": pid,
                           "tid": tid, "ts": round(start_of.get(sw.get("index"), t), 3),
                           "args": {k: sw.get(k) for k in ("index", "temp_c", "reason")}})
        lane_end[pid] = t + GAP_US
    return {"traceEvents": events, "displayTimeUnit": "ms",
            "metadata": {"run_id": record.get("run_id"), "source": "swaplab telemetry",
                         "skipped": skipped}}


def write_trace(record: dict, run_dir: Path | str) -> Path | None:
    """Write `<run>/trace.json`; None (nothing written) when the run kept no telemetry."""
    doc = build_trace(record, run_dir)
    if not any(e["ph"] == "X" for e in doc["traceEvents"]):
        return None
    path = Path(run_dir) / TRACE_NAME
    return atomic_write_json(path, doc, indent=None, separators=(",", ":"))


class TraceReporter(Reporter):
    name = "perfetto-trace"

    def write(self, record: dict, run_dir: Path) -> Path | None:
        return write_trace(record, run_dir)


def register() -> None:
    register_reporter(TraceReporter())


if __name__ == "__main__":  # python -m harness.report.trace RUN_DIR
    import sys

    from harness.record.run_record import load_record
    out = write_trace(load_record(sys.argv[1]), sys.argv[1])
    print(out or "no telemetry in this run")
    print(json.dumps({"ok": out is not None}))
