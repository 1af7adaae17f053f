"""A/B interleaved latency: a baseline runner build (`--ab-runner PATH|GITREF`) and this
build alternate on the same device in rounds (ABBA order), so drift, thermal state and
background load hit both arms alike (FAI-PEP runs treatment and control this way).

Every measurement carries extra["ab"] = {"arm": "baseline"|"candidate", "round": i,
"build": ...}; at session end harness.history.compare compares the arms round by round
(harness.stats.ab_arms.compare_ab_measurements: Wilcoxon signed-rank over rounds + bootstrap
CI of the median ratio) and a regression fails the run. Skipped without --ab-runner.

A/B quality: each build swaps the lab's two portraits both ways once; every score of
`swaplab score` is recorded per arm (extra["ab_quality"], kept apart from the latency
rounds' extra["ab"]), the two outputs go side by side into the report with the scores each
fails, and a score the candidate fails where the baseline passed fails the test.
"""

import pytest

from harness.inputs.sets import DIRECTIONS, quality_pair
from harness.quality import load_rgb, reference_landmarks, thresholds_for_profile
from harness.quality.report_images import write_ab_quality_images
from harness.quality.score_output import GATED_IN_MODES, newly_failing, score_frame
from harness.runner.ab import AB_BINARY, push_baseline, resolve_baseline_runner, run_ab_latency

#: (--ab-runner, ABI, platform) -> the baseline binary: resolved (a git ref: exported and
#: built) once per session, not once per test
_BASELINES: dict[tuple, object] = {}


def _baseline(request, swap_runner, lab):
    opt = request.config.getoption("ab_runner", None)
    if not opt:
        pytest.skip("A/B mode needs --ab-runner PATH|GITREF (a baseline swap_runner build)")
    device = swap_runner.device  # Android devices compare Android builds (static, as pushed)
    platform = "android" if device.platform == "android" else None
    key = (opt, device.abi, platform)
    if key not in _BASELINES:
        _BASELINES[key] = resolve_baseline_runner(opt, device.abi, progress=lab.progress,
                                                  platform=platform)
    return _BASELINES[key]


def test_ab_latency(request, swap_runner, recorder, artifacts_dir, lab):
    baseline = _baseline(request, swap_runner, lab)
    n = request.config.getoption("ab_rounds") or swap_runner.settings.ab_rounds
    rounds = run_ab_latency(swap_runner, baseline, recorder, artifacts_dir, rounds=n,
                            frames=request.config.getoption("ab_frames"),
                            progress=lab.progress)
    assert len(rounds) == n


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_ab_quality(direction, request, swap, swap_runner, recorder, lab, device, profile):
    baseline = _baseline(request, swap_runner, lab)
    builds = push_baseline(swap_runner, baseline)
    (src_name, src_local, src_remote), (tgt_name, tgt_local, tgt_remote) = quality_pair(
        lab.inputs(), swap_runner.inputs, direction)
    mode = profile.run.mode if profile.run.mode != "auto" else "small"
    source, target = load_rgb(src_local), load_rgb(tgt_local)
    src_l, tgt_l = reference_landmarks(source, mode), reference_landmarks(target, mode)
    assert src_l is not None and tgt_l is not None, \
        f"reference pipeline ({mode}) found no face in {src_name} or {tgt_name}"
    thresholds = thresholds_for_profile(profile)
    advisory = tuple(n for n, modes in GATED_IN_MODES.items() if mode not in modes)
    variant = f"{direction}: {src_name} -> {tgt_name}, mode={mode}"
    who = f"device {device.serial!r} ({device.name})"
    outputs, scores = {}, {}
    for arm, binary in (("baseline", f"./{AB_BINARY}"), ("candidate", None)):
        run = swap(f"ab-quality-{direction}-{arm}", binary=binary, mode=mode,
                   source=src_remote, target=tgt_remote, warmup=0, frames=1, save_every=1,
                   enhance="off")
        assert run.output_images, f"{who}: the {arm} build saved no output frame ({variant})"
        output = load_rgb(run.output_images[0])
        assert output.shape == target.shape, \
            f"{who}: the {arm} build's output is {output.shape[1]}x{output.shape[0]}, " \
            f"target {tgt_name} is {target.shape[1]}x{target.shape[0]}"
        out_l = reference_landmarks(output, mode, roi_image=target)
        _, scores[arm] = score_frame(source, target, output, tgt_l, src_l, out_l, thresholds)
        outputs[arm] = output
        for sc in scores[arm]:
            verdict = None if sc.passed is None else ("pass" if sc.passed else "fail")
            recorder.measure(sc.metric, [] if sc.value is None else [sc.value],
                             direction=sc.direction, check_target=False,
                             variant=f"{variant}, ab={arm}",
                             ab_quality={"arm": arm, "build": builds[arm]},
                             threshold={"value": sc.threshold, "verdict": verdict,
                                        **({"advisory": "not gated in this mode"}
                                           if sc.name in advisory else {})})
    failing = {arm: [sc.name for sc in scores[arm] if sc.passed is False] for arm in scores}
    images = write_ab_quality_images(lab.record.run_dir, f"{device.serial}-ab-{direction}-{mode}",
                                     target=target, baseline=outputs["baseline"],
                                     candidate=outputs["candidate"], failing=failing)
    for role, rel in images.items():
        recorder.artifact("quality_image", rel, role=role, variant=f"A/B {variant}")
    worse = newly_failing(scores["baseline"], scores["candidate"], advisory)
    assert not worse, (f"{who}: the candidate build fails scores the baseline "
                       f"({builds['baseline']}) passes [{variant}]:\n  " + "\n  ".join(worse))
