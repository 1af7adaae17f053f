"""Device side of the power and thermal suites: long runs of swap_runner with sensors
sampled throughout, cool-down with a time limit, RAPL on the host, the thermal zone the
runner's fallback reads, and the time-series artifact. The computations are in
harness.power.metrics and harness.power.throttle (pure).

Sampling: on Android devices (phones, emulators, the virtual device) the on-device
sampler runs alongside (`AndroidDevice.run_with_sampler`: one shell loop, no adb call per
sample) and a host thread polls `dumpsys thermalservice` for the thermal status. On other
devices a host thread polls `Device.read_sensors()` (and RAPL on this host).
"""

from __future__ import annotations

import dataclasses
import glob
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from harness.devices.android import parsers as AP
from harness.devices.base import Device, RunResult
from harness.files import atomic_write_json
from harness.power import metrics as PW
from harness.runner.invoke import PreparedRunner, check_run, run_swap, runner_argv
from harness.runner.telemetry import Telemetry

TIMESERIES_SCHEMA = "swaplab.timeseries/1"

RAPL_GLOB = "/sys/class/powercap/intel-rapl:*"


# --- RAPL (this host) ---------------------------------------------------------------------

def rapl_domains(pattern: str = RAPL_GLOB) -> tuple[list[tuple[str, float | None]], str]:
    """Top-level RAPL package domains ((energy_uj path, max range)), and why none."""
    paths = sorted(p for p in glob.glob(pattern) if p.count(":") == 1)
    if not paths:
        return [], "no RAPL powercap domain (/sys/class/powercap/intel-rapl:*) on this host"
    out, why = [], ""
    for p in paths:
        f = os.path.join(p, "energy_uj")
        try:
            with open(f) as fh:
                int(fh.read().strip())
        except (OSError, ValueError) as e:
            why = f"{f}: {getattr(e, 'strerror', None) or e}"
            continue
        rng = None
        try:
            with open(os.path.join(p, "max_energy_range_uj")) as fh:
                rng = float(fh.read().strip())
        except (OSError, ValueError):
            pass
        out.append((f, rng))
    return out, ("" if out else f"RAPL energy not readable ({why})")


def read_rapl(domains: Sequence[tuple[str, float | None]]) -> float | None:
    total = 0.0
    for f, _ in domains:
        try:
            with open(f) as fh:
                total += int(fh.read().strip())
        except (OSError, ValueError):
            return None
    return total


# --- thermal zones and cool-down --------------------------------------------------------------

def thermal_zones(device: Device) -> list[tuple[str, str]]:
    """(temp file path on the device, zone type) of the device's thermal zones."""
    if hasattr(device, "shell2"):
        _, out, _ = device.shell2("for z in /sys/class/thermal/thermal_zone*; do "
                                  "[ -r \"$z/temp\" ] && echo \"$z/temp $(cat $z/type)\"; done; true")
        zones = []
        for line in out.splitlines():
            path, _, ztype = line.strip().partition(" ")
            if path.endswith("/temp"):
                zones.append((path, ztype.strip()))
        return zones
    if device.kind == "local":
        zones = []
        for z in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
            try:
                ztype = Path(z, "type").read_text().strip()
                int(Path(z, "temp").read_text().strip())
            except (OSError, ValueError):
                continue
            zones.append((f"{z}/temp", ztype))
        return zones
    return []


def pick_zone(zones: Sequence[tuple[str, str]], want: str | None) -> tuple[str, str] | None:
    """The zone named `want`, else the first CPU zone, else the first zone."""
    if want:
        for z in zones:
            if z[1] == want:
                return z
        return None
    for z in zones:
        if "cpu" in z[1].lower() or "soc" in z[1].lower() or "x86_pkg" in z[1].lower():
            return z
    return zones[0] if zones else None


# --- sampled runs -----------------------------------------------------------------------------

@dataclasses.dataclass
class SampledRun:
    argv: tuple[str, ...]
    result: RunResult
    telemetry: Telemetry
    samples: list[dict]
    telemetry_path: Path | None
    sampling: dict                   # how the samples were taken (for the record)


def _status_poller(device: Device, interval_s: float, t0: float, out: list, stop: threading.Event):
    while True:
        try:
            st = device.thermal_service().status
            out.append((time.monotonic() - t0, st if isinstance(st, int) else None))
        except Exception:  # noqa: BLE001 - a failed poll is a missing point, not an error
            out.append((time.monotonic() - t0, None))
        if stop.wait(interval_s):
            return


