"""Low light: face detection rate on darkened frames without and with the Retinex pass.

The enhanced rate must not be below the plain one (and meets the profile's
low_light_detection_rate_min target when it sets one)."""

import pytest

from harness.inputs.sets import LOW_LIGHT_SETS


@pytest.mark.parametrize("level", list(LOW_LIGHT_SETS))
def test_low_light_detection(level, swap, recorder, device, profile):
    off = swap(f"{level}-enhance-off", target=level, enhance="off")
    on = swap(f"{level}-enhance-on", target=level, enhance="on",
              save_every=profile.run.measured_frames)

    def hits(run):
        return [1.0 if f["faces"] else 0.0 for f in run.telemetry.measured]

    assert all(not f.get("enhanced", False) for f in off.telemetry.measured)
    assert all(f.get("enhanced", True) for f in on.telemetry.measured), \
        f"device {device.serial!r}: --enhance on did not enhance every frame"
    rate_off = recorder.measure("low_light_detection_rate_plain", hits(off), unit="ratio",
                                direction="higher", variant=level)
    rate_on = recorder.measure("low_light_detection_rate_enhanced", hits(on), unit="ratio",
                               direction="higher", variant=level)
    recorder.measure("latency_enhance_ms", on.stage_ms["enhance"], unit="ms",
                     direction="lower", variant=level, check_target=False)
    assert rate_on.summary["mean"] >= rate_off.summary["mean"], (
        f"device {device.serial!r} ({device.name}): {level}: detection rate with Retinex "
        f"{rate_on.summary['mean']:.0%} < without {rate_off.summary['mean']:.0%}")
    recorder.assert_targets()
