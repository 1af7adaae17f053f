"""The cut glasses score (harness/quality/cut_glasses.py, issue 18) on real runner outputs
(x86_64 host build, real models): a source's lens rims kept whole pass, the same outputs
with the mask edge moved through the rims (planted) fail, and so do the runner's own swaps
where a ring reaches past the target's face; a source without glasses is not scored.
Sources with glasses: grace_hopper (the one real face) and faces with glasses drawn on them
(`planted.draw_glasses`)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from helpers.paths import REPO

pytest.importorskip("ncnn")

from harness.quality import face_scores as F
from harness.quality import geometry as geo
from harness.quality import load_rgb, planted, save_rgb
from harness.quality.cut_glasses import cut_glasses_score, source_lens_rims
from harness.quality.glasses import GLASSES_BRIDGE_MIN
from harness.quality.landmarks import reference_landmarks
from harness.quality.score_output import score_output
from harness.quality.thresholds import DEFAULT_THRESHOLDS

sys.path.insert(0, str(REPO / "benchmarks" / "quality_eval"))
import build as evalset

GLASSES = "grace_hopper"
#: targets the runner keeps grace_hopper's rings whole on (frontal, wide faces), and the one
#: where the image-left ring reaches past the target's face outline and is cut (looked at:
#: docs/quality.md, "Cut glasses")
WHOLE = ("obama_portrait", "astronaut")
CUT = "obama_congress"


def _swap(runner, source_path, target, out, mode="small"):
    return load_rgb(evalset.run_runner(runner, source_path, evalset.face_path(target), out,
                                       mode=mode)[0])


def _score(source, target, output, mode="small"):
    sl, tl = reference_landmarks(source, mode), reference_landmarks(target, mode)
    return cut_glasses_score(output, source, sl, tl,
                             F.warp_source(source, sl, tl, target.shape)), tl


@pytest.mark.parametrize("target", WHOLE)
def test_whole_rims_pass_and_planted_cut_fails(runner_binary, target, tmp_path):
    src, tgt = load_rgb(evalset.face_path(GLASSES)), load_rgb(evalset.face_path(target))
    out = _swap(runner_binary, evalset.face_path(GLASSES), target, tmp_path)
    good, tl = _score(src, tgt, out)
    assert good.passed is True, good.detail          # measured 0-0.13
    cut, _ = _score(src, tgt, planted.cut_source_glasses(out, tgt, tl))
    assert cut.passed is False, cut.detail            # measured 0.70-0.80
    none, _ = _score(src, tgt, tgt.copy())            # no swap: the target's face, no rims
    assert none.passed is False, none.detail     # measured 0.69


def test_runner_cut_at_the_face_edge_fails_swaplab_score(runner_binary, tmp_path):
    """obama_congress's face ends inside one of grace_hopper's rings (the lens over the
    right eye, landmarks 36-41): the runner's output shows that ring cut, and `swaplab
    score` names the score."""
    src, tgt = load_rgb(evalset.face_path(GLASSES)), load_rgb(evalset.face_path(CUT))
    out = _swap(runner_binary, evalset.face_path(GLASSES), CUT, tmp_path)
    s, _ = _score(src, tgt, out)
    assert s.passed is False and s.detail["lens_cut"][0] > s.detail["lens_cut"][1], s.detail
    r = score_output(src, tgt, out)
    assert "cut_glasses" in {x.name for x in r.failures()}, r.text()


@pytest.mark.parametrize("source, target", [("obama_portrait", "astronaut"),
                                            ("astronaut", "obama_portrait")])
def test_drawn_glasses_kept_pass_and_cut_fail(runner_binary, source, target, tmp_path):
    """Drawn glasses (not a real frame: dark 2 px rings) on a source: the runner's swap
    onto a frontal face keeps them and passes; the planted cut fails."""
    img = load_rgb(evalset.face_path(source))
    drawn = planted.draw_glasses(img, reference_landmarks(img))
    save_rgb(tmp_path / "drawn.png", drawn)
    tgt = load_rgb(evalset.face_path(target))
    out = _swap(runner_binary, tmp_path / "drawn.png", target, tmp_path / "out")
    good, tl = _score(drawn, tgt, out)
    assert good.passed is True, good.detail
    cut, _ = _score(drawn, tgt, planted.cut_source_glasses(out, tgt, tl))
    assert cut.passed is False, cut.detail


def test_source_without_glasses_is_not_scored():
    for name in ("obama_portrait", "biden_blue_room", "obama_blue_room", "obama_congress",
                 "astronaut"):
        face = load_rgb(evalset.face_path(name))
        evidence, rims, _, _ = source_lens_rims(face, reference_landmarks(face))
        assert rims is None and evidence < GLASSES_BRIDGE_MIN, (name, evidence)
        s, _ = _score(face, face, face)
        assert s.value is None and s.passed is None, (name, s.detail)
        assert "no glasses" in s.detail["reason"]


def test_rims_are_the_lower_outer_ring_not_the_arms():
    """The rims measured lie round each eye (within 0.45 IOD of its centre, below it, on
    the temple side): the arms beyond the rings and the bar along the brows are left out."""
    src = load_rgb(evalset.face_path(GLASSES))
    sl = reference_landmarks(src)
    evidence, rims, _, _ = source_lens_rims(src, sl)
    assert evidence >= GLASSES_BRIDGE_MIN and rims is not None
    iod = geo.inter_ocular(sl)
    centres = geo.eye_centres(sl)
    for rim, centre, other in zip(rims, centres, centres[::-1]):
        ys, xs = np.nonzero(rim)
        assert len(xs) > 0.3 * iod
        d = np.stack([xs, ys], 1) - centre
        outward = (centre - other) / np.linalg.norm(centre - other)
        assert (np.linalg.norm(d, axis=1) < 0.45 * iod).all()
        assert (d[:, 1] > 0).all() and (d @ outward >= -1).all()
    assert DEFAULT_THRESHOLDS.cut_glasses_max == 0.3
