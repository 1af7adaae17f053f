"""Throttle detection (and, re-exported from harness.power.fallback, the check of the
runner's thermal fallback). Pure, no I/O.

A run is *thermally affected* when any of these happens (each gives events and marks the
frames it covers):

* `thermal_status`: Android's thermal status (dumpsys thermalservice) above NONE (0);
* `freq_drop`: a CPU cluster's highest current frequency falls more than
  `freq_drop_fraction` below the highest it showed earlier in the run, while it is busy
  (at or below half its peak a cluster is taken as idle, not throttled; clusters: CPUs grouped by the highest frequency they reach; only the clusters the
  runner is pinned to when `cpus` is given);
* `slowdown`: the rolling median (window `window` frames) of a mode's frame time exceeds
  its baseline (median of the first `baseline_frames` frames of that mode) by more than
  `slowdown_fraction`.

A slowdown is *attributed* (`cause`): "thermal" only with thermal evidence (status
above NONE, or a frequency cap) from a measured sensor; "contention" when other processes
used more than `DISTURBED_CORES` of the CPU during the run (harness.record.health);
otherwise "unknown". A device without a measured thermal sensor (this host, a virtual
device's simulated zones) is never called thermal: there a slowdown is CPU contention
more often than heat.

Frames are placed on the samples' clock by their end time (`harness.power.metrics.frame_times`,
sample times relative to the first sample); a frame takes the state of the latest sample
at or before its end.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Mapping, Sequence

from harness.power.fallback import FallbackCheck, check_fallback  # noqa: F401 (its home)
from harness.stats.descriptive import percentile
from harness.stats.trust import DISTURBED_CORES

STATUS_NAMES = ("NONE", "LIGHT", "MODERATE", "SEVERE", "CRITICAL", "EMERGENCY", "SHUTDOWN")


@dataclasses.dataclass
class ThrottleResult:
    affected: bool
    reasons: list[str]                      # one line per kind seen, for the report
    events: list[dict]                      # {"t_s", "kind", "detail"} (first of each run)
    first_throttle_s: float | None          # time of the first event (s from start)
    frame_flags: list[list[str]]            # per frame: kinds affecting it ([] = clean)
    cause: str = "none"                     # thermal | contention | unknown | none
    cause_detail: str = ""

    @property
    def thermal(self) -> bool:
        """Throttled, and the evidence says heat (not contention, not a guess)."""
        return self.affected and self.cause == "thermal"

    @property
    def affected_frames(self) -> int:
        return sum(1 for f in self.frame_flags if f)

    def as_dict(self) -> dict:
        return {"affected": self.affected, "cause": self.cause,
                "cause_detail": self.cause_detail, "reasons": self.reasons,
                "events": self.events,
                "first_throttle_s": self.first_throttle_s,
                "affected_frames": self.affected_frames, "frames": len(self.frame_flags)}


def clusters_of(samples: Sequence[Mapping]) -> dict[int, list[int]]:
    """CPUs grouped by the highest frequency each reached (a stand-in for the cluster
    topology when it is not known): {cluster number: [cpus]}, slowest cluster first."""
    peak: dict[int, int] = {}
    for s in samples:
        for cpu, khz in (s.get("cpu_khz") or {}).items():
            peak[int(cpu)] = max(peak.get(int(cpu), 0), int(khz))
    groups: dict[int, list[int]] = {}
    for cpu, p in sorted(peak.items()):
        groups.setdefault(p, []).append(cpu)
    return {i: cpus for i, (_, cpus) in enumerate(sorted(groups.items()))}


def _status_events(samples, t0) -> list[tuple[float, str]]:
    out = []
    for s in samples:
        st = s.get("thermal_status")
        if isinstance(st, int) and st > 0:
            name = STATUS_NAMES[st] if st < len(STATUS_NAMES) else str(st)
            out.append((s["t_s"] - t0, f"thermal status {name} ({st})"))
    return out


def _freq_events(samples, t0, cpus, frac, idle_fraction=0.5) -> list[tuple[float, str]]:
    clusters = clusters_of(samples)
    out = []
    for ci, members in clusters.items():
        if cpus is not None and not set(members) & set(cpus):
            continue
        running = 0
        for s in samples:
            vals = [s["cpu_khz"][c] for c in members if c in (s.get("cpu_khz") or {})]
            if not vals:
                continue
            top = max(vals)
            # at or below idle_fraction of its peak the cluster idles: not a throttle
            if running and running * idle_fraction < top < running * (1 - frac):
                out.append((s["t_s"] - t0, (f"cluster {ci} (cpus {_cpus(members)}) max "
                            f"frequency {top / 1000:.0f} MHz, {(1 - top / running) * 100:.0f}% "
                            f"below its {running / 1000:.0f} MHz")))
            running = max(running, top)
    return out


def _cpus(members: Sequence[int]) -> str:
    return f"{members[0]}-{members[-1]}" if members == list(range(members[0], members[-1] + 1)) \
        else ",".join(map(str, members))


def _slowdown_flags(frames, frac, window, baseline_frames) -> list[bool]:
    flags = [False] * len(frames)
    by_mode: dict[str, list[int]] = {}
    for i, f in enumerate(frames):
        if not f.get("warmup"):
            by_mode.setdefault(f["mode"], []).append(i)
    for idx in by_mode.values():
        ms = [frames[i]["stage_ns"]["total"] / 1e6 for i in idx]
        if len(ms) < baseline_frames + 1:
            continue
        base = percentile(sorted(ms[:baseline_frames]), 50)
        if base <= 0:
            continue
        for k in range(baseline_frames, len(ms)):
            win = ms[max(0, k - window + 1):k + 1]
            if percentile(sorted(win), 50) > base * (1 + frac):
                flags[idx[k]] = True
    return flags


def detect(samples: Sequence[Mapping], frames: Sequence[Mapping], frame_end_s: Sequence[float],
           *, slowdown_fraction: float = 0.15, freq_drop_fraction: float = 0.10,
           window: int = 5, baseline_frames: int = 5, cpus: Sequence[int] | None = None,
           measured_thermal_sensor: bool = True, other_cpu_cores: float | None = None
           ) -> ThrottleResult:
    """Throttle events of a run and the frames they affect (see the module doc).

    `frames`: telemetry frame dicts (warm-up included); `frame_end_s`: their end times
    in s from the start of the sampling (harness.power.metrics.frame_times)."""
    if len(frames) != len(frame_end_s):
        raise ValueError("frames and frame_end_s differ in length")
    samples = sorted(samples, key=lambda s: s["t_s"])
    t0 = samples[0]["t_s"] if samples else 0.0
    status_ev = _status_events(samples, t0)
    freq_ev = _freq_events(samples, t0, cpus, freq_drop_fraction)
    slow = _slowdown_flags(frames, slowdown_fraction, window, baseline_frames)

    # state per sample -> per frame
    times = [s["t_s"] - t0 for s in samples]
    hot_at = {t for t, _ in status_ev}
    freq_at = {t for t, _ in freq_ev}
    flags: list[list[str]] = []
    for i, f in enumerate(frames):
        kinds = []
        k = bisect.bisect_right(times, frame_end_s[i]) - 1
        if k >= 0:
            if times[k] in hot_at:
                kinds.append("thermal_status")
            if times[k] in freq_at:
                kinds.append("freq_drop")
        if slow[i]:
            kinds.append("slowdown")
        flags.append(kinds)

    events: list[dict] = []
    for kind, evs in (("thermal_status", status_ev), ("freq_drop", freq_ev)):
        if evs:
            events.append({"t_s": round(evs[0][0], 3), "kind": kind, "detail": evs[0][1],
                           "samples": len(evs)})
    slow_idx = [i for i, s in enumerate(slow) if s]
    if slow_idx:
        i = slow_idx[0]
        events.append({"t_s": round(frame_end_s[i], 3), "kind": "slowdown",
                       "detail": f"frame {frames[i]['index']} ({frames[i]['mode']}): rolling "
                                 f"median frame time more than {slowdown_fraction * 100:.0f}% "
                                 "above the mode's first frames", "samples": len(slow_idx)})
    events.sort(key=lambda e: e["t_s"])
    reasons = [f"{e['kind']} from {e['t_s']:.1f} s: {e['detail']}" for e in events]
    cause, detail = attribute({e["kind"] for e in events}, measured_thermal_sensor,
                              other_cpu_cores)
    return ThrottleResult(bool(events), reasons, events,
                          events[0]["t_s"] if events else None, flags, cause, detail)


def attribute(kinds: set[str], measured_thermal_sensor: bool,
              other_cpu_cores: float | None) -> tuple[str, str]:
    """(cause, evidence) of a run's throttle events (see the module doc)."""
    if not kinds:
        return "none", ""
    thermal = kinds & {"thermal_status", "freq_drop"}
    if thermal and measured_thermal_sensor:
        return "thermal", "evidence: " + ", ".join(sorted(thermal))
    if other_cpu_cores is not None and other_cpu_cores > DISTURBED_CORES:
        return "contention", (f"other processes used {other_cpu_cores:.2f} cores during the "
                              "run")
    if not measured_thermal_sensor:
        return "unknown", "no measured thermal sensor: a slowdown here is not called thermal"
    return "unknown", "a slowdown without thermal evidence or CPU contention"
