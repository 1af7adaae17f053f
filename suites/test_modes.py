"""Each mode (tiny, small, base) runs, finds the face and is measured.

Targets are asserted by test_latency / test_memory in the profile's own mode; here every
mode is recorded (latency per stage, peak memory) so the report compares them."""

import pytest

from harness.runner.invoke import LAB_MODES as MODES


@pytest.mark.parametrize("mode", MODES)
def test_mode(mode, swap, profile, recorder, record_latency):
    run = swap(f"mode-{mode}", mode=mode, save_every=max(1, profile.run.measured_frames))

    assert run.summary["mode"] == mode, f"{run.telemetry.source}: asked for {mode}"
    assert {f["mode"] for f in run.telemetry.measured} == {mode}
    record_latency(run, variant=f"mode={mode}", check_target=False)
    recorder.measure("memory_peak_mb", run.peak_mb, unit="mb", direction="lower",
                     check_target=False, variant=f"mode={mode}")
    rate = run.detection_rate()
    recorder.measure("face_detection_rate", [1.0 if f["faces"] else 0.0
                                             for f in run.telemetry.measured],
                     unit="ratio", direction="higher", check_target=False,
                     variant=f"mode={mode}")
    assert rate and rate > 0, (
        f"device {run.telemetry.source.split(':')[0]!r}: mode {mode}: no face found in "
        f"any of {len(run.telemetry.measured)} frames")
