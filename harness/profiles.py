"""Device profiles: `device_profiles/<name>.toml`, loaded with tomllib and validated.

A profile is data: the pytest marker of the device class, rules that match a connected
device to it, the targets its suites assert, and how the runner is run on it. Every
validation error names the file, the key and the expected type.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from harness.devices.base import Device
from harness.power.fallback import FallbackSettingsError, fallback_settings
from harness.power.metrics import PowerSettingsError, power_settings
from harness.runner.placement import PlacementError, placement_args

PLATFORMS = ("linux", "android", "ios")
#: ABIs a virtual device can be ([virtual] abi)
VIRTUAL_ABIS = ("x86_64", "arm64-v8a")
MODES = ("tiny", "small", "base", "auto")
#: `[run] input`: what the runner's target frames are. camera: NV21 frames prepared once on
#: the host, handed over at `camera_fps` (a phone's camera pipeline; the default on phone
#: platforms); images: image files decoded every frame (the default on linux); video: a
#: video file (only the linux build has a video decoder)
INPUTS = ("camera", "images", "video")
PHONE_PLATFORMS = ("android", "ios")
#: the runner's --backend values per net (runner/src/backend.h); [run] backend takes one of
#: these or "detect=B,landmarks=B,seg=B"
BACKENDS = ("cpu", "vulkan", "auto")
BACKEND_NETS = ("detect", "landmarks", "seg")


class ProfileError(ValueError):
    """A profile file is invalid. `str()` reads `FILE: key 'K': expected T, got V`."""

    def __init__(self, file: Path | str, key: str | None, message: str) -> None:
        self.file = str(file)
        self.key = key
        self.detail = message
        where = f"{self.file}: key '{key}': " if key else f"{self.file}: "
        super().__init__(where + message)


# --- targets --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TargetSpec:
    """What a target key in `[targets]` means: which metric, which statistic of its
    samples, and which direction passes (lower: value <= target; higher: value >= target)."""

    key: str
    metric: str
    statistic: str  # a key of harness.stats.descriptive.summarize(): p50, p95, max, mean, ...
    unit: str
    direction: str  # "lower" or "higher" is better
    description: str


TARGETS: dict[str, TargetSpec] = {}


def register_target(spec: TargetSpec) -> None:
    """Extension point for other parts (e.g. statistics) that add target keys."""
    TARGETS[spec.key] = spec


for _spec in (
    TargetSpec("latency_p50_ms", "latency_total_ms", "p50", "ms", "lower", "median end-to-end frame time"),
    TargetSpec("latency_p95_ms", "latency_total_ms", "p95", "ms", "lower", "p95 end-to-end frame time"),
    TargetSpec("latency_p99_ms", "latency_total_ms", "p99", "ms", "lower", "p99 end-to-end frame time"),
    TargetSpec("blend_p95_ms", "latency_blend_ms", "p95", "ms", "lower", "p95 time of the blend stage"),
    TargetSpec("detect_p95_ms", "latency_detect_ms", "p95", "ms", "lower", "p95 time of face detection"),
    TargetSpec("cold_start_ms", "cold_start_ms", "p50", "ms", "lower",
               "median model load + source face + first frame over fresh processes"),
    TargetSpec("model_load_ms", "model_load_ms", "p50", "ms", "lower", "median model load time"),
    TargetSpec("memory_peak_mb", "memory_peak_mb", "max", "mb", "lower", "peak resident memory"),
    TargetSpec("power_avg_w", "power_avg_w", "mean", "w", "lower", "average power over a sustained run"),
    TargetSpec("temperature_max_c", "temperature_max_c", "max", "c", "lower", "highest temperature"),
    TargetSpec("low_light_detection_rate_min", "low_light_detection_rate_enhanced", "mean", "ratio",
               "higher", "face detection rate on dark frames with the Retinex pass"),
):
    register_target(_spec)


def targets_for_metric(metric: str) -> list[TargetSpec]:
    return [t for t in TARGETS.values() if t.metric == metric]


# --- the profile ----------------------------------------------------------------------


#: match key -> device properties consulted (first present wins); "kind"/"serial"/"abi"
#: match the device attributes of that name.
MATCH_KEYS: dict[str, tuple[str, ...]] = {
    "soc_model": ("ro.soc.model",),
    "board_platform": ("ro.board.platform",),
    "product_model": ("ro.product.model", "ProductType"),
    "kind": (),
    "serial": (),
    "abi": (),
}
#: Strength of a match by key: a SoC model beats a board platform beats a product model.
MATCH_PRIORITY = {"serial": 6, "soc_model": 5, "board_platform": 4, "product_model": 3,
                  "abi": 2, "kind": 1}


#: the runner's `--faces` and `--small-faces` choices
FACE_POLICIES = ("all", "largest", "best")
SMALL_FACES = ("full-range", "tiles", "always", "always-tiles", "off")


@dataclasses.dataclass(frozen=True)
class RunSettings:
    threads: int = 1
    cpu_list: str | None = None
    warmup_frames: int = 5
    measured_frames: int = 50
    mode: str = "small"
    cold_start_runs: int = 3
    cooldown_temperature_c: float | None = None
    cooldown_timeout_s: float = 300.0
    timeout_s: float = 600.0
    #: Android gate: below this battery level (percent) device tests skip
    min_battery_pct: float = 25.0
    #: rounds of an A/B interleaved run (suites/test_ab.py); a noisier device needs more
    #: to see a 5% change (docs/statistics.md); --ab-rounds overrides it
    ab_rounds: int = 40
    #: which target faces the runner swaps (`--faces`, runner/README.md): all | largest | best
    faces: str = "all"
    #: small/far faces: the full-range detector when the mode's finds none (`--small-faces`;
    #: "always-tiles" for group photos, docs/quality.md "Group photo of six")
    small_faces: str = "full-range"
    #: INPUTS; load_profile defaults it by platform
    input: str = "images"
    #: the camera's frame rate for `input = "camera"` (the runner's frame clock)
    camera_fps: float = 30.0
    #: swap_runner --placement values from the `[cpu]` table (harness.runner.placement)
    placement: tuple[str, ...] = ()
    #: the runner's --backend for the suites' runs: [targets] apply to this backend
    #: (suites/test_gpu.py measures both and asserts only the one named here)
    backend: str = "cpu"


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    marker: str
    description: str
    platform: str
    match: Mapping[str, tuple[str, ...]]
    targets: Mapping[str, float]
    run: RunSettings
    virtual: Mapping[str, Any]
    path: Path
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def target_for(self, metric: str) -> tuple[TargetSpec, float] | None:
        """The first target this profile sets on `metric` (None: record only)."""
        for spec in targets_for_metric(metric):
            if spec.key in self.targets:
                return spec, self.targets[spec.key]
        return None

    def matches(self, device: Device) -> tuple[int, str] | None:
        """(priority, reason) of the strongest rule matching `device`, else None."""
        best: tuple[int, str] | None = None
        for key, wanted in self.match.items():
            if not wanted:
                continue
            if key in ("kind", "serial", "abi"):
                values = [getattr(device, key, None)]
            else:
                values = [device.properties.get(p) for p in MATCH_KEYS[key]]
            for v in values:
                if v is not None and str(v).strip().lower() in {w.lower() for w in wanted}:
                    cand = (MATCH_PRIORITY[key], f"{key} = {v}")
                    if best is None or cand[0] > best[0]:
                        best = cand
        return best


_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean",
               dict: "table", list: "array"}


def _describe(value: Any) -> str:
    t = _TYPE_NAMES.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{t} {text}"


class _Checker:
    def __init__(self, file: Path) -> None:
        self.file = file

    def fail(self, key: str | None, message: str) -> ProfileError:
        return ProfileError(self.file, key, message)

    def get(self, table: Mapping[str, Any], key: str, prefix: str, kind: str,
            required: bool = False, default: Any = None) -> Any:
        full = f"{prefix}{key}"
        if key not in table:
            if required:
                raise self.fail(full, f"missing; expected {kind}")
            return default
        value = table[key]
        ok = {
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool),
            "table": isinstance(value, dict),
            "array of strings": isinstance(value, list) and all(isinstance(v, str) for v in value),
        }[kind]
        if not ok:
            raise self.fail(full, f"expected {kind}, got {_describe(value)}")
        return value

    def unknown(self, table: Mapping[str, Any], allowed: Iterable[str], prefix: str) -> None:
        allowed = set(allowed)
        for key in table:
            if key not in allowed:
                raise self.fail(f"{prefix}{key}", f"unknown key{_did_you_mean(key, allowed)}; "
                                                  f"expected one of {', '.join(sorted(allowed))}")

    def finite(self, value: Any, key: str = "") -> None:
        """No NaN or infinity anywhere (TOML allows `nan` and `inf`): a NaN target passes
        every comparison and cannot be written to a JSON record."""
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(key or None, f"expected a finite number, got {value}")
        if isinstance(value, dict):
            for k, v in value.items():
                self.finite(v, f"{key}.{k}" if key else k)
        elif isinstance(value, list):
            for i, v in enumerate(value):
                self.finite(v, f"{key}[{i}]")


def _did_you_mean(key: str, allowed: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(allowed), n=1, cutoff=0.75)
    return f" (did you mean '{close[0]}'?)" if close else ""


_MARKER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CPU_LIST_RE = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")
_TOP_KEYS = ("name", "marker", "description", "platform", "match", "targets", "run", "virtual",
             "cpu")


def _check_regression(c: _Checker, table: Mapping[str, Any]) -> None:
    """The `[regression]` extension table (harness.history.store.thresholds_from_profiles):
    `threshold = 0.03` for every metric, `METRIC = 0.05` for one; a fraction in (0, 1)
    or a percent string like "5%"; `min_history = 5`: runs of history before a two-run
    comparison may say "regressed" (harness.stats.trust.MIN_HISTORY)."""
    for key, v in table.items():
        full = f"regression.{key}"
        if key == "min_history":  # runs of history before a two-run "regressed"
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise c.fail(full, f"expected an integer >= 2 (runs), got {_describe(v)}")
            continue
        if key != "threshold" and not re.fullmatch(r"[a-z][a-z0-9_]*", key):
            raise c.fail(full, "expected 'threshold' or a metric name like latency_total_ms")
        if isinstance(v, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*%\s*", v):
            v = float(v.strip()[:-1]) / 100.0
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise c.fail(full, f"expected a fraction (0.05) or a percent string ('5%'), "
                               f"got {_describe(v)}")
        if not 0 < float(v) < 1:
            raise c.fail(full, f"expected a relative threshold between 0 and 1, got {v}")


def _check_input(c: _Checker, run_kw: dict, platform: str) -> None:
    """`[run] input` and `camera_fps`; a phone platform defaults to camera-like input."""
    run_kw.setdefault("input", "camera" if platform in PHONE_PLATFORMS else "images")
    if run_kw["input"] not in INPUTS:
        raise c.fail("run.input", f"expected one of {', '.join(INPUTS)}, got {run_kw['input']!r}")
    if run_kw["input"] == "video" and platform != "linux":
        raise c.fail("run.input", f"video input needs the linux build's video decoder; "
                                  f"platform {platform!r} runs static builds without one "
                                  "(use camera or images)")
    if "camera_fps" in run_kw:
        if not 0 < run_kw["camera_fps"] <= 1000:
            raise c.fail("run.camera_fps", "expected frames per second > 0 and <= 1000, "
                                           f"got {run_kw['camera_fps']}")
        run_kw["camera_fps"] = float(run_kw["camera_fps"])


def backend_problem(value: str) -> str | None:
    """Why `value` is not a runner --backend ("cpu", "vulkan", "auto" or
    "detect=B,landmarks=B,seg=B"), or None."""
    if "=" not in value:
        return None if value in BACKENDS else f"expected one of {', '.join(BACKENDS)} or NET=B,..."
    for part in value.split(","):
        net, _, b = part.partition("=")
        if net not in BACKEND_NETS:
            return f"unknown net {net!r} (expected {', '.join(BACKEND_NETS)})"
        if b not in BACKENDS:
            return f"{net}: expected one of {', '.join(BACKENDS)}, got {b!r}"
    return None


def _check_virtual(c: _Checker, table: Mapping[str, Any]) -> None:
    """The `[virtual]` table: what SwapLab's virtual device built from this profile is.
    `gpu = true`: the phone has a GPU, so device programs see the host's Vulkan driver
    (lavapipe, on the host's CPU: such GPU figures are marked simulated)."""
    c.unknown(table, ("abi", "properties", "sensors", "gpu"), "virtual.")
    if "gpu" in table and not isinstance(table["gpu"], bool):
        raise c.fail("virtual.gpu", f"expected boolean, got {_describe(table['gpu'])}")
    abi = c.get(table, "abi", "virtual.", "string", default="x86_64")
    if abi not in VIRTUAL_ABIS:
        raise c.fail("virtual.abi", f"expected one of {', '.join(VIRTUAL_ABIS)}, got {abi!r}")
    props = c.get(table, "properties", "virtual.", "table", default={})
    for k in props:
        c.get(props, k, "virtual.properties.", "string")
    c.get(table, "sensors", "virtual.", "table", default={})


def _check_power(c: _Checker, table: Mapping[str, Any]) -> None:
    """The `[power]` table, as the power and thermal suites read it."""
    try:
        power_settings(table, where="[power]")
    except PowerSettingsError as e:
        raise c.fail(None, str(e)) from None


def _check_thermal(c: _Checker, table: Mapping[str, Any]) -> None:
    """The `[thermal]` table: the runner's fallback ladder (harness.power.fallback)."""
    try:
        fallback_settings(table)
    except FallbackSettingsError as e:
        raise c.fail(None, str(e)) from None


def _check_quality(c: _Checker, table: Mapping[str, Any]) -> None:
    """The `[quality]` table, as the quality suite reads it."""
    # lazy: harness.quality's package imports OpenCV and scikit-image
    from harness.quality.thresholds import DEFAULT_THRESHOLDS
    try:
        DEFAULT_THRESHOLDS.override(table, "[quality]")
    except ValueError as e:
        raise c.fail(None, str(e)) from None


#: extension tables of a profile -> the check a run applies to them, so that
#: `swaplab profiles check` fails where a run would
EXTENSION_CHECKS: dict[str, Callable[[_Checker, Mapping[str, Any]], None]] = {
    "regression": _check_regression,
    "power": _check_power,
    "quality": _check_quality,
    "thermal": _check_thermal,
}


def load_profile(path: Path | str) -> Profile:
    """Load and validate one profile file; raises ProfileError."""
    path = Path(path)
    c = _Checker(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise c.fail(None, f"invalid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise c.fail(None, f"cannot read: {e}") from None
    c.finite(data)

    name = c.get(data, "name", "", "string", required=True)
    marker = c.get(data, "marker", "", "string", required=True)
    if not _MARKER_RE.match(marker):
        raise c.fail("marker", f"expected a Python identifier (pytest marker), got {marker!r}")
    description = c.get(data, "description", "", "string", default="")
    platform = c.get(data, "platform", "", "string", required=True)
    if platform not in PLATFORMS:
        raise c.fail("platform", f"expected one of {', '.join(PLATFORMS)}, got {platform!r}")

    match_t = c.get(data, "match", "", "table", required=True)
    c.unknown(match_t, MATCH_KEYS, "match.")
    match = {k: tuple(c.get(match_t, k, "match.", "array of strings")) for k in match_t}
    if not any(match.values()):
        raise c.fail("match", "expected at least one non-empty rule "
                              f"({', '.join(MATCH_KEYS)})")

    targets_t = c.get(data, "targets", "", "table", default={})
    targets: dict[str, float] = {}
    for key in targets_t:
        if key not in TARGETS:
            raise c.fail(f"targets.{key}",
                         f"unknown target; expected one of {', '.join(sorted(TARGETS))}")
        value = float(c.get(targets_t, key, "targets.", "number"))
        if value < 0:
            raise c.fail(f"targets.{key}", f"expected a number >= 0, got {value}")
        targets[key] = value

    run_t = c.get(data, "run", "", "table", required=True)
    fields = {f.name: f for f in dataclasses.fields(RunSettings) if f.name != "placement"}
    c.unknown(run_t, fields, "run.")
    kinds = {"threads": "integer", "cpu_list": "string", "warmup_frames": "integer",
             "measured_frames": "integer", "mode": "string", "cold_start_runs": "integer",
             "cooldown_temperature_c": "number", "cooldown_timeout_s": "number",
             "timeout_s": "number", "min_battery_pct": "number", "ab_rounds": "integer",
             "faces": "string", "small_faces": "string",
             "input": "string", "camera_fps": "number", "backend": "string"}
    run_kw = {}
    for key in run_t:
        run_kw[key] = c.get(run_t, key, "run.", kinds[key])
    for key, minimum in (("threads", 1), ("warmup_frames", 0), ("measured_frames", 1),
                         ("cold_start_runs", 1), ("ab_rounds", 8)):
        if key in run_kw and run_kw[key] < minimum:
            raise c.fail(f"run.{key}", f"expected an integer >= {minimum}, got {run_kw[key]}")
    if "cpu_list" in run_kw:
        if run_kw["cpu_list"] == "":
            run_kw["cpu_list"] = None
        elif not _CPU_LIST_RE.match(run_kw["cpu_list"]):
            raise c.fail("run.cpu_list", "expected a CPU list like \"4-7\" or \"0,2\", "
                                         f"got {run_kw['cpu_list']!r}")
    if "backend" in run_kw and (problem := backend_problem(run_kw["backend"])):
        raise c.fail("run.backend", f"{problem}, got {run_kw['backend']!r}")
    if run_kw.get("mode", "small") not in MODES:
        raise c.fail("run.mode", f"expected one of {', '.join(MODES)}, got {run_kw['mode']!r}")
    for key, choices in (("faces", FACE_POLICIES), ("small_faces", SMALL_FACES)):
        if key in run_kw and run_kw[key] not in choices:
            raise c.fail(f"run.{key}", f"expected one of {', '.join(choices)}, got {run_kw[key]!r}")
    if "min_battery_pct" in run_kw and not 0 <= run_kw["min_battery_pct"] <= 100:
        raise c.fail("run.min_battery_pct",
                     f"expected a percentage from 0 to 100, got {run_kw['min_battery_pct']}")
    for key in ("cooldown_timeout_s", "timeout_s"):
        if key in run_kw and not run_kw[key] > 0:
            raise c.fail(f"run.{key}", f"expected a number of seconds > 0, got {run_kw[key]}")
    for key in ("cooldown_temperature_c", "cooldown_timeout_s", "timeout_s", "min_battery_pct"):
        if key in run_kw:
            run_kw[key] = float(run_kw[key])
    _check_input(c, run_kw, platform)
    try:
        run_kw["placement"] = placement_args(data.get("cpu"))
    except PlacementError as e:
        raise c.fail(None, str(e)) from None
    run = RunSettings(**run_kw)

    virtual = c.get(data, "virtual", "", "table", default={})
    if virtual:
        _check_virtual(c, virtual)

    extra = {k: v for k, v in data.items() if k not in _TOP_KEYS}
    for k, v in extra.items():
        # a typo ([targts]) must not silently turn targets off: only known tables pass
        if k not in EXTENSION_CHECKS:
            known = [*_TOP_KEYS, *EXTENSION_CHECKS]
            raise c.fail(k, f"unknown {'table' if isinstance(v, dict) else 'key'}"
                            f"{_did_you_mean(k, known)}; expected one of "
                            f"{', '.join(sorted(known))}")
    for table, check in EXTENSION_CHECKS.items():
        if table in extra:
            check(c, extra[table])
    return Profile(name=name, marker=marker, description=description, platform=platform,
                   match=match, targets=targets, run=run, virtual=virtual, path=path,
                   extra=extra)


def load_profiles(folder: Path | str) -> dict[str, Profile]:
    """All `*.toml` in `folder` by name; raises ProfileError on the first bad file or on
    duplicate names."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ProfileError(folder, None, "profile folder does not exist")
    profiles: dict[str, Profile] = {}
    for path in sorted(folder.glob("*.toml")):
        p = load_profile(path)
        if p.name in profiles:
            raise ProfileError(path, "name",
                               f"duplicate profile name {p.name!r} (also in {profiles[p.name].path})")
        profiles[p.name] = p
    return profiles


def match_profile(device: Device, profiles: Mapping[str, Profile]) -> tuple[Profile | None, str]:
    """The profile whose strongest rule matches `device` best (ties: by name)."""
    best: tuple[int, str, Profile, str] | None = None
    for p in profiles.values():
        m = p.matches(device)
        if m is None:
            continue
        cand = (m[0], p.name, p, m[1])
        if best is None or cand[0] > best[0] or (cand[0] == best[0] and cand[1] < best[1]):
            best = cand
    if best is None:
        return None, "no profile rule matches"
    return best[2], best[3]


DEFAULT_PROFILES_DIR_NAME = "device_profiles"
