"""Face geometry shared by the scores: 68-point landmark helpers, the face mask and the
rings around its boundary.

Landmarks are float arrays of shape (68, 2) in image pixels (x, y), iBUG 300-W order
(0-16 jaw, 17-26 brows, 27-35 nose, 36-41 right eye, 42-47 left eye, 48-67 mouth).

The face mask
-------------
When the runner's own mask is not available the mask is rebuilt from the target's 68
landmarks: the filled convex hull of all 68 points (`mask_from_landmarks`). That is the
region a landmark-driven swap replaces (jaw line + brows), and it is what the Python
reference blend (`harness.quality.synthetic`) pastes. Masks are uint8 arrays, 255 inside,
0 outside, with the image's height and width.

Rings
-----
Distances to the mask boundary come from a Euclidean distance transform, so a ring
"between 3 and 8 px inside" is exact and independent of the hull's shape. All ring widths
in the scores are given as fractions of the inter-ocular distance (IOD), so a score means
the same on a 300 px face and on a 60 px face.
"""

from __future__ import annotations

import cv2
import numpy as np

N_LANDMARKS = 68
JAW = slice(0, 17)
BROWS = slice(17, 27)
NOSE = slice(27, 36)
RIGHT_EYE = slice(36, 42)
LEFT_EYE = slice(42, 48)
MOUTH = slice(48, 68)
#: Outer eye corners: the 300-W "inter-ocular" normalisation of NME.
OUTER_EYE_CORNERS = (36, 45)


def as_landmarks(points) -> np.ndarray:
    """Validate and convert to a float64 (68, 2) array; raises ValueError otherwise."""
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] < 2 or pts.shape[0] != N_LANDMARKS:
        raise ValueError(f"expected 68 landmarks of shape (68, 2), got shape {pts.shape}")
    pts = pts[:, :2]
    if not np.all(np.isfinite(pts)):
        raise ValueError("landmarks contain NaN or inf")
    return pts


def inter_ocular(landmarks) -> float:
    """Distance between the outer eye corners (points 36 and 45), in pixels."""
    pts = as_landmarks(landmarks)
    d = float(np.linalg.norm(pts[OUTER_EYE_CORNERS[0]] - pts[OUTER_EYE_CORNERS[1]]))
    if d < 1.0:
        raise ValueError(f"degenerate landmarks: inter-ocular distance {d:.2f} px")
    return d


def eye_centres(landmarks) -> tuple[np.ndarray, np.ndarray]:
    pts = as_landmarks(landmarks)
    return pts[RIGHT_EYE].mean(axis=0), pts[LEFT_EYE].mean(axis=0)


def mask_from_landmarks(landmarks, shape) -> np.ndarray:
    """Filled convex hull of the 68 landmarks as a uint8 mask (255 inside) of `shape[:2]`."""
    pts = as_landmarks(landmarks)
    h, w = int(shape[0]), int(shape[1])
    mask = np.zeros((h, w), np.uint8)
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_8)
    return mask


def as_mask(mask, shape) -> np.ndarray:
    """Bool mask of `shape[:2]` from a uint8/bool/float mask (anything > half counts)."""
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[..., 0]
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {m.shape} does not match image shape {tuple(shape[:2])}")
    if m.dtype == bool:
        return m.copy()
    if np.issubdtype(m.dtype, np.floating):
        return m > (0.5 if m.max() <= 1.0 else 127.5)
    return m > 127


def signed_distance(mask) -> np.ndarray:
    """Signed distance to the mask boundary in pixels: > 0 inside, < 0 outside.

    A pixel right at the edge is at +-0.5 .. 1; the boundary lies between the two.
    """
    m = np.asarray(mask, dtype=bool).astype(np.uint8)
    inside = cv2.distanceTransform(m, cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - m, cv2.DIST_L2, 5)
    return inside - outside


def ring(sd: np.ndarray, start_px: float, stop_px: float) -> np.ndarray:
    """Pixels whose signed distance d satisfies start <= d < stop (positive = inside)."""
    lo, hi = min(start_px, stop_px), max(start_px, stop_px)
    return (sd >= lo) & (sd < hi)


def dilate(mask, radius_px: float) -> np.ndarray:
    """Bool mask grown by `radius_px` (Euclidean)."""
    sd = signed_distance(mask)
    return sd > -float(radius_px)


def face_centre(landmarks) -> np.ndarray:
    pts = as_landmarks(landmarks)
    return pts.mean(axis=0)


def angular_sectors(shape, centre, n: int) -> np.ndarray:
    """Integer sector index 0..n-1 of every pixel by its angle around `centre`."""
    h, w = int(shape[0]), int(shape[1])
    yy, xx = np.mgrid[0:h, 0:w]
    ang = np.arctan2(yy - centre[1], xx - centre[0])  # -pi..pi
    idx = np.floor((ang + np.pi) / (2 * np.pi) * n).astype(np.int32)
    return np.clip(idx, 0, n - 1)


def similarity_transform(src, dst) -> np.ndarray:
    """2x3 least-squares similarity (Umeyama) mapping src points onto dst points."""
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var = (s0 ** 2).sum() / len(src)
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1
    r = u @ np.diag(d) @ vt
    c = (sig * d).sum() / var if var > 0 else 1.0
    t = mu_d - c * r @ mu_s
    return np.c_[c * r, t]
