"""Face regions from 68 landmarks, for the scores that look inside the swapped face.

Pure functions: (68, 2) landmarks and an image shape in, bool masks out. Widths are
fractions of the inter-ocular distance (IOD, outer eye corners) so a region means the
same on a 60 px and a 300 px face.

  feature_mask       brows, eyes, nose and mouth, each grown by `grow` * IOD
  interior_skin      the face's skin: the landmark hull shrunk by `inset` * IOD, features out
  outside_skin_band  a band outside the hull (forehead, temples, cheeks' edge, neck side)
  robust_median      the median colour of a region after dropping outliers (hair, shadow)
"""

from __future__ import annotations

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000

from harness.quality import geometry as geo

#: polygons of the facial features, iBUG 68 indices
FEATURES = {
    "right_brow": list(range(17, 22)),
    "left_brow": list(range(22, 27)),
    "right_eye": list(range(36, 42)),
    "left_eye": list(range(42, 48)),
    "nose": [27, 31, 32, 33, 34, 35],
    "mouth": list(range(48, 60)),
}


def feature_mask(landmarks, shape, iod: float, grow: float = 0.08,
                 names: tuple[str, ...] | None = None) -> np.ndarray:
    """Convex hull of each feature's points, grown by `grow` * IOD (bool)."""
    pts = geo.as_landmarks(landmarks)
    m = np.zeros(shape[:2], np.uint8)
    for name, idx in FEATURES.items():
        if names is not None and name not in names:
            continue
        hull = cv2.convexHull(np.round(pts[idx]).astype(np.int32))
        cv2.fillConvexPoly(m, hull, 1)
    r = max(1, round(grow * iod))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    return cv2.dilate(m, k) > 0


def interior_skin(landmarks, shape, iod: float, inset: float = 0.10,
                  feature_grow: float = 0.10) -> np.ndarray:
    """The hull of the 68 points shrunk by `inset` * IOD, minus the grown features."""
    hull = geo.mask_from_landmarks(landmarks, shape) > 0
    inner = geo.signed_distance(hull) > inset * iod
    return inner & ~feature_mask(landmarks, shape, iod, feature_grow)


def outside_skin_band(landmarks, shape, iod: float, near: float = 0.05,
                      far: float = 0.35) -> np.ndarray:
    """Pixels `near`..`far` * IOD outside the hull of the 68 points (forehead above the
    brows, temples, ears, neck beside the jaw). Mixed with hair and background: the caller
    keeps the pixels near a skin colour (`robust_median`)."""
    hull = geo.mask_from_landmarks(landmarks, shape) > 0
    sd = geo.signed_distance(hull)
    return (sd <= -near * iod) & (sd > -far * iod)


def robust_median(lab: np.ndarray, region: np.ndarray, reference=None,
                  max_de: float = 15.0, min_pixels: int = 30) -> tuple[np.ndarray | None, int]:
    """Median Lab of the pixels of `region` within CIEDE2000 `max_de` of `reference`
    (default: the region's own median, refined once). (None, n) when fewer than
    `min_pixels` pixels qualify."""
    px = lab[region]
    if len(px) < min_pixels:
        return None, len(px)
    ref = np.median(px, axis=0) if reference is None else np.asarray(reference, float)
    for _ in range(2 if reference is None else 1):
        keep = px[deltaE_ciede2000(px, ref[None, :]) < max_de]
        if len(keep) < min_pixels:
            return None, len(keep)
        ref = np.median(keep, axis=0)
    return ref, len(keep)

