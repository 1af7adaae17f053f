"""A source's glasses cut at the mask edge (issue 18): the lens rims the source wears, carried
into the target frame, missing from the output.

Pure (arrays in, Score out). Whether the source wears glasses is `glasses.target_glasses`'s
bridge test on the source (it works on any face). Its frame mask follows the dark upper bar
and the bridge but often misses light rims (grace_hopper's amber rings), so the rims are
found here by fitting one ellipse per lens to the source's black-hat (the ellipse whose
samples round its lower half have the highest RING_PERCENTILE: a ring is a long line, an eye
bag a short one). Measured is each ring's outer lower quarter (outward of the eye centre,
from RIM_BELOW x IOD below it): the part a mask edge crosses when the source's glasses are
wider than the target's or the source's own face. Left out on purpose: the arms beyond the rings, which every
face swap cuts at the temple, and the rims above the eye line, which lie along the brows, in
the mask's top band where the runner keeps the target's brows (docs/quality.md, "Cut
glasses").

A rim pixel is shown when the output's line response (black-hat of luma) carries the warped
source's there: alpha = G(out * src) / G(src * src) (Gaussian window) >= SHOWN_MIN x gain,
gain = the same ratio over the frame's bridge (clamped to [GAIN_MIN, 1]): the colour
correction and the Poisson solve change a line's contrast, the same on the bridge as on the
rims, but do not remove it. The value is the worse lens's share of rim pixels not shown:
~0 when the rims are in the output, 1 when the target is there instead. IOD here is the
distance between the outer eye corners (geometry.inter_ocular).
"""

from __future__ import annotations

import cv2
import numpy as np

from harness.quality import geometry as geo
from harness.quality.face_scores import warp_source
from harness.quality.glasses import black_hat, eye_axes, line_kernel, target_glasses
from harness.quality.result import Score, _score
from harness.quality.thresholds import DEFAULT_THRESHOLDS

#: ellipse search per lens, fractions of the IOD: centre offset outward / down from the eye
#: centre, half-axes across / along the face (grace_hopper's rings: 0.24-0.26 x 0.32-0.36;
#: planted.draw_glasses: 0.24 x 0.17)
RING_OFFSET = np.arange(-0.04, 0.1001, 0.02)
RING_AXIS_U = np.arange(0.18, 0.4201, 0.02)
RING_AXIS_V = np.arange(0.14, 0.3801, 0.02)
#: the ring is the ellipse with the highest RING_PERCENTILE of black-hat along its lower half
#: and RING_ABOVE_DEG above its horizontal axis on both sides (a ring's sides run up to the
#: eye line and beyond, the wrinkles inside a lens do not)
RING_PERCENTILE = 20
RING_ABOVE_DEG = 20.0
#: a rim pixel is on a line when the source's black-hat there is >= this x the bridge evidence
RIM_LINE_MIN = 0.3
#: the measured rim starts this x IOD below the eye centre (the upper corners of a ring lie
#: in the mask's top band, beside the brows)
RIM_BELOW = 0.05
#: rim thickness, fraction of the IOD
RIM_THICKNESS = 0.03
#: Gaussian window of the shown test, px; alpha >= SHOWN_MIN x gain counts as shown
SHOWN_SIGMA_PX = 2.5
SHOWN_MIN = 0.5
#: the line's contrast in the output relative to the source's, measured on the frame's bridge
#: (always inside the swapped face), scales SHOWN_MIN: the colour correction lightens dark
#: drawn rims to ~0.4 of their black-hat; clamped to [GAIN_MIN, 1] so that an output without
#: the source's bridge still needs a line at the rims
GAIN_MIN = 0.25
#: a lens with fewer measured rim pixels than this x IOD is not judged
MIN_RIM_PX = 0.3


def _black_hat(rgb: np.ndarray, iod: float) -> np.ndarray:
    """glasses.black_hat with its kernel for `iod` (here the outer-corner distance), float."""
    return black_hat(rgb, line_kernel(iod)[1]).astype(np.float32)


