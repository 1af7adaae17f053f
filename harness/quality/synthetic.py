"""A Python reference face swap and deliberately broken variants of it.

Used to prove that each quality score catches the defect it exists for (tests and
`python -m harness.quality.calibrate`), and to give the suite a blend to compare with
when the runner is not there.

The good blend mirrors the mobile pipeline on 68 landmarks:
  align   similarity transform (Umeyama) from the source's inner-face landmarks (17-67)
          to the target's;
  warp    cv2.warpAffine of the source into the target frame;
  colour  Reinhard transfer in CIE Lab: the warped face's Lab mean/std inside the mask
          are matched to the target face's;
  mask    convex hull of the target's 68 landmarks, intersected with the warped source
          hull, eroded by 3 % of the inter-ocular distance (IOD);
  blend   cv2.seamlessClone (NORMAL_CLONE, Poisson).

Defects (each built from the same inputs as the good blend, changing one step):
  no_colour_correction  skip the colour step and composite with a feathered alpha mask
                        instead of Poisson (a Poisson blend hides a constant colour offset
                        on its own, so the patch only shows when no step corrects colour);
  hard_mask             colour-corrected face pasted with the binary mask, no feather,
                        no Poisson;
  shifted_5px           the warped face moved 5 px to the right before the blend (the
                        mask stays where the face belongs);
  wrong_scale           the warp scaled by WRONG_SCALE (0.8) about the face centre;
  background_touched    good blend, then a region outside the dilated mask is changed
                        (a blurred and brightened block, as a stray filter would do);
  no_swap               the target returned unchanged (identity must fail).
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
from skimage.transform import SimilarityTransform

from harness.quality import geometry as geo

#: wrong_scale: the face 20 % too small. (Enlarging by 15-20 % is cut back by the mask,
#: and the landmark model follows only part of it on small faces; shrinking is not.)
WRONG_SCALE = 0.8
#: shifted_5px: the shift in px (x, y)
SHIFT_PX = (5.0, 0.0)

DEFECTS = ("no_colour_correction", "hard_mask", "shifted_5px", "wrong_scale",
           "background_touched", "no_swap")


@dataclasses.dataclass
class SwapInputs:
    source: np.ndarray            # RGB uint8
    target: np.ndarray            # RGB uint8
    source_landmarks: np.ndarray  # (68, 2)
    target_landmarks: np.ndarray  # (68, 2)


@dataclasses.dataclass
class Blend:
    output: np.ndarray            # RGB uint8, target's size
    mask: np.ndarray              # uint8 0/255: where the face was pasted
    defect: str                   # "good" or one of DEFECTS


def similarity(src_pts, dst_pts) -> np.ndarray:
    """2x3 similarity transform (rotation, uniform scale, translation) src -> dst."""
    src = np.asarray(src_pts, np.float64)
    dst = np.asarray(dst_pts, np.float64)
    if hasattr(SimilarityTransform, "from_estimate"):       # scikit-image >= 0.26
        t = SimilarityTransform.from_estimate(src, dst)
        ok = bool(t)
    else:  # pragma: no cover - older scikit-image
        t = SimilarityTransform()
        ok = t.estimate(src, dst)
    if not ok:
        raise ValueError("cannot estimate the alignment transform (degenerate landmarks)")
    return np.asarray(t.params, np.float64)[:2]


def _warp(inputs: SwapInputs, scale: float = 1.0, shift=(0.0, 0.0)):
    src_l = geo.as_landmarks(inputs.source_landmarks)
    tgt_l = geo.as_landmarks(inputs.target_landmarks)
    m = similarity(src_l[17:], tgt_l[17:])
    if scale != 1.0 or shift != (0.0, 0.0):
        c = geo.face_centre(tgt_l)
        extra = np.array([[scale, 0, (1 - scale) * c[0] + shift[0]],
                          [0, scale, (1 - scale) * c[1] + shift[1]],
                          [0, 0, 1.0]])
        m = (extra @ np.vstack([m, [0, 0, 1]]))[:2]
    h, w = inputs.target.shape[:2]
    warped = cv2.warpAffine(inputs.source, m, (w, h), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REFLECT)
    warped_l = np.c_[src_l, np.ones(68)] @ m.T
    return warped, warped_l


def _mask(inputs: SwapInputs, warped_l: np.ndarray) -> np.ndarray:
    shape = inputs.target.shape
    iod = geo.inter_ocular(inputs.target_landmarks)
    mask = geo.mask_from_landmarks(inputs.target_landmarks, shape)
    mask &= geo.mask_from_landmarks(warped_l, shape)
    r = max(1, round(0.03 * iod))
    mask = cv2.erode(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
    return mask


def reinhard(warped: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Match the Lab mean and std of `warped` inside `mask` to `target`'s there."""
    m = mask > 127
    lab_w = cv2.cvtColor(warped.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    lab_t = cv2.cvtColor(target.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    mw, sw = lab_w[m].mean(0), lab_w[m].std(0) + 1e-6
    mt, st = lab_t[m].mean(0), lab_t[m].std(0) + 1e-6
    lab = ((lab_w - mw) / sw * st + mt).astype(np.float32)
    lab[..., 0] = np.clip(lab[..., 0], 0, 100)
    rgb = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def poisson(face: np.ndarray, target: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """cv2.seamlessClone in place (the face is already in target coordinates)."""
    x, y, w, h = cv2.boundingRect(mask)
    # seamlessClone pastes the mask's bounding box centred on `center`; with the box
    # centre computed like OpenCV does (integer halves) the paste lands in place.
    centre = (x + w // 2, y + h // 2)
    # (seamlessClone writes into the mask it is given: pass a copy)
    out = cv2.seamlessClone(cv2.cvtColor(face, cv2.COLOR_RGB2BGR),
                            cv2.cvtColor(target, cv2.COLOR_RGB2BGR), mask.copy(), centre,
                            cv2.NORMAL_CLONE)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def alpha(face: np.ndarray, target: np.ndarray, mask: np.ndarray, feather_px: float) -> np.ndarray:
    """Composite with the mask; feather_px > 0 blurs its edge over about that width."""
    a = (mask > 127).astype(np.float32)
    if feather_px > 0:
        k = int(2 * round(feather_px) + 1)
        a = cv2.GaussianBlur(a, (k, k), feather_px / 2.0)
    a = a[..., None]
    out = face.astype(np.float32) * a + target.astype(np.float32) * (1 - a)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def good_blend(inputs: SwapInputs) -> Blend:
    warped, warped_l = _warp(inputs)
    mask = _mask(inputs, warped_l)
    face = reinhard(warped, inputs.target, mask)
    return Blend(poisson(face, inputs.target, mask), mask, "good")


def broken_blend(inputs: SwapInputs, defect: str) -> Blend:
    """The good blend with one deliberate defect (see the module doc)."""
    if defect not in DEFECTS:
        raise ValueError(f"unknown defect {defect!r}; expected one of {', '.join(DEFECTS)}")
    iod = geo.inter_ocular(inputs.target_landmarks)
    if defect == "no_colour_correction":
        warped, warped_l = _warp(inputs)
        mask = _mask(inputs, warped_l)
        return Blend(alpha(warped, inputs.target, mask, feather_px=0.08 * iod), mask, defect)
    if defect == "hard_mask":
        warped, warped_l = _warp(inputs)
        mask = _mask(inputs, warped_l)
        face = reinhard(warped, inputs.target, mask)
        return Blend(alpha(face, inputs.target, mask, feather_px=0), mask, defect)
    if defect in ("shifted_5px", "wrong_scale"):
        _, warped_l = _warp(inputs)
        mask = _mask(inputs, warped_l)      # the mask stays where the face should be
        if defect == "shifted_5px":
            warped, _ = _warp(inputs, shift=SHIFT_PX)
        else:
            warped, _ = _warp(inputs, scale=WRONG_SCALE)
        face = reinhard(warped, inputs.target, mask)
        return Blend(poisson(face, inputs.target, mask), mask, defect)
    if defect == "background_touched":
        good = good_blend(inputs)
        return Blend(touch_background(good.output, good.mask, iod), good.mask, defect)
    # no_swap
    mask = geo.mask_from_landmarks(inputs.target_landmarks, inputs.target.shape)
    return Blend(inputs.target.copy(), mask, defect)


def touch_background(image: np.ndarray, mask: np.ndarray, iod: float) -> np.ndarray:
    """Blur and brighten a block of the background well away from the face."""
    out = image.copy()
    h, w = image.shape[:2]
    keep = geo.dilate(mask > 127, 0.5 * iod)
    bh, bw = h // 4, w // 4
    # the corner block farthest from the face
    cy, cx = np.argwhere(mask > 127).mean(0)
    y0 = 0 if cy > h / 2 else h - bh
    x0 = 0 if cx > w / 2 else w - bw
    block = out[y0:y0 + bh, x0:x0 + bw].astype(np.float32)
    block = cv2.GaussianBlur(block, (0, 0), 3.0) * 1.15 + 8
    patch = np.clip(block, 0, 255).astype(np.uint8)
    region = out[y0:y0 + bh, x0:x0 + bw]
    sel = ~keep[y0:y0 + bh, x0:x0 + bw]
    region[sel] = patch[sel]
    return out
