"""Temporal stability of a swapped sequence (video, or the same image repeated).

    landmark_jitter(output_landmarks, target_landmarks)  quality_jitter_px   (lower)
    flicker(output_frames, target_frames, face_mask)     quality_flicker_ratio (lower)

Pure functions. Jitter: per frame the pose points (eye centres, nose root, nose tip) of
the output minus the target's, i.e. how the face sits on the target, which must not move
when the target does not; the score is the largest distance of that offset from its
median over the frames, in px (the issue's goal for a static input: under 0.5 px).
Flicker: per pair of consecutive frames the share of face pixels whose luma changes by
more than FLICKER_LEVELS in the output but not in the target.
"""

from __future__ import annotations

import cv2
import numpy as np

from harness.quality import geometry as geo
from harness.quality.face_scores import pose_points
from harness.quality.result import Score, _score
from harness.quality.thresholds import DEFAULT_THRESHOLDS

#: flicker: a luma change (0-255, after a 1 px blur) larger than this counts
FLICKER_LEVELS = 6.0


def landmark_jitter(output_landmarks, target_landmarks,
                    threshold: float = DEFAULT_THRESHOLDS.jitter_max_px) -> Score:
    """`output_landmarks`/`target_landmarks`: one (68, 2) array per frame (output: None
    where no face was found, which fails the score)."""
    if len(output_landmarks) != len(target_landmarks) or len(output_landmarks) < 2:
        raise ValueError(f"need >= 2 frames of output and target landmarks, got "
                         f"{len(output_landmarks)} and {len(target_landmarks)}")
    missing = [i for i, o in enumerate(output_landmarks) if o is None]
    if missing:
        return _score("jitter", "quality_jitter_px", "px", "lower", float("inf"), threshold,
                      {"reason": f"no face in output frames {missing}"})
    off = np.stack([pose_points(o) - pose_points(t)
                    for o, t in zip(output_landmarks, target_landmarks)])      # (T, 4, 2)
    dev = np.linalg.norm(off - np.median(off, axis=0), axis=2).mean(axis=1)    # (T,)
    iod = float(np.median([geo.inter_ocular(t) for t in target_landmarks]))
    return _score("jitter", "quality_jitter_px", "px", "lower", float(dev.max()), threshold,
                  {"per_frame_px": [round(float(v), 3) for v in dev], "iod_px": iod,
                   "worst_frame": int(np.argmax(dev))})


def _luma(rgb: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(g, (0, 0), 1.0)


def flicker(output_frames, target_frames, face_mask,
            threshold: float = DEFAULT_THRESHOLDS.flicker_max) -> Score:
    if len(output_frames) != len(target_frames) or len(output_frames) < 2:
        raise ValueError(f"need >= 2 output and target frames, got {len(output_frames)} and "
                         f"{len(target_frames)}")
    m = geo.as_mask(face_mask, output_frames[0].shape)
    shares = []
    for i in range(1, len(output_frames)):
        d_o = np.abs(_luma(output_frames[i]) - _luma(output_frames[i - 1])) > FLICKER_LEVELS
        d_t = np.abs(_luma(target_frames[i]) - _luma(target_frames[i - 1])) > FLICKER_LEVELS
        shares.append(float((d_o & ~d_t & m).sum()) / max(int(m.sum()), 1))
    return _score("flicker", "quality_flicker_ratio", "", "lower", max(shares), threshold,
                  {"per_pair": [round(v, 4) for v in shares]})