def source_lens_rims(source_rgb: np.ndarray, source_landmarks
                     ) -> tuple[float, list[np.ndarray] | None, np.ndarray | None,
                                list[tuple] | None]:
    """(bridge evidence, [rim mask of the lens over eye 36-41, over eye 42-47], the
    frame's bridge (its pixels between the inner eye corners), the fitted ellipses); all but
    the evidence None without glasses. Rim masks hold each ring's outer lower quarter, only
    where the source has a line; masks are in the source's pixels."""
    evidence, frame = target_glasses(source_rgb, source_landmarks)
    if frame is None:
        return evidence, None, None, None
    lm = geo.as_landmarks(source_landmarks)
    iod = geo.inter_ocular(lm)
    bh = _black_hat(source_rgb, iod)
    eyes = np.zeros(bh.shape, np.uint8)
    for a in (36, 42):
        cv2.fillConvexPoly(eyes, cv2.convexHull(np.rint(lm[a:a + 6]).astype(np.int32)), 255)
    g = max(1, round(0.04 * iod))
    bh[cv2.dilate(eyes, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1,) * 2)) > 0] = 0
    le, re_, _, ex, ey = eye_axes(lm)
    h, w = bh.shape
    th = np.radians(np.arange(-RING_ABOVE_DEG, 180.0 + RING_ABOVE_DEG, 2.0))
    yy, xx = np.mgrid[0:h, 0:w]
    rims, fits = [], []
    for centre, side in ((le, -1.0), (re_, 1.0)):
        out_dir = side * ex
        du, dv, au, av = np.meshgrid(RING_OFFSET, RING_OFFSET, RING_AXIS_U, RING_AXIS_V,
                                     indexing="ij")
        du, dv, au, av = (x.reshape(-1, 1) * iod for x in (du, dv, au, av))
        cu = np.cos(th)[None] * au + du                      # (ellipses, samples)
        cv_ = np.sin(th)[None] * av + dv
        px = centre[0] + cu * out_dir[0] + cv_ * ey[0]
        py = centre[1] + cu * out_dir[1] + cv_ * ey[1]
        xi, yi = np.rint(px).astype(int), np.rint(py).astype(int)
        inside = ((xi >= 0) & (yi >= 0) & (xi < w) & (yi < h)).all(1)
        if not inside.any():
            rims.append(np.zeros(bh.shape, bool))
            fits.append(None)
            continue
        vals = bh[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)]
        strength = np.where(inside, np.percentile(vals, RING_PERCENTILE, axis=1), -1.0)
        i = int(np.argmax(strength))
        ring = np.zeros(bh.shape, np.uint8)
        pts = np.stack([px[i], py[i]], 1)
        cv2.polylines(ring, [np.rint(pts).astype(np.int32).reshape(-1, 1, 2)], False, 255,
                      max(1, round(RIM_THICKNESS * iod)))
        rel = np.stack([xx, yy], -1) - centre
        quarter = ((rel @ out_dir) >= 0) & ((rel @ ey) >= RIM_BELOW * iod)
        rims.append((ring > 0) & quarter & (bh >= RIM_LINE_MIN * evidence))
        fits.append(tuple(round(float(x[i, 0]) / iod, 2) for x in (du, dv, au, av)))
    mid = (lm[39] + lm[42]) / 2
    half = abs(float((lm[42] - lm[39]) @ ex)) / 2
    bridge = frame & (np.abs((np.stack([xx, yy], -1) - mid) @ ex) <= half)
    return evidence, rims, bridge, fits


def _warp_mask(mask: np.ndarray, source_landmarks, target_landmarks, shape) -> np.ndarray:
    """`mask` carried into the target frame by the similarity of face_scores.warp_source."""
    m = geo.similarity_transform(geo.as_landmarks(source_landmarks),
                                 geo.as_landmarks(target_landmarks))
    return cv2.warpAffine(mask.astype(np.uint8) * 255, m, (shape[1], shape[0]),
                          flags=cv2.INTER_LINEAR) > 127


def cut_source_glasses(output: np.ndarray, source: np.ndarray, source_landmarks,
                       target_landmarks, warped: np.ndarray | None = None) -> dict:
    """Worse lens's share of the source's rim (outer lower quarter of each ring) that the
    output does not show. `value` None when the source wears no glasses or no rim was
    found; `warped` is face_scores.warp_source's image (computed when not given)."""
    evidence, rims, bridge, fits = source_lens_rims(source, source_landmarks)
    out = {"value": None, "evidence": evidence}
    if rims is None:
        out["reason"] = f"the source wears no glasses (bridge evidence {evidence:.1f})"
        return out
    if warped is None:
        warped = warp_source(source, source_landmarks, target_landmarks, output.shape)
    iod = geo.inter_ocular(target_landmarks)
    hs, ho = _black_hat(warped, iod), _black_hat(output, iod)
    energy = cv2.GaussianBlur(hs * hs, (0, 0), SHOWN_SIGMA_PX)
    alpha = cv2.GaussianBlur(ho * hs, (0, 0), SHOWN_SIGMA_PX) / np.maximum(energy, 1e-3)
    b = _warp_mask(bridge, source_landmarks, target_landmarks, output.shape)
    gain = float((ho[b] * hs[b]).sum() / max(1e-3, float((hs[b] * hs[b]).sum()))) if b.any() else 1.0
    gain = min(1.0, max(GAIN_MIN, gain))
    cut = alpha < SHOWN_MIN * gain
    shares, sizes = [], []
    for rim in rims:
        r = _warp_mask(rim, source_landmarks, target_landmarks, output.shape)
        sizes.append(int(r.sum()))
        if r.sum() < MIN_RIM_PX * iod:
            shares.append(None)
            continue
        shares.append(float(cut[r].mean()))
    out.update(lens_cut=shares, rim_px=sizes, rings=fits, bridge_gain=round(gain, 3))
    judged = [s for s in shares if s is not None]
    if not judged:
        out["reason"] = f"no lens rim found below the eye line ({sizes} px)"
        return out
    out["value"] = max(judged)
    return out


def cut_glasses_score(output: np.ndarray, source: np.ndarray, source_landmarks,
                      target_landmarks, warped: np.ndarray | None = None,
                      threshold: float = DEFAULT_THRESHOLDS.cut_glasses_max) -> Score:
    """`cut_source_glasses` as a gating score; not scored when the source wears none."""
    r = cut_source_glasses(output, source, source_landmarks, target_landmarks, warped)
    return _score("cut_glasses", "quality_cut_glasses", "", "lower", r.pop("value"),
                  threshold, r)
