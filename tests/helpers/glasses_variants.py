"""grace_hopper.jpg (the one face with glasses) turned, mirrored and shrunk with OpenCV, as the
lower-rim checks of the glasses frame finder use it (docs/quality.md, "lower rims"), and the
regions of a face where its lower rims and the cheeks below them lie, in the face's own axes
(so they follow a turned face)."""

from __future__ import annotations

import cv2
import numpy as np

from harness.quality.glasses import eye_axes
from helpers.paths import REPO

GRACE_HOPPER = REPO / "models" / "test_images" / "grace_hopper.jpg"
#: name -> how the photo is changed; turned about the image centre, counter-clockwise positive,
#: black corners; shrunk with INTER_AREA (as harness/inputs/portraits.py makes its variants)
VARIANTS = ("as_is", "rot+15", "rot-15", "mirror", "scale50", "scale35")


def glasses_variant(name: str) -> np.ndarray:
    """The BGR image of one of VARIANTS."""
    img = cv2.imread(str(GRACE_HOPPER))
    h, w = img.shape[:2]
    if name.startswith("rot"):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), float(name[3:]), 1.0)
        return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    if name == "mirror":
        return img[:, ::-1].copy()
    if name.startswith("scale"):
        f = int(name[5:]) / 100
        return cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_AREA)
    assert name == "as_is", name
    return img


def rim_regions(lm: np.ndarray, shape) -> dict[str, np.ndarray]:
    """Masks from the 68 points, in face axes (u along the eye line, v down the face, in eye
    distances from each eye centre): each lower rim (|u| < 0.45, 0.2 < v < 0.6) and the cheek
    below it, where under-eye and cheek wrinkles are and no frame is (|u| < 0.5,
    0.75 < v < 1.1)."""
    le, re_, iod, ex, ey = eye_axes(lm)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    p = np.stack([xx, yy], -1).astype(np.float32)
    out = {}
    for side, c in (("left", le), ("right", re_)):
        u, v = (p - c) @ ex / iod, (p - c) @ ey / iod
        out[f"{side}_lower_rim"] = (abs(u) < 0.45) & (v > 0.2) & (v < 0.6)
        out[f"{side}_cheek"] = (abs(u) < 0.5) & (v > 0.75) & (v < 1.1)
    return out


def rim_coverage(mask: np.ndarray, lm: np.ndarray) -> dict[str, float]:
    """How much of each lower rim's width `mask` spans: the share of 16 strips, 0.05 eye
    distances wide across |u| < 0.4 under the eye (0.2 < v < 0.6), with a pixel of `mask`. A
    rim found whole spans all; a rim found in pieces leaves strips empty."""
    le, re_, iod, ex, ey = eye_axes(lm)
    ys, xs = np.nonzero(mask)
    p = np.stack([xs, ys], 1).astype(np.float32)
    out = {}
    for side, c in (("left", le), ("right", re_)):
        u, v = (p - c) @ ex / iod, (p - c) @ ey / iod
        on = (abs(u) < 0.4) & (v > 0.2) & (v < 0.6)
        out[f"{side}_lower_rim"] = len(np.unique(np.floor((u[on] + 0.4) / 0.05))) / 16
    return out


def under_the_eyes(lm: np.ndarray, shape) -> dict[str, np.ndarray]:
    """Half-discs of 0.3 eye distances below each eye centre (face axes): skin seen through
    the lens, where under-eye wrinkles are and no frame is."""
    le, re_, iod, _, ey = eye_axes(lm)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    p = np.stack([xx, yy], -1).astype(np.float32)
    return {f"under_{side}_eye": (np.hypot(xx - c[0], yy - c[1]) < 0.3 * iod) & ((p - c) @ ey > 0)
            for side, c in (("left", le), ("right", re_))}
