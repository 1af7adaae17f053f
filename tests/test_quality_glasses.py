"""The half-erased glasses score (harness/quality/glasses.py, issue 18) on real runner outputs
(x86_64 host build, real models): grace_hopper's glasses as small mode leaves them (upper rims
kept, lower rims replaced) fail; as base mode keeps them (whole frame) they pass; targets
without glasses are not scored."""

from __future__ import annotations

import sys

import pytest
from helpers.paths import REPO

from harness.quality import load_rgb
from harness.quality.glasses import GLASSES_BRIDGE_MIN, half_erased_glasses_score
from harness.quality.landmarks import reference_landmarks
from harness.quality.thresholds import DEFAULT_THRESHOLDS

sys.path.insert(0, str(REPO / "benchmarks" / "quality_eval"))
import build as evalset

GLASSES = "grace_hopper"
SOURCES = ("obama_portrait", "biden_blue_room")


@pytest.fixture(scope="module")
def target():
    t = load_rgb(evalset.face_path(GLASSES))
    return t, reference_landmarks(t)


def _swap(runner, source, target_name, out, mode):
    return load_rgb(evalset.run_runner(runner, evalset.face_path(source),
                                       evalset.face_path(target_name), out, mode=mode)[0])


@pytest.mark.parametrize("source", SOURCES)
def test_half_erased_fails_and_whole_passes(runner_binary, target, source, tmp_path):
    tgt, tl = target
    half = half_erased_glasses_score(_swap(runner_binary, source, GLASSES, tmp_path / "s", "small"),
                                     tgt, tl)
    whole = half_erased_glasses_score(_swap(runner_binary, source, GLASSES, tmp_path / "b", "base"),
                                      tgt, tl)
    assert half.passed is False, half.detail  # measured 0.54-0.74
    assert half.detail["kept_upper"] > 0.5 and half.detail["kept_lower"] < 0.1
    assert whole.passed is True, whole.detail  # measured 0.10-0.25
    assert whole.detail["kept_lower"] > 0.5


def test_target_itself_and_no_glasses(target):
    tgt, tl = target
    same = half_erased_glasses_score(tgt, tgt, tl)
    assert same.value == 0 and same.passed
    for name in ("obama_portrait", "biden_blue_room", "obama_blue_room", "obama_congress",
                 "astronaut"):
        face = load_rgb(evalset.face_path(name))
        s = half_erased_glasses_score(face, face, reference_landmarks(face))
        assert s.value is None and s.passed is None, name
        assert s.detail["evidence"] < GLASSES_BRIDGE_MIN, (name, s.detail["evidence"])
    assert DEFAULT_THRESHOLDS.half_erased_glasses_max == 0.35
