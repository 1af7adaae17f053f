"""Power, energy, temperature and latency-drift computations of a sustained run.

Pure functions, no I/O: they take sensor samples (the dicts of
`harness.devices.android.sampler.parse_samples`, or the same shape built on the host) and the
runner's telemetry frames, and return numbers with the reason when a number cannot be
computed. Nothing here invents a value: a metric without data is `None` plus a reason.

Sample dict (keys used here; all optional except `t_s`):
    t_s                 seconds (any origin; only differences matter)
    power_w             W drawn from the battery, positive while discharging (the sampler
                        already normalised unit and sign of `current_now`)
    battery_status      "Charging", "Discharging", ... (charging samples are excluded)
    temps_c             {zone name: degrees C}
    cpu_khz             {cpu number: kHz}
    thermal_status      0..6 (NONE..SHUTDOWN) or None
    rapl_energy_uj      cumulative RAPL counter (host), see `rapl_power_series`
    unknown             {metric: reason it could not be read}

Frame timeline: the runner reports per-frame stage times, not timestamps. `frame_times`
places frame ends on the run's clock so that the last frame ends at the summary's
`wall_ms` and frames follow each other by their `total` time (what is before the first
frame - model load, source face - is the remainder). Good to about one sample interval.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from harness.stats.descriptive import percentile

#: battery states in which `current_now` does not measure what the device draws
CHARGING_STATES = ("charging", "full")
#: modes of the runner's thermal fallback, coolest first
LADDER = ("tiny", "small", "base")


@dataclasses.dataclass
class Metric:
    """A computed value, or None with the reason (never a made-up number)."""

    value: float | None
    reason: str = ""
    samples: list[float] = dataclasses.field(default_factory=list)
    extra: dict = dataclasses.field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.value is not None


# --- settings from the profile -------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PowerSettings:
    """The profile's `[power]` table (an extension table of the profile; see
    docs/power.md). Durations in seconds; the `_virtual_` keys apply to devices with
    simulated sensors (SwapLab's virtual device), where runs last seconds; the `_host_`
    key to this host (kind "local")."""

    sustained_duration_s: float = 1800.0
    sustained_duration_virtual_s: float = 6.0
    sustained_duration_host_s: float = 20.0
    sample_interval_s: float = 1.0
    sample_interval_virtual_s: float = 0.5
    status_interval_s: float = 5.0
    drift_window_s: float = 60.0
    slowdown_fraction: float = 0.15
    freq_drop_fraction: float = 0.10
    thermal_limit_c: float | None = None
    thermal_hysteresis_c: float = 5.0
    thermal_check_every: int = 10
    thermal_zone: str | None = None
    fallback_duration_s: float = 600.0
    fallback_duration_virtual_s: float = 15.0
    heat_threads: int = 4
    heat_margin_c: float = 2.0
    heat_timeout_s: float = 900.0
    heat_timeout_virtual_s: float = 60.0

    def duration_s(self, simulated: bool, host: bool = False) -> float:
        """Sustained-run length: seconds on a simulated device, `_host_` on this host (a
        lab sanity run, not a phone measurement), else the phone's 30 minutes."""
        if simulated:
            return self.sustained_duration_virtual_s
        return self.sustained_duration_host_s if host else self.sustained_duration_s

    def interval_s(self, simulated: bool) -> float:
        return self.sample_interval_virtual_s if simulated else self.sample_interval_s

    def fallback_s(self, simulated: bool) -> float:
        return self.fallback_duration_virtual_s if simulated else self.fallback_duration_s

    def heat_timeout(self, simulated: bool) -> float:
        return self.heat_timeout_virtual_s if simulated else self.heat_timeout_s


#: unit and better direction of every metric of a sustained run (suites/test_power.py)
METRIC_UNITS: dict[str, tuple[str, str]] = {
    "power_avg_w": ("w", "lower"), "power_p95_w": ("w", "lower"),
    "energy_per_frame_mj": ("mj", "lower"), "temperature_max_c": ("c", "lower"),
    "temperature_rise_c": ("c", "lower"), "latency_drift_pct": ("pct", "lower"),
    "time_to_first_throttle_s": ("s", "higher"),
}


class PowerSettingsError(ValueError):
    pass


def power_settings(table: Mapping[str, Any] | None, where: str = "[power]") -> PowerSettings:
    """Validate a profile's `[power]` table; raises PowerSettingsError naming the key."""
    table = dict(table or {})
    fields = {f.name: f for f in dataclasses.fields(PowerSettings)}
    kw: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            raise PowerSettingsError(f"{where}: key 'power.{key}': unknown key; expected one of "
                                     + ", ".join(sorted(fields)))
        if key == "thermal_zone":
            if not isinstance(value, str) or not value:
                raise PowerSettingsError(f"{where}: key 'power.{key}': expected a zone type "
                                         f"name, got {value!r}")
            kw[key] = value
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PowerSettingsError(f"{where}: key 'power.{key}': expected number, got "
                                     f"{type(value).__name__} {value!r}")
        if key in ("thermal_check_every", "heat_threads"):
            if not isinstance(value, int) or value < 1:
                raise PowerSettingsError(f"{where}: key 'power.{key}': expected an integer "
                                         f">= 1, got {value!r}")
            kw[key] = value
            continue
        if value < 0 or (key.endswith("_s") and value == 0):
            raise PowerSettingsError(f"{where}: key 'power.{key}': expected a positive number, "
                                     f"got {value!r}")
        kw[key] = float(value)
    return PowerSettings(**kw)


# --- power and energy -----------------------------------------------------------------

def _charging(s: Mapping) -> bool:
    st = (s.get("battery_status") or "").strip().lower()
    return st in CHARGING_STATES


def power_series(samples: Sequence[Mapping]) -> tuple[list[tuple[float, float]], str]:
    """(t_s, W) of samples with a measured power, and why there are none (or what was
    left out). Samples taken while charging are excluded: USB power distorts current."""
    out: list[tuple[float, float]] = []
    charging = 0
    reasons: list[str] = []
    for s in samples:
        if _charging(s):
            charging += 1
            continue
        p = s.get("power_w")
        if p is not None and math.isfinite(p):
            out.append((float(s["t_s"]), float(p)))
    if not samples:
        return out, "no sensor samples"
    if charging:
        reasons.append(f"{charging} of {len(samples)} samples taken while charging (excluded: "
                       "USB power distorts battery current)")
    if not out:
        unknown: dict[str, str] = {}
        for s in samples:
            unknown.update(s.get("unknown") or {})
        for key in ("battery_current_ua", "battery_voltage_v", "rapl_energy_uj"):
            if key in unknown:
                reasons.append(f"{key}: {unknown[key]}")
        if not reasons:
            reasons.append("the device reports no battery current/voltage or energy counter")
    return out, "; ".join(reasons)


def rapl_power_series(readings: Sequence[tuple[float, float | None]],
                      max_energy_range_uj: float | None = None) -> list[tuple[float, float]]:
    """Power (W) between consecutive readings of a cumulative RAPL counter (µJ).

    A counter that goes down wrapped at `max_energy_range_uj` (the zone's
    max_energy_range_uj); without that range such an interval is dropped."""
    out: list[tuple[float, float]] = []
    prev: tuple[float, float] | None = None
    for t, e in readings:
        if e is None:
            prev = None
            continue
        if prev is not None and t > prev[0]:
            de = e - prev[1]
            if de < 0:
                de = de + max_energy_range_uj if max_energy_range_uj else None
            if de is not None:
                out.append((t, de / 1e6 / (t - prev[0])))
        prev = (t, e)
    return out


def energy_j(series: Sequence[tuple[float, float]]) -> float | None:
    """Energy (J) of a (t_s, W) series by the trapezoid rule; None for < 2 points."""
    if len(series) < 2:
        return None
    e = 0.0
    for (t0, p0), (t1, p1) in itertools.pairwise(series):
        if t1 > t0:
            e += (p0 + p1) / 2 * (t1 - t0)
    return e


def power_metrics(samples: Sequence[Mapping], frames_measured: int) -> dict[str, Metric]:
    """power_avg_w (mean of the samples), power_p95_w, energy_per_frame_mj.

    Energy per frame = mean power x (time the samples span) / frames measured in it."""
    series, why = power_series(samples)
    if not series:
        none = Metric(None, why)
        return {"power_avg_w": none, "power_p95_w": none, "energy_per_frame_mj": none}
    values = [p for _, p in series]
    avg = math.fsum(values) / len(values)
    p95 = percentile(sorted(values), 95)
    out = {"power_avg_w": Metric(avg, why, values), "power_p95_w": Metric(p95, why, values)}
    e = energy_j(series)
    if e is None or frames_measured <= 0:
        out["energy_per_frame_mj"] = Metric(None, "fewer than 2 power samples" if e is None
                                            else "no measured frames")
    else:
        span = series[-1][0] - series[0][0]
        out["energy_per_frame_mj"] = Metric(e * 1000.0 / frames_measured, why,
                                            extra={"energy_j": e, "span_s": span})
    return out


# --- temperature ----------------------------------------------------------------------

def max_temp_series(samples: Sequence[Mapping]) -> list[tuple[float, float]]:
    """(t_s, hottest zone in C) of each sample that has a temperature."""
    return [(float(s["t_s"]), max(s["temps_c"].values())) for s in samples
            if s.get("temps_c")]


def temperature_metrics(samples: Sequence[Mapping]) -> dict[str, Metric]:
    """temperature_max_c (samples: hottest zone per sample), temperature_rise_c (hottest
    zone, last sample minus first; per zone in `extra`)."""
    series = max_temp_series(samples)
    if not series:
        unknown: dict[str, str] = {}
        for s in samples:
            unknown.update({k: v for k, v in (s.get("unknown") or {}).items()
                            if k.startswith("temp:")})
        why = ("; ".join(f"{k[5:]}: {v}" for k, v in sorted(unknown.items()))
               or "no readable thermal zone")
        none = Metric(None, why if samples else "no sensor samples")
        return {"temperature_max_c": none, "temperature_rise_c": none}
    values = [v for _, v in series]
    first = next(s["temps_c"] for s in samples if s.get("temps_c"))
    last = next(s["temps_c"] for s in reversed(samples) if s.get("temps_c"))
    per_zone = {z: round(last[z] - first[z], 3) for z in first if z in last}
    return {"temperature_max_c": Metric(max(values), "", values),
            "temperature_rise_c": Metric(values[-1] - values[0], "",
                                         extra={"start_c": values[0], "end_c": values[-1],
                                                "per_zone_c": per_zone})}


# --- frames on the run's clock ----------------------------------------------------------

def frame_times(frames: Sequence[Mapping], wall_ms: float | None) -> list[float]:
    """End time (s from the runner's start) of each frame (warm-up included, in order);
    a camera-paced frame starts after its wait for the camera (`wait_ns`)."""
    totals = [f["stage_ns"]["total"] / 1e9 for f in frames]
    waits = [(f.get("wait_ns") or 0) / 1e9 for f in frames]
    busy = math.fsum(totals) + math.fsum(waits)
    lead = max(0.0, (wall_ms / 1000.0 - busy)) if wall_ms else 0.0
    out, t = [], lead
    for d, w in zip(totals, waits):
        t += w + d
        out.append(t)
    return out


def latency_drift(times: Sequence[float], latencies_ms: Sequence[float],
                  window_s: float = 60.0) -> Metric:
    """Frame-latency drift: median of the last window vs the first, in percent.

    The window is `window_s` (a minute), shrunk to a third of the run when the run is
    shorter than three windows, so first and last never overlap."""
    if len(times) != len(latencies_ms):
        raise ValueError("times and latencies differ in length")
    if len(times) < 2:
        return Metric(None, f"{len(times)} measured frame(s): need at least 2")
    t0, t1 = times[0], times[-1]
    span = t1 - t0
    w = min(window_s, span / 3) if span > 0 else 0
    first = [v for t, v in zip(times, latencies_ms) if t <= t0 + w] or [latencies_ms[0]]
    last = [v for t, v in zip(times, latencies_ms) if t >= t1 - w] or [latencies_ms[-1]]
    m0 = percentile(sorted(first), 50)
    m1 = percentile(sorted(last), 50)
    if m0 <= 0:
        return Metric(None, "first-window median latency is 0")
    return Metric((m1 - m0) / m0 * 100.0, "",
                  extra={"window_s": round(w, 3), "first_median_ms": m0, "last_median_ms": m1,
                         "first_n": len(first), "last_n": len(last)})


def latency_by_mode(frames: Iterable[Mapping], flags: Sequence[bool] | None = None
                    ) -> dict[str, list[float]]:
    """Measured-frame totals (ms) per mode; with `flags` (per frame, True = thermally
    affected) affected frames go to "<mode>:affected"."""
    out: dict[str, list[float]] = {}
    frames = list(frames)
    for i, f in enumerate(frames):
        if f.get("warmup"):
            continue
        key = f["mode"]
        if flags is not None and flags[i]:
            key += ":affected"
        out.setdefault(key, []).append(f["stage_ns"]["total"] / 1e6)
    return out


# --- host: samples from SensorReadings -------------------------------------------------

def sample_from_readings(t_s: float, readings: Iterable[Any],
                         rapl_uj: float | None = None, rapl_reason: str = "",
                         thermal_status: int | None = None) -> dict:
    """A sample dict (the sampler's shape) from `Device.read_sensors()` readings."""
    s: dict[str, Any] = {"t_s": t_s, "temps_c": {}, "battery_current_ua": None,
                         "battery_voltage_v": None, "power_w": None, "battery_pct": None,
                         "battery_status": None, "cpu_khz": {}, "vmhwm_kb": None,
                         "unknown": {}, "thermal_status": thermal_status,
                         "rapl_energy_uj": rapl_uj}
    for r in readings:
        name, value = r.name, r.value
        if value is None:
            s["unknown"][name] = r.reason or "unreadable"
        elif name.endswith("_temp_c"):
            s["temps_c"][name[:-7]] = float(value)
        elif name.startswith("cpu") and name.endswith("_freq_khz") and name[3:-9].isdigit():
            s["cpu_khz"][int(name[3:-9])] = int(value)
        elif name == "battery_power_w":
            s["power_w"] = float(value)
    if rapl_uj is None:
        s["unknown"]["rapl_energy_uj"] = rapl_reason or "no RAPL energy counter"
    return s


def fill_rapl_power(samples: list[dict], max_energy_range_uj: float | None = None) -> None:
    """Set `power_w` of host samples from their cumulative RAPL counter (in place); the
    first sample has no interval and keeps None."""
    readings = [(s["t_s"], s.get("rapl_energy_uj")) for s in samples]
    by_t = dict(rapl_power_series(readings, max_energy_range_uj))
    for s in samples:
        if s["t_s"] in by_t and s.get("power_w") is None:
            s["power_w"] = by_t[s["t_s"]]
            s["power_source"] = "rapl"