def _host_poller(device: Device, interval_s: float, t0: float, out: list, stop: threading.Event,
                 rapl: Sequence[tuple[str, float | None]], rapl_reason: str):
    while True:
        t = time.monotonic() - t0
        try:
            readings = device.read_sensors()
        except Exception:  # noqa: BLE001
            readings = []
        out.append(PW.sample_from_readings(t, readings, read_rapl(rapl) if rapl else None,
                                           rapl_reason))
        if stop.wait(interval_s):
            return


def run_sampled(prepared: PreparedRunner, *, label: str, mode: str, frames: int,
                warmup: int | None = None, extra: Sequence[str] = (),
                interval_s: float = 1.0, status_interval_s: float = 5.0,
                timeout_s: float | None = None, artifacts_dir: Path | None = None) -> SampledRun:
    """swap_runner with sensors sampled throughout; raises RunnerError naming the device."""
    device = prepared.device
    argv = runner_argv(prepared, mode=mode, frames=frames, warmup=warmup, extra=extra)
    timeout = timeout_s or prepared.settings.timeout_s
    stop = threading.Event()
    t0 = time.monotonic()
    status: list = []
    host_samples: list = []
    sampling: dict = {"interval_s": interval_s, "simulated": bool(device.simulated)}
    if hasattr(device, "run_with_sampler"):
        poller = threading.Thread(target=_status_poller, daemon=True,
                                  args=(device, status_interval_s, t0, status, stop))
        poller.start()
        try:
            result, samples = device.run_with_sampler(argv, timeout, env=prepared.env,
                                                      interval_s=interval_s)
        finally:
            stop.set()
            poller.join(timeout=60)
        sampling.update({"sampler": "on-device shell loop", "thermal_status":
                         f"dumpsys thermalservice every {status_interval_s:g} s"})
        if samples:
            ts0 = samples[0]["t_s"]
            for s in samples:
                rel = s["t_s"] - ts0
                prior = [st for t, st in status if t <= rel + interval_s]
                s["thermal_status"] = prior[-1] if prior else (status[0][1] if status else None)
    else:
        rapl, rapl_reason = rapl_domains() if device.kind == "local" else \
            ([], f"{device.kind} device: no energy counter the harness can read")
        poller = threading.Thread(target=_host_poller, daemon=True,
                                  args=(device, interval_s, t0, host_samples, stop, rapl,
                                        rapl_reason))
        poller.start()
        try:
            result = device.run(argv, timeout_s=timeout, env=prepared.env)
        finally:
            stop.set()
            poller.join(timeout=60)
        samples = host_samples
        rng = next((r for _, r in rapl if r), None)
        PW.fill_rapl_power(samples, rng)
        sampling.update({"sampler": "host thread polling read_sensors()",
                         "energy": "RAPL" if rapl else rapl_reason})
    telemetry, telemetry_path = check_run(device, argv, result, label, artifacts_dir)
    return SampledRun(tuple(argv), result, telemetry, samples, telemetry_path, sampling)


def frames_for(seconds: float, ms_per_frame: float, minimum: int = 10,
               maximum: int = 1_000_000) -> int:
    """Measured frames that fill `seconds` at `ms_per_frame`."""
    if ms_per_frame <= 0 or not math.isfinite(ms_per_frame):
        return minimum
    return int(min(maximum, max(minimum, math.ceil(seconds * 1000.0 / ms_per_frame))))


# --- the time-series artifact -----------------------------------------------------------------

def timeseries(device: Device, run: SampledRun, frame_end_s: Sequence[float],
               frame_flags: Sequence[Sequence[str]] | None, throttle: dict | None,
               extra: dict | None = None) -> dict:
    """The JSON document kept in the run folder: samples, frames and mode switches on one
    clock (s from the first sample)."""
    samples = run.samples
    ts0 = samples[0]["t_s"] if samples else 0.0
    frames = run.telemetry.frames
    index_t = {f["index"]: frame_end_s[i] for i, f in enumerate(frames)}
    doc = {
        "schema": TIMESERIES_SCHEMA, "device": device.serial, "simulated": bool(device.simulated),
        "sampling": run.sampling, "argv": list(run.argv),
        "samples": [{"t_s": round(s["t_s"] - ts0, 3),
                     "power_w": s.get("power_w"),
                     "battery_current_ua": s.get("battery_current_ua"),
                     "battery_voltage_v": s.get("battery_voltage_v"),
                     "battery_status": s.get("battery_status"),
                     "temp_max_c": max(s["temps_c"].values()) if s.get("temps_c") else None,
                     "temps_c": s.get("temps_c") or {},
                     "cpu_khz": {str(k): v for k, v in (s.get("cpu_khz") or {}).items()},
                     "thermal_status": s.get("thermal_status"),
                     "unknown": s.get("unknown") or {}} for s in samples],
        "frames": [{"index": f["index"], "t_s": round(frame_end_s[i], 4), "warmup": f["warmup"],
                    "mode": f["mode"], "total_ms": f["stage_ns"]["total"] / 1e6,
                    "temp_c": f.get("temp_c"), "camera_fps": f.get("camera_fps"),
                    "dropped": f.get("dropped"),
                    "thermally_affected": bool(frame_flags[i]) and (throttle or {}).get(
                        "cause") == "thermal" if frame_flags else False,
                    "throttle": list(frame_flags[i]) if frame_flags else []}
                   for i, f in enumerate(frames)],
        "mode_switches": [dict(sw, t_s=round(index_t.get(sw["index"], 0.0), 4))
                          for sw in run.telemetry.mode_switches],
        "fallback_switches": [dict(sw, t_s=round(index_t.get(sw["index"], 0.0), 4))
                              for sw in run.telemetry.fallback_switches],
        "throttle": throttle,
    }
    doc.update(extra or {})
    return doc


