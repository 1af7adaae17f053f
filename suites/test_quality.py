"""Blend quality: the runner's output frames scored against the profile's thresholds.

For each direction (the lab's source face onto its target frame, and the reverse) the
runner runs on the device in the profile's mode with output frames saved; the frames are
pulled and scored on the host (harness.quality): colour consistency (CIEDE2000), seam
visibility, pose fidelity (NME), background preservation (SSIM, PSNR) and identity
transfer, and the face checks of docs/quality.md "Face scores" (whole-face colour, doubled
brows, background leak, pose points). Every score goes into the record as a measurement;
each must meet its threshold (harness/quality/thresholds.py, overridden by the profile's
[quality] table).

Each output is also compared with its golden frame (suites/golden/, README there): a
drift beyond the perceptual thresholds is a visual regression. Source, target, output,
golden and a diff heat map are written side by side into the run folder for the report.
Set SWAPLAB_UPDATE_GOLDEN=1 to (re)write the goldens from this run's outputs.
"""

from __future__ import annotations

import os
import warnings

import pytest

from harness.inputs.sets import DIRECTIONS, quality_pair
from harness.quality import (
    GOLDEN_DIR,
    compare_to_golden,
    golden_path,
    load_rgb,
    reference_landmarks,
    save_rgb,
    thresholds_for_profile,
    write_quality_images,
)
from harness.quality.score_output import GATED_IN_MODES, THRESHOLD_KEYS, score_frame

#: frames scored per run (the runner loops over one target image: all frames are alike)
SCORED_FRAMES = 2


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_blend_quality(direction, swap, swap_runner, lab, device, profile, recorder):
    try:
        (src_name, src_local, src_remote), (tgt_name, tgt_local, tgt_remote) = quality_pair(
            lab.inputs(), swap_runner.inputs, direction)
    except FileNotFoundError as e:
        pytest.fail(str(e))
    mode = profile.run.mode if profile.run.mode != "auto" else "small"
    run = swap(f"quality-{direction}", mode=mode, source=src_remote, target=tgt_remote,
               warmup=0, frames=SCORED_FRAMES, save_every=1, enhance="off")

    who = f"device {device.serial!r} ({device.name}), profile {profile.name}"
    assert run.output_images, f"{who}: the runner saved no output frame ({direction})"
    assert all(f["faces"] >= 1 for f in run.telemetry.measured), \
        f"{who}: the runner found no face in some frame of {tgt_name} ({direction})"

    source, target = load_rgb(src_local), load_rgb(tgt_local)
    src_l = reference_landmarks(source, mode)
    tgt_l = reference_landmarks(target, mode)
    assert src_l is not None and tgt_l is not None, \
        f"reference pipeline ({mode}) found no face in {src_name} or {tgt_name}"
    thresholds = thresholds_for_profile(profile)

    all_scores = []
    for path in run.output_images[:SCORED_FRAMES]:
        output = load_rgb(path)
        assert output.shape == target.shape, (
            f"{who}: output frame {path.name} is {output.shape[1]}x{output.shape[0]}, "
            f"target {tgt_name} is {target.shape[1]}x{target.shape[0]}")
        out_l = reference_landmarks(output, mode, roi_image=target)
        blend, scores = score_frame(source, target, output, tgt_l, src_l, out_l, thresholds)
        all_scores.append((path, output, blend, scores))

    variant = f"{direction}: {src_name} -> {tgt_name}, mode={mode}"
    failures: list[str] = []
    for i, score in enumerate(all_scores[0][3]):
        values = [every[i].value for *_, every in all_scores]
        scored = [v for v in values if v is not None]
        worst = (max(scored) if score.direction == "lower" else min(scored)) if scored else None
        verdicts = [every[i].passed for *_, every in all_scores]
        verdict = None if all(v is None for v in verdicts) else \
            ("fail" if any(v is False for v in verdicts) else "pass")
        modes = GATED_IN_MODES.get(score.name)
        advisory = f"gated in {' / '.join(modes)} mode only" if modes and mode not in modes \
            else None
        recorder.measure(score.metric, scored, unit="db" if score.unit == "dB" else "",
                         direction=score.direction, check_target=False, variant=variant,
                         threshold={"key": _threshold_key(score.name), "value": score.threshold,
                                    "statistic": "worst frame", "verdict": verdict,
                                    **({"advisory": advisory} if advisory else {})},
                         detail=all_scores[0][3][i].detail)
        if verdict == "fail" and not advisory:
            op = "<=" if score.direction == "lower" else ">="
            failures.append(f"{who}: {score.metric} [{variant}] = {worst:.4g}, "
                            f"threshold {op} {score.threshold:g}")

    # golden frame + images for the report
    path, output, score, _ = all_scores[0]
    gpath = golden_path(mode, src_name, tgt_name)
    comparison = None
    if os.environ.get("SWAPLAB_UPDATE_GOLDEN") == "1":
        save_rgb(gpath, output, jpeg_quality=95)
    if gpath.is_file():
        golden = load_rgb(gpath)
        if golden.shape == output.shape:
            comparison = compare_to_golden(output, golden, tgt_l, thresholds)
        else:
            failures.append(f"{who}: golden {gpath.name} is {golden.shape[1]}x{golden.shape[0]}, "
                            f"output {output.shape[1]}x{output.shape[0]}")
    else:
        golden = None
    if comparison is not None:
        for metric, value, direction_, thr in (
                ("quality_golden_ssim", comparison.ssim, "higher", comparison.ssim_min),
                ("quality_golden_de_p95", comparison.de_p95, "lower", comparison.de_p95_max),
                ("quality_golden_changed_ratio", comparison.changed_fraction, "lower",
                 comparison.changed_max)):
            ok = value <= thr if direction_ == "lower" else value >= thr
            recorder.measure(metric, [value], unit="ratio" if metric.endswith("ratio") else "",
                             direction=direction_, check_target=False, variant=variant,
                             threshold={"value": thr, "verdict": "pass" if ok else "fail"},
                             golden=gpath.relative_to(GOLDEN_DIR.parent.parent).as_posix())
        if not comparison.passed:
            failures.append(f"{who}: visual regression vs {gpath.name} [{variant}]: "
                            f"{comparison.message()}")
    images = write_quality_images(lab.record.run_dir, f"{device.serial}-{direction}-{mode}",
                                  source=source, target=target, output=output, golden=golden,
                                  scores=score, comparison=comparison)
    for role, rel in images["images"].items():
        recorder.artifact("quality_image", rel, role=role, variant=variant)

    if golden is None:
        warnings.warn(f"no golden frame {gpath} yet: visual regression not checked "
                      "(run with SWAPLAB_UPDATE_GOLDEN=1 to create it)", stacklevel=1)
    assert not failures, "blend quality below threshold:\n  " + "\n  ".join(failures)


def _threshold_key(name: str) -> str:
    return {"colour": "colour_de_max", "seam": "seam_ratio_max", "pose": "pose_nme_max",
            "background_ssim": "background_ssim_min",
            "background_psnr": "background_psnr_min_db",
            "identity": "identity_margin_min", **THRESHOLD_KEYS}[name]
