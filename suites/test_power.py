"""Sustained run: power, energy per frame, temperature, throttling and latency drift.

The runner swaps frames for the profile's `[power] sustained_duration_s` (30 minutes on a
phone; `sustained_duration_virtual_s`, seconds, on the virtual device) while the sensors
are sampled. Recorded: average and p95 power (W), energy per frame (mJ), temperature
max and rise, time to first throttle, frame-latency drift first -> last minute, frame
latency split into thermally affected / clean frames, camera frames dropped (with
`[run] input = "camera"` the runner takes frames at the camera's rate, so the run measures
the work of a real session; a frame whose work overruns the interval drops the camera's next
frame(s)), and the whole time series as an artifact. Metrics a device cannot measure are left out with the reason (never made up);
the profile's targets (`power_avg_w`, `temperature_max_c`) are asserted."""

from __future__ import annotations

import pytest

from harness.devices import thermal
from harness.power import metrics as PW
from harness.power import sustained as SU
from harness.power import throttle as TH
from harness.record.health import HealthMonitor


def power_settings_of(profile) -> PW.PowerSettings:
    try:
        return SU.settings_of(profile)
    except PW.PowerSettingsError as e:
        pytest.fail(f"invalid device profile: {e}", pytrace=False)


def test_sustained_power(device, profile, swap_runner, recorder, artifacts_dir, lab):
    ps = power_settings_of(profile)
    sim = bool(device.simulated)
    cd = thermal.cool_down(device, profile.run.cooldown_temperature_c,
                           profile.run.cooldown_timeout_s, progress=lab.progress, poll_s=2.0)
    if not cd.ok:
        pytest.skip(cd.skip_reason)
    mode = profile.run.mode if profile.run.mode != "auto" else "small"
    duration = ps.duration_s(sim, host=device.kind == "local")
    per_frame = SU.ms_per_frame(swap_runner, mode, artifacts_dir)
    frames = SU.frames_for(duration, per_frame)
    lab.progress(f"[swaplab] {device.serial}: sustained run, {mode} mode, ~{duration:g} s "
                 f"({frames} frames at ~{per_frame:.0f} ms)")
    health = HealthMonitor(interval_s=1.0).start()  # contention, for throttle attribution
    run = SU.run_sampled(swap_runner, label="sustained", mode=mode, frames=frames,
                         interval_s=ps.interval_s(sim), status_interval_s=ps.status_interval_s,
                         timeout_s=max(swap_runner.settings.timeout_s, duration * 3 + 120),
                         artifacts_dir=artifacts_dir)
    other_cpu = health.stop()["other_cpu_cores_mean"] if device.kind in (
        "local", "virtual") else None
    recorder.artifact("telemetry", run.telemetry_path, label="sustained", mode=mode)
    tel = run.telemetry
    if run.result.duration_s < 0.8 * duration:
        lab.progress(f"[swaplab] {device.serial}: the sustained run lasted "
                     f"{run.result.duration_s:.1f} s of the {duration:g} s asked (frames were "
                     "faster than in the calibration run)")
    frame_t = PW.frame_times(tel.frames, tel.summary.get("wall_ms"))
    thr = TH.detect(run.samples, tel.frames, frame_t, slowdown_fraction=ps.slowdown_fraction,
                    freq_drop_fraction=ps.freq_drop_fraction, cpus=SU.pinned_cpus(profile),
                    measured_thermal_sensor=not sim and device.kind != "local",
                    other_cpu_cores=other_cpu)
    measured = [i for i, f in enumerate(tel.frames) if not f["warmup"]]

    metrics: dict[str, PW.Metric] = {}
    metrics.update(PW.power_metrics(run.samples, len(measured)))
    metrics.update(PW.temperature_metrics(run.samples))
    metrics["latency_drift_pct"] = PW.latency_drift(
        [frame_t[i] for i in measured], [tel.frames[i]["stage_ns"]["total"] / 1e6 for i in measured],
        ps.drift_window_s)
    if thr.first_throttle_s is not None:
        metrics["time_to_first_throttle_s"] = PW.Metric(thr.first_throttle_s, "",
                                                        extra={"events": thr.events})
    unmeasured = {k: m.reason for k, m in metrics.items() if not m.ok}
    if thr.first_throttle_s is None:
        unmeasured["time_to_first_throttle_s"] = "no throttling seen during the run"

    doc = SU.timeseries(device, run, frame_t, thr.frame_flags, thr.as_dict(),
                        {"kind": "sustained", "mode": mode, "duration_s": duration,
                         "run_s": round(run.result.duration_s, 3),
                         "cooldown": cd.info, "unmeasured": unmeasured,
                         "metrics": {k: m.value for k, m in metrics.items()}})
    path = SU.write_json(artifacts_dir / "sustained.timeseries.json", doc)
    recorder.artifact("samples", path, label="sustained", timeseries=True, simulated=sim)

    common = {"variant": f"sustained mode={mode}", "simulated": sim}
    for name, m in metrics.items():
        if m.ok:
            unit, direction = PW.METRIC_UNITS[name]
            recorder.measure(name, m.samples or [m.value], unit=unit, direction=direction,
                             **common, **({"note": m.reason} if m.reason else {}), **m.extra)
    flags = [bool(f) for f in thr.frame_flags]
    lat = [tel.frames[i]["stage_ns"]["total"] / 1e6 for i in measured]
    recorder.measure("latency_total_ms", lat, unit="ms", direction="lower", check_target=False,
                     **common, thermally_affected=thr.thermal, throttled=thr.affected,
                     throttle_cause=thr.cause, throttle_cause_detail=thr.cause_detail,
                     affected_frames=sum(flags[i] for i in measured), unmeasured=unmeasured,
                     frames_dropped=tel.frames_dropped(),
                     throttle=thr.reasons)
    dropped = tel.frames_dropped()
    if dropped is not None:  # camera-like input: work longer than the frame interval
        recorder.measure("frames_dropped", dropped, unit="count", direction="lower",
                         check_target=False, **common, camera_fps=tel.summary["camera_fps"],
                         measured_frames=len(measured),
                         dropped_pct=round(100.0 * dropped / max(1, dropped + len(measured)), 2))
        lab.progress(f"[swaplab] {device.serial}: sustained run at "
                     f"{tel.summary['camera_fps']:g} fps: {len(measured)} frames processed, "
                     f"{dropped} camera frames dropped")
    for affected in (False, True):
        part = [tel.frames[i]["stage_ns"]["total"] / 1e6 for i in measured if flags[i] == affected]
        if part and thr.affected:
            recorder.measure("latency_total_ms", part, unit="ms", direction="lower",
                             check_target=False, simulated=sim,
                             variant=f"sustained mode={mode} "
                                     f"{f'throttled ({thr.cause})' if affected else 'not throttled'}")
    if thr.affected:
        lab.progress(f"[swaplab] {device.serial}: sustained run throttled, cause {thr.cause} "
                     f"({thr.cause_detail}): " + "; ".join(thr.reasons))

    recorder.assert_targets()
    missing = [f"{k} ({profile.targets[k]:g} target): {unmeasured[k]}"
               for k in ("power_avg_w", "temperature_max_c") if k in profile.targets
               and k in unmeasured]
    if missing:
        pytest.skip(f"device {device.serial} ({device.name}): cannot measure " + "; ".join(missing))
