"""Parse and validate the runner's telemetry (JSON lines, schema "swaplab.telemetry/1").

`parse_telemetry(text, source=...)` returns a `Telemetry` with the frames (warm-up and
measured), mode switches and the summary; any violation raises TelemetryError naming
the source (device and file) and the line number.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

SCHEMA = "swaplab.telemetry/1"
STAGES = ("decode", "enhance", "detect", "landmarks", "align", "warp", "color", "mask",
          "blend", "total")


class TelemetryError(ValueError):
    pass


@dataclasses.dataclass
class Telemetry:
    frames: list[dict]           # every frame line, in order
    mode_switches: list[dict]
    summary: dict
    source: str

    @property
    def measured(self) -> list[dict]:
        return [f for f in self.frames if not f["warmup"]]

    @property
    def warmup(self) -> list[dict]:
        return [f for f in self.frames if f["warmup"]]

    def stage_ms(self, include_warmup: bool = False) -> dict[str, list[float]]:
        """Per-stage times in ms of the measured frames (warm-up excluded by default)."""
        frames = self.frames if include_warmup else self.measured
        return {s: [f["stage_ns"][s] / 1e6 for f in frames] for s in STAGES}

    def detection_rate(self) -> float | None:
        frames = self.measured
        if not frames:
            return None
        return sum(1 for f in frames if f["faces"] > 0) / len(frames)

    def rss_mb(self) -> list[float]:
        return [f["rss_kb"] / 1024.0 for f in self.measured if f.get("rss_kb") is not None]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


_FRAME_FIELDS = {
    "index": ("integer", lambda v: _is_int(v) and v >= 0),
    "warmup": ("boolean", lambda v: isinstance(v, bool)),
    "faces": ("integer >= 0", lambda v: _is_int(v) and v >= 0),
    "mode": ("string", lambda v: isinstance(v, str)),
    "stage_ns": ("object", lambda v: isinstance(v, dict)),
}
_FRAME_OPTIONAL = {
    "source_frame": ("integer", _is_int),
    "enhanced": ("boolean", lambda v: isinstance(v, bool)),
    "detected": ("boolean", lambda v: isinstance(v, bool)),
    "de_before": ("number or null", lambda v: v is None or _is_num(v)),
    "de_after": ("number or null", lambda v: v is None or _is_num(v)),
    "tone_compensated": ("boolean or null", lambda v: v is None or isinstance(v, bool)),
    "rss_kb": ("integer or null", lambda v: v is None or (_is_int(v) and v >= 0)),
    "temp_c": ("number or null", lambda v: v is None or _is_num(v)),
}
_SUMMARY_FIELDS = {
    "build": ("object", lambda v: isinstance(v, dict)),
    "mode": ("string", lambda v: isinstance(v, str)),
    "model_load_ms": ("number", _is_num),
    "first_frame_ms": ("number or null", lambda v: v is None or _is_num(v)),
    "peak_rss_kb": ("integer", lambda v: _is_int(v) and v >= 0),
    "frames": ("integer", lambda v: _is_int(v) and v >= 0),
    "warmup_frames": ("integer", lambda v: _is_int(v) and v >= 0),
}
_SUMMARY_OPTIONAL = {
    "blend": ("string", lambda v: isinstance(v, str)),
    "frames_without_face": ("integer", _is_int),
    "mode_switches": ("integer", _is_int),
    "wall_ms": ("number", _is_num),
    "source_ms": ("number", _is_num),
}


def _check(obj: dict, fields: dict, optional: dict, where: str) -> None:
    for key, (kind, ok) in fields.items():
        if key not in obj:
            raise TelemetryError(f"{where}: missing field {key!r} ({kind})")
        if not ok(obj[key]):
            raise TelemetryError(f"{where}: field {key!r}: expected {kind}, got {obj[key]!r}")
    for key, (kind, ok) in optional.items():
        if key in obj and not ok(obj[key]):
            raise TelemetryError(f"{where}: field {key!r}: expected {kind}, got {obj[key]!r}")


def parse_telemetry(text: str, source: str = "<telemetry>") -> Telemetry:
    """Validate every line; `source` names device and file in errors ("local:telemetry.jsonl")."""
    frames: list[dict] = []
    switches: list[dict] = []
    summary: dict | None = None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        if summary is not None:
            raise TelemetryError(f"{where}: line after the summary line")
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise TelemetryError(f"{where}: not JSON ({e.msg}): {line[:80]!r}") from None
        if not isinstance(obj, dict):
            raise TelemetryError(f"{where}: expected a JSON object")
        if obj.get("schema") != SCHEMA:
            raise TelemetryError(f"{where}: schema {obj.get('schema')!r}, expected {SCHEMA!r}")
        kind = obj.get("type")
        if kind == "frame":
            _check(obj, _FRAME_FIELDS, _FRAME_OPTIONAL, where)
            stages = obj["stage_ns"]
            for s in STAGES:
                v = stages.get(s)
                if not (_is_int(v) and v >= 0):
                    raise TelemetryError(
                        f"{where}: stage_ns.{s}: expected integer >= 0, got {v!r}")
            frames.append(obj)
        elif kind == "mode_switch":
            for key in ("index", "from", "to"):
                if key not in obj:
                    raise TelemetryError(f"{where}: mode_switch missing field {key!r}")
            switches.append(obj)
        elif kind == "summary":
            _check(obj, _SUMMARY_FIELDS, _SUMMARY_OPTIONAL, where)
            summary = obj
        else:
            raise TelemetryError(f"{where}: unknown type {kind!r}")
    if summary is None:
        raise TelemetryError(f"{source}: no summary line (runner killed or output cut?)")
    measured = sum(1 for f in frames if not f["warmup"])
    if measured != summary["frames"]:
        raise TelemetryError(f"{source}: summary says {summary['frames']} measured frames, "
                             f"found {measured} frame lines")
    return Telemetry(frames, switches, summary, source)
