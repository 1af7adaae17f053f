"""Where the source's face landed in the output, found by registration (pure).

The pose points score asks whether the points that should transfer (eye centres, nose
root, nose tip) sit where the runner's similarity puts the source's. Reading the output's
points off the face mesh did not answer that: on a swap the mesh sees the source's inner
face inside the target's outline and places its points between the two, 2-7 px off on
well-placed swaps, about as far as a planted 5 px shift (docs/quality.md, "Pose points").
Here the output's inner face is registered onto the warped source (what the runner's warp
pastes) with OpenCV's ECC (enhanced correlation coefficient) maximisation, an affine
motion over the whole inner face, on band-passed luma: the colour correction and the
Poisson solve's smooth offset do not move it, while every eye lid, nostril and lip edge
votes. The motion, applied to the pose points, is how far each moved from its place.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from . import geometry as geo

#: the inner face that is registered: the expected hull shrunk by this (x IOD), so the
#: target's own outline and the blend's feathered edge stay out
INNER_INSET_IOD = 0.1
#: context around it for the motion to move into (x IOD)
PAD_IOD = 0.3
#: band-pass of luma (px): lids, iris, nostril and lip edges; not the skin's shading
FINE_PX, COARSE_PX = 1.0, 4.0
#: ECC correlation under which the output holds no source face where it belongs (the
#: target left unswapped scored 0.32-0.38 on the evaluation set, swaps 0.74-0.98)
MIN_CORRELATION = 0.6
_CRITERIA = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 200, 1e-6)


def _band(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(grey, (0, 0), FINE_PX) - cv2.GaussianBlur(grey, (0, 0), COARSE_PX)


def face_motion(output: np.ndarray, warped_source: np.ndarray, expected_landmarks,
                iod: float) -> tuple[np.ndarray | None, float]:
    """The affine motion (2x3, frame pixels) that carries the warped source's inner face
    onto the output's, and its ECC correlation; (None, 0.0) when ECC finds none."""
    hull = geo.mask_from_landmarks(geo.as_landmarks(expected_landmarks), output.shape) > 0
    inner = (geo.signed_distance(hull) > INNER_INSET_IOD * iod).astype(np.uint8)
    ys, xs = np.nonzero(inner)
    if len(ys) < 100:
        return None, 0.0
    pad = round(PAD_IOD * iod)
    y0, x0 = max(0, int(ys.min()) - pad), max(0, int(xs.min()) - pad)
    y1, x1 = int(ys.max()) + pad + 1, int(xs.max()) + pad + 1
    src, out = _band(warped_source)[y0:y1, x0:x1], _band(output)[y0:y1, x0:x1]
    warp = np.eye(2, 3, dtype=np.float32)
    try:
        cc, warp = cv2.findTransformECC(src, out, warp, cv2.MOTION_AFFINE, _CRITERIA,
                                        inner[y0:y1, x0:x1], 5)
    except cv2.error:  # no convergence: nothing like the source's face there
        return None, 0.0
    # from crop to frame coordinates: x_frame = A (x - o) + t + o
    a = warp[:, :2].astype(float)
    o = np.array([x0, y0], float)
    t = warp[:, 2].astype(float) + o - a @ o
    return np.hstack([a, t[:, None]]), float(cc)


def placement_error(output: np.ndarray, warped_source: np.ndarray, expected_landmarks,
                    points: np.ndarray, iod: float) -> dict:
    """How far `points` (the expected pose points) moved in the output: per point (px),
    their mean / IOD (`nme`; inf when no source face was found in place), the mean offset,
    and the eye line's change of angle (roll) and length (scale)."""
    motion, cc = face_motion(output, warped_source, expected_landmarks, iod)
    detail: dict = {"method": "ECC affine registration of the inner face onto the warped source",
                    "correlation": round(cc, 4), "iod_px": float(iod)}
    if motion is None or cc < MIN_CORRELATION:
        detail["reason"] = (f"the source's face is not where the warp puts it (ECC correlation "
                            f"{cc:.2f} < {MIN_CORRELATION})")
        detail["nme"] = float("inf")
        return detail
    p = np.asarray(points, float)
    moved = p @ motion[:, :2].T + motion[:, 2]
    err = np.linalg.norm(moved - p, axis=1)
    eo, et = moved[1] - moved[0], p[1] - p[0]
    roll = math.degrees(math.atan2(eo[1], eo[0]) - math.atan2(et[1], et[0]))
    detail.update({"point_error_px": [round(float(v), 2) for v in err],
                   "offset_px": [round(float(v), 2) for v in (moved - p).mean(0)],
                   "roll_deg": round((roll + 180) % 360 - 180, 3),
                   "scale_ratio": round(float(np.linalg.norm(eo) / max(np.linalg.norm(et), 1e-6)), 4),
                   "nme": float(err.mean() / iod)})
    return detail
