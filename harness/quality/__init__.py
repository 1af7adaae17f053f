"""Blend quality scoring for SwapLab (see docs/quality.md).

    from harness.quality import score_blend, thresholds_for_profile
    scores = score_blend(source, target, output, target_landmarks,
                         source_landmarks=..., output_landmarks=...,
                         thresholds=thresholds_for_profile(profile))
    scores.passed, scores.failures(), scores.as_dict()

Modules: scores (the blend scores), face_scores (whole-face colour, doubled brows, target
structure, leak, pose points), cut_glasses (a source's glasses cut at the mask edge),
temporal (jitter, flicker), faces (the right faces
swapped), retinex (the runner's low-light pass, for the enhanced reference), regions (face
regions from landmarks), planted (defects planted in good swaps), score_output (the logic
of `swaplab score`, harness/cli/score.py), thresholds (the one place thresholds live), geometry
(landmarks, masks, rings), identity (face embedding / fallback descriptor), golden
(golden comparison, diff heat map, side-by-side panel), report_images (files for the
report), landmarks (reference-pipeline landmarks), synthetic (good and broken reference
blends), calibrate (threshold calibration table).
"""

from harness.quality.geometry import inter_ocular, mask_from_landmarks
from harness.quality.golden import (
                                    GOLDEN_DIR,
                                    GoldenComparison,
                                    compare_to_golden,
                                    diff_heatmap,
                                    golden_path,
                                    load_rgb,
                                    save_rgb,
                                    side_by_side,
)
from harness.quality.landmarks import landmark_fn, reference_landmarks
from harness.quality.report_images import write_quality_images
from harness.quality.scores import BlendScores, Score, score_blend
from harness.quality.thresholds import DEFAULT_THRESHOLDS, QualityThresholds, thresholds_for_profile

__all__ = [
                                    "DEFAULT_THRESHOLDS",
                                    "GOLDEN_DIR",
                                    "BlendScores",
                                    "GoldenComparison",
                                    "QualityThresholds",
                                    "Score",
                                    "compare_to_golden",
                                    "diff_heatmap",
                                    "golden_path",
                                    "inter_ocular",
                                    "landmark_fn",
                                    "load_rgb",
                                    "mask_from_landmarks",
                                    "reference_landmarks",
                                    "save_rgb",
                                    "score_blend",
                                    "side_by_side",
                                    "thresholds_for_profile",
                                    "write_quality_images",
]
