"""Parse and validate the runner's telemetry (JSON lines, schema "swaplab.telemetry/2").

Schema 2 adds to 1 (both are read; a file is one or the other): per-face fields
(`per_face`, `faces_swapped`, `detector`, ...), "backend" lines (which backend each net runs
on, and why: a Vulkan request that fell back to the CPU says so), `stage_ns.transfer`
(host<->device copies of nets on Vulkan) and the summary's `backend` and `vulkan` (device,
driver, API version, memory heaps).

`parse_telemetry(text, source=...)` returns a `Telemetry` with the frames (warm-up and
measured), mode switches, the thermal fallback's other switches (frame rate, GPU), backend
lines and the summary; any violation raises TelemetryError naming
the source (device and file) and the line number. The text comes from a device, so it is
untrusted: nothing else may come out (no OverflowError from a huge number, RecursionError
from deep nesting, NaN/Infinity literals, non-UTF-8 bytes).
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

SCHEMA = "swaplab.telemetry/2"
#: every schema this parser reads (/2 only adds fields: per_face, faces_swapped, detector, ...)
SCHEMAS = ("swaplab.telemetry/1", SCHEMA)
#: per-face stage times (schema /2): the stages run once per face
FACE_STAGES = ("landmarks", "align", "warp", "color", "mask", "blend")
STAGES = ("decode", "convert", "enhance", "detect", "landmarks", "align", "warp", "color",
          "mask", "blend", "total")
#: stages added later: a runner from before them omits them, read as 0
#: (`convert`: YUV -> BGR of camera-like input)
LATER_STAGES = ("convert",)
# Stages a frame may carry beyond STAGES: `transfer` (schema 2) is inside `total`.
EXTRA_STAGES = ("transfer",)
BACKENDS = ("cpu", "vulkan", "auto")


class TelemetryError(ValueError):
    pass


# Integers are 64-bit in the runner (ns, kB, counts); anything longer is not telemetry and
# would overflow float conversions downstream (stage_ms, rss_mb).
_MAX_INT = 2**63 - 1
_MAX_INT_DIGITS = 20
# The schema nests two levels (frame -> stage_ns, summary -> build); this is generous and
# far below the interpreter's recursion limit.
_MAX_DEPTH = 32
_SHOWN = 80  # characters of a bad value or line quoted in an error


def _shown(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "..."


class _BadValue(ValueError):
    """A JSON value the schema never allows (raised from inside json.loads)."""


def _parse_constant(name: str) -> Any:
    raise _BadValue(f"{name} is not a number in telemetry")


def _parse_int(digits: str) -> int:
    if len(digits.lstrip("-")) > _MAX_INT_DIGITS or abs(int(digits)) > _MAX_INT:
        raise _BadValue(f"integer out of 64-bit range ({digits[:24]}...)")
    return int(digits)


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _BadValue(f"number out of range ({text[:24]})")
    return value


def _depth_ok(line: str) -> bool:
    """Nesting depth of brackets outside strings stays under _MAX_DEPTH (checked before
    json.loads, whose recursion would otherwise raise RecursionError)."""
    depth = 0
    in_string = escaped = False
    for ch in line:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            if depth > _MAX_DEPTH:
                return False
        elif ch in "]}":
            depth -= 1
    return True


def _load_line(line: str, where: str) -> Any:
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        raise TelemetryError(f"{where}: not UTF-8 text: {_shown(line)}") from None
    if not _depth_ok(line):
        raise TelemetryError(f"{where}: nested deeper than {_MAX_DEPTH} levels")
    try:
        return json.loads(line, parse_constant=_parse_constant, parse_int=_parse_int,
                          parse_float=_parse_float)
    except _BadValue as e:
        raise TelemetryError(f"{where}: {e}") from None
    except json.JSONDecodeError as e:
        raise TelemetryError(f"{where}: not JSON ({e.msg}): {_shown(line)}") from None
    except (ValueError, RecursionError) as e:  # belt and braces: never leak another type
        raise TelemetryError(f"{where}: not JSON ({type(e).__name__}): {_shown(line)}") from None


@dataclasses.dataclass
class Telemetry:
    frames: list[dict]           # every frame line, in order
    mode_switches: list[dict]
    summary: dict
    source: str
    #: the thermal fallback's fps / gpu steps (mode steps are `mode_switches`)
    fallback_switches: list[dict] = dataclasses.field(default_factory=list)
    backends: list[dict] = dataclasses.field(default_factory=list)  # schema 2 "backend" lines

    @property
    def measured(self) -> list[dict]:
        return [f for f in self.frames if not f["warmup"]]

    @property
    def warmup(self) -> list[dict]:
        return [f for f in self.frames if f["warmup"]]

    def stage_ms(self, include_warmup: bool = False) -> dict[str, list[float]]:
        """Per-stage times in ms of the measured frames (warm-up excluded by default)."""
        frames = self.frames if include_warmup else self.measured
        out = {s: [f["stage_ns"][s] / 1e6 for f in frames] for s in STAGES}
        for s in EXTRA_STAGES:
            if frames and all(s in f["stage_ns"] for f in frames):
                out[s] = [f["stage_ns"][s] / 1e6 for f in frames]
        return out

    def gpu_nets(self) -> list[str]:
        """Models that ran on Vulkan (schema 2 summary `backend`); [] for schema 1."""
        used = self.summary.get("backend") or {}
        return sorted(m for m, b in used.items() if b == "vulkan")

    def detection_rate(self) -> float | None:
        frames = self.measured
        if not frames:
            return None
        return sum(1 for f in frames if f["faces"] > 0) / len(frames)

    def frames_dropped(self) -> int | None:
        """Camera frames dropped during the measured frames (work longer than the frame
        interval); None without camera pacing."""
        if not self.summary.get("camera_fps"):
            return None
        return int(self.summary.get("frames_dropped") or 0)

    def rss_mb(self) -> list[float]:
        return [f["rss_kb"] / 1024.0 for f in self.measured if f.get("rss_kb") is not None]


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and abs(v) <= _MAX_INT


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
    "faces_swapped": ("integer >= 0", lambda v: _is_int(v) and v >= 0),
    "detector": ("string or null", lambda v: v is None or isinstance(v, str)),
    "detect_tiled": ("boolean", lambda v: isinstance(v, bool)),
    "light_luma": ("number or null", lambda v: v is None or _is_num(v)),
    "light_region": ("string or null", lambda v: v is None or v in ("faces", "frame")),
    "per_face": ("list of objects", lambda v: isinstance(v, list)
                 and all(isinstance(f, dict) for f in v)),
    "camera_frame": ("integer >= 0", lambda v: _is_int(v) and v >= 0),
    "dropped": ("integer >= 0", lambda v: _is_int(v) and v >= 0),
    "wait_ns": ("integer >= 0", lambda v: _is_int(v) and v >= 0),
    "camera_fps": ("number >= 0", lambda v: _is_num(v) and v >= 0),
}
_FACE_FIELDS = {
    "box": ("4 numbers", lambda v: isinstance(v, list) and len(v) == 4
            and all(_is_num(x) for x in v)),
    "score": ("number or null", lambda v: v is None or _is_num(v)),
    "detected": ("boolean", lambda v: isinstance(v, bool)),
    "selected": ("boolean", lambda v: isinstance(v, bool)),
    "swapped": ("boolean", lambda v: isinstance(v, bool)),
    "stage_ns": ("object", lambda v: isinstance(v, dict)),
}
_FACE_OPTIONAL = {
    "presence": ("number or null", lambda v: v is None or _is_num(v)),
    "smoothed": ("boolean", lambda v: isinstance(v, bool)),
    "color": ("object", lambda v: isinstance(v, dict)),
    "occluder": ("glasses|none|null", lambda v: v in ("glasses", "none", None)),
    "occluder_share": ("number in [0, 1] or null", lambda v: v is None or (_is_num(v) and 0 <= v <= 1)),
    "occluder_evidence": ("number >= 0 or null", lambda v: v is None or (_is_num(v) and v >= 0)),
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
    "faces_policy": ("all|largest|best", lambda v: v in ("all", "largest", "best")),
    "smoothing": ("string", lambda v: isinstance(v, str)),
    "detector_fallback": ("string or null", lambda v: v is None or isinstance(v, str)),
    "camera_fps": ("number >= 0", lambda v: _is_num(v) and v >= 0),
    "frames_dropped": ("integer >= 0", lambda v: _is_int(v) and v >= 0),
    "frames_dropped_total": ("integer >= 0", lambda v: _is_int(v) and v >= 0),
    "fallback_switches": ("integer >= 0", lambda v: _is_int(v) and v >= 0),
    "backend": ("object of model -> cpu|vulkan",
                lambda v: isinstance(v, dict) and all(b in ("cpu", "vulkan") for b in v.values())),
    "vulkan": ("object", lambda v: isinstance(v, dict)),
}
_BACKEND_FIELDS = {
    "net": ("string", lambda v: isinstance(v, str)),
    "model": ("string", lambda v: isinstance(v, str)),
    "requested": ("cpu|vulkan|auto", lambda v: v in BACKENDS),
    "used": ("cpu|vulkan", lambda v: v in ("cpu", "vulkan")),
    "reason": ("string", lambda v: isinstance(v, str)),
}
_BACKEND_OPTIONAL = {"fallback": ("boolean", lambda v: isinstance(v, bool))}
_FALLBACK_FIELDS = {
    "index": ("integer", lambda v: _is_int(v) and v >= 0),
    "rung": ("fps, gpu or mode", lambda v: v in ("fps", "gpu", "mode")),
    "from": ("string", lambda v: isinstance(v, str)),
    "to": ("string", lambda v: isinstance(v, str)),
    "skipped": ("boolean", lambda v: isinstance(v, bool)),
}
_FALLBACK_OPTIONAL = {
    "temp_c": ("number", _is_num),
    "reason": ("string", lambda v: isinstance(v, str)),
    "why": ("string", lambda v: isinstance(v, str)),
}


def _check(obj: dict, fields: dict, optional: dict, where: str) -> None:
    for key, (kind, ok) in fields.items():
        if key not in obj:
            raise TelemetryError(f"{where}: missing field {key!r} ({kind})")
        if not ok(obj[key]):
            raise TelemetryError(f"{where}: field {key!r}: expected {kind}, "
                                 f"got {_shown(obj[key])}")
    for key, (kind, ok) in optional.items():
        if key in obj and not ok(obj[key]):
            raise TelemetryError(f"{where}: field {key!r}: expected {kind}, "
                                 f"got {_shown(obj[key])}")


def _check_face(face: dict, where: str) -> None:
    _check(face, _FACE_FIELDS, _FACE_OPTIONAL, where)
    for s in FACE_STAGES:
        v = face["stage_ns"].get(s)
        if not (_is_int(v) and v >= 0):
            raise TelemetryError(f"{where}: stage_ns.{s}: expected integer >= 0, got {_shown(v)}")


def _decode(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        lineno = data.count(b"\n", 0, e.start) + 1
        raise TelemetryError(f"{source}:{lineno}: not UTF-8 (byte {data[e.start]:#04x} "
                             f"at offset {e.start})") from None


def parse_telemetry(text: str | bytes, source: str = "<telemetry>") -> Telemetry:
    """Validate every line; `source` names device and file in errors ("local:telemetry.jsonl")."""
    if isinstance(text, bytes):
        text = _decode(text, source)
    frames: list[dict] = []
    switches: list[dict] = []
    fallback: list[dict] = []
    backends: list[dict] = []
    summary: dict | None = None
    # JSON lines end at "\n" only: str.splitlines() would also split inside a string at
    # U+2028, U+0085 and friends, which JSON allows unescaped.
    for lineno, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        where = f"{source}:{lineno}"
        if summary is not None:
            raise TelemetryError(f"{where}: line after the summary line")
        obj = _load_line(line, where)
        if not isinstance(obj, dict):
            raise TelemetryError(f"{where}: expected a JSON object")
        if obj.get("schema") not in SCHEMAS:
            raise TelemetryError(f"{where}: schema {_shown(obj.get('schema'))}, "
                                 f"expected one of {', '.join(SCHEMAS)}")
        kind = obj.get("type")
        if kind == "frame":
            _check(obj, _FRAME_FIELDS, _FRAME_OPTIONAL, where)
            stages = obj["stage_ns"]
            for s in LATER_STAGES:
                stages.setdefault(s, 0)
            for s in STAGES + tuple(e for e in EXTRA_STAGES if e in stages):
                v = stages.get(s)
                if not (_is_int(v) and v >= 0):
                    raise TelemetryError(
                        f"{where}: stage_ns.{s}: expected integer >= 0, got {_shown(v)}")
            for i, face in enumerate(obj.get("per_face", ())):
                _check_face(face, f"{where}: per_face[{i}]")
            frames.append(obj)
        elif kind == "mode_switch":
            for key in ("index", "from", "to"):
                if key not in obj:
                    raise TelemetryError(f"{where}: mode_switch missing field {key!r}")
            switches.append(obj)
        elif kind == "fallback_switch":
            _check(obj, _FALLBACK_FIELDS, _FALLBACK_OPTIONAL, where)
            fallback.append(obj)
        elif kind == "backend":
            _check(obj, _BACKEND_FIELDS, _BACKEND_OPTIONAL, where)
            backends.append(obj)
        elif kind == "summary":
            _check(obj, _SUMMARY_FIELDS, _SUMMARY_OPTIONAL, where)
            summary = obj
        else:
            raise TelemetryError(f"{where}: unknown type {_shown(kind)}")
    if summary is None:
        raise TelemetryError(f"{source}: no summary line (runner killed or output cut?)")
    measured = sum(1 for f in frames if not f["warmup"])
    if measured != summary["frames"]:
        raise TelemetryError(f"{source}: summary says {summary['frames']} measured frames, "
                             f"found {measured} frame lines")
    return Telemetry(frames, switches, summary, source, fallback, backends)
