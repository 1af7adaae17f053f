"""Every quality score of one swapped output: the logic of `swaplab score`.

    result = score_output(source, target, output, faces="all", enhanced="auto")
    result.passed, result.scores, result.as_dict(), result.text()

Images are RGB uint8 arrays. Landmarks and face boxes come from the reference pipeline
(harness.reference: the project's own models/ with ncnn), the output's on the target's
detector crop (see harness.quality.landmarks). When the Retinex pass ran (`enhanced="on"`,
or `"auto"` and the output's background is nearer the enhanced target than the original),
every score compares against the enhanced target (harness.quality.retinex).

Gating scores: colour (boundary and whole interior), seam, background SSIM/PSNR, identity,
face colour, doubled brows, target structure, half-erased glasses, cut glasses, leak, pose
points, right faces. The 68-point pose NME
(`pose`) is reported as advisory: on real swaps it measures the face shape, not the pose
(docs/quality.md).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from harness.quality import face_scores as F
from harness.quality import geometry as geo
from harness.quality.cut_glasses import cut_glasses_score
from harness.quality.faces import faces_swapped
from harness.quality.glasses import glasses_check
from harness.quality.landmarks import every_face, reference_landmarks
from harness.quality.retinex import retinex_enhance
from harness.quality.scores import BlendScores, Score, _psnr, identity_transfer, score_blend
from harness.quality.thresholds import DEFAULT_THRESHOLDS, QualityThresholds

ADVISORY = {"pose"}
ENHANCED_CHOICES = ("auto", "on", "off")


class ScoreInputError(ValueError):
    """An input that cannot be scored (no face in the source or target, sizes differ)."""


@dataclasses.dataclass
class OutputScores:
    scores: list[Score]
    enhanced_reference: bool
    face_policy: str

    @property
    def passed(self) -> bool:
        return not any(s.passed is False for s in self.scores if s.name not in ADVISORY)

    def failures(self) -> list[Score]:
        return [s for s in self.scores if s.passed is False and s.name not in ADVISORY]

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "enhanced_reference": self.enhanced_reference,
                "face_policy": self.face_policy,
                "scores": [{**dataclasses.asdict(s), "advisory": s.name in ADVISORY}
                           for s in self.scores]}

    def text(self) -> str:
        lines = []
        for s in self.scores:
            tag = "advisory" if s.name in ADVISORY else (
                "pass" if s.passed else "FAIL" if s.passed is False else "n/a")
            lines.append(f"{tag:8s} {s.name:16s} {s.message()}")
        lines.append(f"reference target: {'enhanced (Retinex)' if self.enhanced_reference else 'as given'}")
        lines.append(f"passed: {str(self.passed).lower()}")
        return "\n".join(lines)


def _background_psnr(a: np.ndarray, b: np.ndarray, face_mask: np.ndarray) -> float:
    sel = ~face_mask
    d = (a[sel].astype(np.float64) - b[sel].astype(np.float64)) ** 2
    return _psnr(float(d.mean())) if d.size else 0.0


def pick_reference(target: np.ndarray, output: np.ndarray, enhanced: str,
                   target_landmarks) -> tuple[np.ndarray, bool]:
    """(the target to compare with, whether it is the Retinex-enhanced one)."""
    if enhanced not in ENHANCED_CHOICES:
        raise ValueError(f"enhanced={enhanced!r}: expected one of {', '.join(ENHANCED_CHOICES)}")
    if enhanced == "off":
        return target, False
    boosted = retinex_enhance(target)
    if enhanced == "on":
        return boosted, True
    face = geo.dilate(geo.mask_from_landmarks(target_landmarks, target.shape) > 0,
                      0.5 * geo.inter_ocular(target_landmarks))
    if _background_psnr(output, boosted, face) > _background_psnr(output, target, face):
        return boosted, True
    return target, False


def score_output(source: np.ndarray, target: np.ndarray, output: np.ndarray, *,
                 mode: str = "small", faces: str = "all", enhanced: str = "auto",
                 thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> OutputScores:
    if output.shape[:2] != target.shape[:2]:
        raise ScoreInputError(f"output is {output.shape[1]}x{output.shape[0]} px, target "
                              f"{target.shape[1]}x{target.shape[0]}: not the same frame")
    raw_tl = reference_landmarks(target, mode)
    if raw_tl is None:
        raise ScoreInputError("target: no face found")
    ref, boosted = pick_reference(target, output, enhanced, raw_tl)
    tl = reference_landmarks(ref, mode) if boosted else raw_tl
    if tl is None:
        raise ScoreInputError("target (enhanced): no face found")
    sl = reference_landmarks(source, mode)
    if sl is None:
        raise ScoreInputError("source: no face found")
    ol = reference_landmarks(output, mode, roi_image=ref)
    _, scores = score_frame(source, ref, output, tl, sl, ol, thresholds)
    boxes = [d.box for d in every_face(ref, mode)]
    scores.append(faces_swapped(ref, output, boxes, faces, thresholds.missed_faces_max))
    return OutputScores(scores, boosted, faces)


def score_frame(source: np.ndarray, target: np.ndarray, output: np.ndarray, target_landmarks,
                source_landmarks, output_landmarks,
                thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> tuple[BlendScores, list[Score]]:
    """Every per-frame score of one output (pure; the quality suite and `swaplab score`):
    the blend scores and the face checks. When the output wears the target's glasses whole
    (base mode keeps them on purpose), identity compares the output with the source wearing
    that frame (the warped source with the target's frame pixels), not the bare source, and
    target structure leaves the frame to the half-erased glasses score."""
    t = thresholds
    blend = score_blend(source, target, output, target_landmarks, source_landmarks=source_landmarks,
                        output_landmarks=output_landmarks, thresholds=t)
    ex = F.expected_landmarks(source_landmarks, target_landmarks)
    warped = F.warp_source(source, source_landmarks, target_landmarks, target.shape)
    glasses, kept = glasses_check(output, target, target_landmarks,
                                  t.half_erased_glasses_max)
    if kept is not None:
        wearing = warped.copy()
        wearing[kept] = target[kept][..., :3]
        identity = identity_transfer(wearing, target, output, ex, target_landmarks,
                                     output_landmarks, threshold=t.identity_margin_min)
        identity.detail["source_reference"] = "the source wearing the target's kept glasses"
        blend = dataclasses.replace(blend, identity=identity)
    face = face_checks(output, target, target_landmarks, ex, warped, output_landmarks, t,
                       glasses=glasses, kept_frame=kept, source=source,
                       source_landmarks=source_landmarks)
    return blend, blend.all() + face


#: scores of what only some modes do, gated in those modes only (the lab's quality and A/B
#: suites): the runner keeps the target's glasses in base mode (runner/README.md,
#: "Glasses"); a half-erased frame in the quick modes is their known limit, recorded with
#: its verdict but not failing the test
GATED_IN_MODES = {"glasses": ("base",)}

#: threshold key of each face check, by score name
THRESHOLD_KEYS = {"face_colour": "face_colour_de_max", "brows": "doubled_brows_max",
                  "target_structure": "target_structure_max",
                  "glasses": "half_erased_glasses_max", "cut_glasses": "cut_glasses_max",
                  "leak": "leak_ratio_max", "pose_points": "pose_points_nme_max",
                  "faces": "missed_faces_max"}


def face_checks(output: np.ndarray, target: np.ndarray, target_landmarks, ex, warped: np.ndarray,
                output_landmarks, thresholds: QualityThresholds = DEFAULT_THRESHOLDS, *,
                glasses: Score, kept_frame: np.ndarray | None, source: np.ndarray,
                source_landmarks) -> list[Score]:
    """The face scores of one frame (pure): face colour, doubled brows, target structure,
    half-erased glasses, cut glasses (the source's, from `source` and its landmarks), leak,
    pose points. `ex` and `warped` are the source's expected landmarks and the warped
    source (face_scores.expected_landmarks / warp_source), `glasses` and `kept_frame` the
    half-erased glasses score and the kept frame (glasses.glasses_check, one pass of the
    frame finder for both); the output's landmarks only give the pose points' mesh reading,
    for comparison."""
    t = thresholds
    return [F.face_interior_colour(output, target, target_landmarks, t.face_colour_de_max),
            F.doubled_brows(output, target, warped, target_landmarks, ex, t.doubled_brows_max),
            F.target_structure(output, target, warped, target_landmarks, ex,
                               t.target_structure_max, kept_frame),
            glasses,
            cut_glasses_score(output, source, source_landmarks, target_landmarks, warped,
                              t.cut_glasses_max),
            F.background_leak(output, target, target_landmarks, ex, t.leak_ratio_max),
            F.transferable_pose(output, warped, ex, t.pose_points_nme_max,
                                output_landmarks=output_landmarks)]


def newly_failing(baseline: list[Score], candidate: list[Score],
                  advisory: tuple[str, ...] = ()) -> list[str]:
    """Scores one output of the candidate build fails where the baseline build's output of
    the same input passes (an A/B of runner builds, suites/test_ab.py): one line each, the
    two values and the threshold. Scores named in `advisory` (recorded but not gated in
    this mode) are left out; a score the baseline already failed is no news."""
    before = {s.name: s for s in baseline}
    out = []
    for s in candidate:
        b = before.get(s.name)
        if s.passed is False and s.name not in advisory and b is not None and b.passed:
            op = "<=" if s.direction == "lower" else ">="
            out.append(f"{s.metric}: baseline {b.value:.4g} -> candidate {s.value:.4g} "
                       f"(threshold {op} {s.threshold:g})")
    return out