def write_json(path: Path, doc: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_json(path, doc)


# --- helpers shared by the power and thermal suites ----------------------------------------

def settings_of(profile) -> PW.PowerSettings:
    """The profile's `[power]` table, validated (PowerSettingsError names file and key)."""
    return PW.power_settings((getattr(profile, "extra", None) or {}).get("power"),
                             where=str(getattr(profile, "path", "profile")))


def pinned_cpus(profile) -> list[int] | None:
    cpus = AP.parse_cpu_list(profile.run.cpu_list) if profile.run.cpu_list else None
    return None if cpus is None or isinstance(cpus, AP.Unknown) else cpus


def ms_per_frame(prepared: PreparedRunner, mode: str, artifacts_dir: Path | None) -> float:
    """A short calibration run (2 warm-up + 5 frames): how long a frame takes, to size a
    run given in seconds (the median, so one slow frame does not shorten the run). At a
    camera's rate a frame takes its work plus the wait for the camera's next frame."""
    r = run_swap(prepared, label=f"calibrate-{mode}", artifacts_dir=artifacts_dir, mode=mode,
                 warmup=2, frames=5)
    periods = sorted((f["stage_ns"]["total"] + (f.get("wait_ns") or 0)) / 1e6
                     for f in r.telemetry.measured)
    return periods[len(periods) // 2]


def read_zone_c(device: Device, path: str) -> float | None:
    """Temperature (C) of one thermal zone file as the runner reads it (millidegrees when
    |value| >= 1000), None when unreadable."""
    if hasattr(device, "shell2"):
        _, out, _ = device.shell2(f"cat {path} 2>/dev/null; true", timeout_s=30)
        raw = out.strip()
    else:
        try:
            raw = Path(path).read_text().strip()
        except OSError:
            return None
    try:
        v = float(raw.split()[0])
    except (ValueError, IndexError):
        return None
    return v / 1000.0 if abs(v) >= 1000 else v


def heat_up(device: Device, zone_path: str, above_c: float, threads: int, timeout_s: float,
            progress: Callable[[str], None] = print, poll_s: float = 0.5) -> dict:
    """Drive the device hot by sustained load: `threads` busy shell loops on the device
    until the zone reads above `above_c` or `timeout_s` passes. Returns what happened
    ({"reached": bool, "temp_c", "start_c", "heat_s"}); the load is always stopped."""
    start_c = read_zone_c(device, zone_path)
    t0 = time.monotonic()
    temp = start_c
    if temp is not None and temp > above_c:
        return {"reached": True, "start_c": start_c, "temp_c": temp, "heat_s": 0.0,
                "threads": 0}
    progress(f"[swaplab] {device.serial}: heating with {threads} busy loops until "
             f"{zone_path} > {above_c:g} C (now {temp} C, at most {timeout_s:g} s)")
    loads = []
    try:
        for _ in range(threads):
            loads.append(device.start(["sh", "-c", "while :; do :; done"]))
        while time.monotonic() - t0 < timeout_s:
            time.sleep(poll_s)
            temp = read_zone_c(device, zone_path)
            if temp is not None and temp > above_c:
                break
    finally:
        for p in loads:
            try:
                p.stop(timeout_s=5)
            except Exception as e:  # noqa: BLE001 - best effort; the device may be gone
                progress(f"[swaplab] {device.serial}: could not stop a heating loop: {e}")
    return {"reached": temp is not None and temp > above_c, "start_c": start_c, "temp_c": temp,
            "heat_s": round(time.monotonic() - t0, 2), "threads": threads}
