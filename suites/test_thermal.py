"""Thermal fallback of the runner: `swap_runner --mode auto` reads a thermal zone every
`thermal_check_every` frames and, above `thermal_limit_c`, takes one step down the ladder
the profile's `[thermal] fallback` orders (lower the camera frame rate, turn the GPU off,
step the mode down base -> small -> tiny; harness.power.fallback), and one step back up,
in reverse order, below `thermal_limit_c - thermal_hysteresis_c`.

The device is first driven hot by sustained load (`heat_threads` busy shell loops on the
device until the zone reads above `thermal_limit_c + heat_margin_c`, at most
`heat_timeout_s`; on the virtual device its simulated thermal zone heats with the real
CPU time of those loops). Then the load stops and the auto run starts hot: it must step
down, and step back up once the device cools with only the runner's own load. The test replays the rule over the temperatures the runner read and
checks that every switch happened when it should, one step at a time, logged with
temperature and reason, and that frames ran in the mode in force. Frame latency is
recorded per mode. No cool-down first: this test wants heat. A device that never got
above the limit within `fallback_duration_s` skips with the temperatures it reached."""

from __future__ import annotations

import pytest

from harness.power import fallback as FB
from harness.power import metrics as PW
from harness.power import sustained as SU


def test_thermal_fallback(device, profile, swap_runner, recorder, artifacts_dir, lab):
    try:
        ps = SU.settings_of(profile)
    except PW.PowerSettingsError as e:
        pytest.fail(f"invalid device profile: {e}", pytrace=False)
    if ps.thermal_limit_c is None:
        pytest.skip(f"profile {profile.name} sets no [power] thermal_limit_c: nothing to "
                    "check the runner's thermal fallback against")
    zones = SU.thermal_zones(device)
    zone = SU.pick_zone(zones, ps.thermal_zone)
    if zone is None:
        pytest.skip(f"device {device.serial} ({device.name}): no readable thermal zone"
                    + (f" of type {ps.thermal_zone!r}" if ps.thermal_zone else "")
                    + f" (zones: {', '.join(t for _, t in zones) or 'none'})")
    sim = bool(device.simulated)
    duration = ps.fallback_s(sim)
    per_frame = SU.ms_per_frame(swap_runner, "base", artifacts_dir)
    frames = SU.frames_for(duration, per_frame, minimum=3 * ps.thermal_check_every)
    limit, hyst, every = ps.thermal_limit_c, ps.thermal_hysteresis_c, ps.thermal_check_every
    heat = SU.heat_up(device, zone[0], limit + ps.heat_margin_c, ps.heat_threads,
                      ps.heat_timeout(sim), progress=lab.progress)
    if not heat["reached"]:
        pytest.skip(f"device {device.serial} ({device.name}): zone {zone[1]} reached "
                    f"{heat['temp_c']} C after {heat['heat_s']:g} s of load with "
                    f"{heat['threads']} busy loops, not above thermal_limit_c {limit:g} C + "
                    f"heat_margin_c {ps.heat_margin_c:g} C: fallback not exercised")
    lab.progress(f"[swaplab] {device.serial}: thermal fallback, auto mode, zone {zone[1]} "
                 f"({zone[0]}) at {heat['temp_c']:.1f} C, limit {limit:g} C, hysteresis "
                 f"{hyst:g} C, check every {every} frames, {frames} frames")
    fb = FB.fallback_settings(profile.extra.get("thermal"))
    fps = swap_runner.settings.camera_fps if swap_runner.settings.input == "camera" else None
    run = SU.run_sampled(swap_runner, label="fallback", mode="auto", frames=frames,
                         extra=["--thermal-source", zone[0], "--thermal-check-every", str(every),
                                "--thermal-limit-c", f"{limit:g}",
                                "--thermal-hysteresis-c", f"{hyst:g}", *fb.runner_args(fps)],
                         interval_s=ps.interval_s(sim), status_interval_s=ps.status_interval_s,
                         timeout_s=max(swap_runner.settings.timeout_s, duration * 3 + 120),
                         artifacts_dir=artifacts_dir)
    recorder.artifact("telemetry", run.telemetry_path, label="fallback", mode="auto")
    tel = run.telemetry
    check = FB.check_fallback(tel.frames, tel.mode_switches, limit_c=limit, hysteresis_c=hyst,
                              check_every=every, fallback_switches=tel.fallback_switches,
                              order=fb.order, fps=fps, fps_low=fb.fps_low_for(fps))
    frame_t = PW.frame_times(tel.frames, tel.summary.get("wall_ms"))
    doc = SU.timeseries(device, run, frame_t, None, None,
                        {"kind": "thermal_fallback", "zone": {"path": zone[0], "type": zone[1]},
                         "limit_c": limit, "hysteresis_c": hyst, "check_every": every,
                         "fallback_order": list(fb.order),
                         "check": check.as_dict(), "heat": heat})
    path = SU.write_json(artifacts_dir / "fallback.timeseries.json", doc)
    recorder.artifact("samples", path, label="fallback", timeseries=True, simulated=sim)

    for mode, ms in sorted(PW.latency_by_mode(tel.frames).items()):
        recorder.measure("latency_total_ms", ms, unit="ms", direction="lower",
                         check_target=False, variant=f"fallback mode={mode}", simulated=sim)
    recorder.measure("thermal_mode_switches", len(tel.mode_switches), unit="count",
                     direction="lower", simulated=sim, steps_down=check.steps_down,
                     steps_up=check.steps_up, switches=tel.mode_switches,
                     fallback_order=list(fb.order), steps=check.steps,
                     fallback_switches=tel.fallback_switches,
                     zone=zone[1], limit_c=limit, hysteresis_c=hyst)

    who = f"device {device.serial} ({device.name})"
    assert check.ok, (f"{who}: thermal fallback (limit {limit:g} C, hysteresis {hyst:g} C, "
                      f"zone {zone[1]}) misbehaved:\n  " + "\n  ".join(check.problems))
    if not check.reached_limit:
        pytest.skip(f"{who}: zone {zone[1]} never exceeded thermal_limit_c {limit:g} C during "
                    f"the {run.result.duration_s:.0f} s run (max read "
                    f"{check.max_temp_c if check.max_temp_c is not None else 'n/a'} C): "
                    "fallback not exercised")
    assert check.steps_down >= 1, f"{who}: above {limit:g} C but the runner never stepped down"
    if check.cooled_below:
        assert check.steps_up >= 1, (f"{who}: cooled below {limit - hyst:g} C but the runner "
                                     "never stepped back up")
    else:
        lab.progress(f"[swaplab] {device.serial}: zone {zone[1]} did not cool below "
                     f"{limit - hyst:g} C during the run: step back up not exercised")
