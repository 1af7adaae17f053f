"""Half-erased glasses (issue 18): the target's glasses frame kept above the eyes but replaced
below them, as a swap whose mask erodes the upper rims away from its edge leaves it.

Pure (arrays in, numbers out). The target's frame is found the way the runner's base mode
finds it (runner/src/occluders.cpp, runner/README.md "Glasses"): black-hat of luma with an
ellipse of 8 % of the eye distance (IOD); glasses when the best row across the nose between
the inner eye corners has a mean black-hat >= GLASSES_BRIDGE_MIN; the frame = lines >= 0.55
x that value in the eye band connected to that row, plus each lower rim followed around its
eye (`lower_rim`: faint light rims are not connected), minus lines seen through a lens. The
scorer keeps its own copy on purpose: it must judge the runner's output, not reuse the
runner's decision. Limit: it shares the finder's blind spots (a frame without a dark bridge;
docs/quality.md, "Faint lower rims").
"""

from __future__ import annotations

import cv2
import numpy as np

from harness.quality.result import Score, _score
from harness.quality.thresholds import DEFAULT_THRESHOLDS

#: bridge evidence (grey levels) above which the target wears glasses (runner: kGlassesBridgeMin)
GLASSES_BRIDGE_MIN = 10.0
#: a frame pixel counts as kept when no channel of the output differs from the target by more
KEPT_MAX_DIFF = 12
#: share of the frame kept above and below the eyes from which the output wears the target's
#: glasses whole (base mode's occluder mask keeps 0.68-0.92 of each on the evaluation set; a
#: half-erased frame keeps 0.02-0.05 below the eyes)
KEPT_WHOLE_MIN = 0.5
#: the lower rim's path (runner: occluders.cpp's rim_path; docs/quality.md "Faint lower
#: rims"): radii searched below each eye, in eye distances (grace_hopper's rims: ~0.3-0.6)
RIM_R_MIN, RIM_R_MAX = 0.33, 0.65
#: angle samples per pixel of arc at 0.5 IOD (2: the radius may move 2 px per px of arc)
RIM_STEPS_PER_PX = 2.0
#: cost of a 1 px radial move, times the bridge's black-hat (keeps the path off wrinkles: at 0
#: and radii to 0.7 IOD it ran out to the temple on the -15 deg and small variants)
RIM_STEP_COST = 0.3
#: a line pixel of the rim: black-hat >= this share of the bridge's
RIM_LINE_SHARE = 0.3
#: share of the path on such pixels for a rim to be there (grace_hopper's variants: 0.74-1.0;
#: under-eye skin of the faces without glasses, at grace_hopper's bridge: 0.11-0.62)
RIM_PRESENT_MIN = 0.7


def eye_axes(lm: np.ndarray):
    """(eye centre 36-41, eye centre 42-47, their distance, unit vector along the eye line,
    unit vector across it): the frame of reference of the glasses finders."""
    le, re_ = lm[36:42].mean(0), lm[42:48].mean(0)
    iod = max(1.0, float(np.linalg.norm(re_ - le)))
    ex = (re_ - le) / iod
    return le, re_, iod, ex, np.array([-ex[1], ex[0]])


def _sample(img: np.ndarray, pts: np.ndarray) -> np.ndarray | None:
    xy = np.rint(pts).astype(int)
    if (xy < 0).any() or (xy[:, 0] >= img.shape[1]).any() or (xy[:, 1] >= img.shape[0]).any():
        return None
    return img[xy[:, 1], xy[:, 0]]


def line_kernel(iod: float) -> tuple[int, np.ndarray]:
    """(side, ellipse) of the frame's line filter: 8 % of the eye distance, odd, >= 3 px
    (runner: occluders.cpp)."""
    k = max(3, round(0.08 * iod) | 1)
    return k, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))


def black_hat(rgb: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Dark thin lines (a frame's rims and bridge): black-hat of luma with `kernel`."""
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY)
    return cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)


def target_glasses(target_rgb: np.ndarray, landmarks) -> tuple[float, np.ndarray | None]:
    """(bridge evidence, frame mask or None when the target wears no glasses)."""
    lm = np.asarray(landmarks, np.float32).reshape(68, 2)
    le, re_, iod, ex, ey = eye_axes(lm)
    k, kernel = line_kernel(iod)
    bh = black_hat(target_rgb, kernel)
    inner = (lm[39] + lm[42]) / 2
    half = 0.3 * float(np.dot(lm[42] - lm[39], ex))
    us = np.arange(-half, half + 1e-6, 1.0)
    best, best_v = 0.0, 0.0
    for v in np.arange(-0.3 * iod, 0.15 * iod + 1e-6, 1.0):
        vals = _sample(bh, inner + np.outer(us, ex) + v * ey)
        if vals is not None and vals.mean() > best:
            best, best_v = float(vals.mean()), float(v)
    if best < GLASSES_BRIDGE_MIN:
        return best, None
    eyes = (le + re_) / 2
    top = min(0.0, float(np.min((lm[17:27] - eyes) @ ey)))
    band = np.zeros(bh.shape, np.uint8)

    def quad(o, u0, u1, v0, v1, value):
        c = [o + u * ex + v * ey for u, v in ((u0, v0), (u1, v0), (u1, v1), (u0, v1))]
        cv2.fillConvexPoly(band, np.rint(c).astype(np.int32), value)

    quad(eyes, -1.1 * iod, 1.1 * iod, top - 0.15 * iod, 0.6 * iod, 255)
    g = max(1, round(0.12 * iod))
    for a in (36, 42):
        e = np.zeros_like(band)
        cv2.fillConvexPoly(e, cv2.convexHull(np.rint(lm[a:a + 6]).astype(np.int32)), 255)
        band[cv2.dilate(e, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * g + 1,) * 2)) > 0] = 0
    corners = float(np.dot(lm[42] - lm[39], ex))
    quad(inner, -0.5 * corners, 0.5 * corners, float(np.dot(lm[29] - inner, ey)), iod, 0)
    lines = ((bh >= max(6.0, 0.55 * best)) & (band > 0)).astype(np.uint8)
    _, labels = cv2.connectedComponents(lines, connectivity=8)
    row = inner + best_v * ey + np.outer(us, ex)
    hits = [_sample(labels, row + dv * ey) for dv in (-1, 0, 1)]
    on_bridge = np.setdiff1d(np.concatenate([h for h in hits if h is not None]), [0])
    frame = np.isin(labels, on_bridge).astype(np.uint8)
    bh_band = np.where(band > 0, bh, 0)
    for eye in (le, re_):
        frame |= lower_rim(bh_band, eye, iod, ex, ey, best, k)
    frame = cv2.dilate(cv2.morphologyEx(frame, cv2.MORPH_CLOSE, kernel), np.ones((3, 3), np.uint8))
    _drop_lines_inside_lenses(frame, (le, re_), iod)
    return best, frame > 0


def _drop_lines_inside_lenses(frame: np.ndarray, eyes, iod: float) -> None:
    """Lines seen through a lens (wrinkles under the eye touching the rim) are not the frame
    (runner: occluders.cpp's drop_lines_inside_lenses): a lens is a hole of the frame (4-connected
    non-frame pixels not reaching the image border) centred within 0.4 IOD of an eye centre;
    the frame's pixels inside the convex hull of an eye's holes, shrunk by 1 px so the rim's
    inner edge stays, are dropped. Once the lower rims are followed, most lenses are holes."""
    n, labels, stats, centres = cv2.connectedComponentsWithStats(
        (frame == 0).astype(np.uint8), connectivity=4)
    h, w = frame.shape
    eye_of = np.full(n, -1)
    for i in range(1, n):
        x, y, bw, bh = stats[i, :4]
        if x == 0 or y == 0 or x + bw >= w or y + bh >= h:
            continue  # reaches the border: around the glasses, not a lens
        for e, eye in enumerate(eyes):
            if np.hypot(*(centres[i] - eye)) < 0.4 * iod:
                eye_of[i] = e
    for e in range(len(eyes)):
        ys, xs = np.nonzero(np.isin(labels, np.flatnonzero(eye_of == e)))
        if len(xs) < 3:
            continue
        inside = np.zeros_like(frame)
        cv2.fillConvexPoly(inside, cv2.convexHull(np.stack([xs, ys], 1).astype(np.int32)), 1)
        frame[cv2.erode(inside, np.ones((3, 3), np.uint8)) > 0] = 0


def rim_path(bh: np.ndarray, eye: np.ndarray, iod: float, ex: np.ndarray, ey: np.ndarray,
             bridge: float) -> tuple[np.ndarray, np.ndarray]:
    """The lens outline below one eye, followed around it: in polar coordinates about the eye
    centre (angles 0..180 deg below the eye line, RIM_STEPS_PER_PX samples per pixel of arc
    at 0.5 IOD; radii RIM_R_MIN..RIM_R_MAX IOD in 1 px steps), the path with the largest sum
    of black-hat whose radius moves at most 1 px per angle step, each step costing
    RIM_STEP_COST x the bridge's black-hat (dynamic programming). (points (n, 2), black-hat
    along them (n,))."""
    n_t = max(16, int(np.ceil(RIM_STEPS_PER_PX * np.pi * 0.5 * iod)))
    theta = np.arange(n_t) * (np.pi / (n_t - 1))
    radii = np.arange(RIM_R_MIN * iod, RIM_R_MAX * iod, 1.0)
    rays = np.outer(np.cos(theta), ex) + np.outer(np.sin(theta), ey)
    pts = eye + rays[:, None, :] * radii[None, :, None]
    xy = np.rint(pts).astype(int)
    inside = ((xy[..., 0] >= 0) & (xy[..., 1] >= 0) & (xy[..., 0] < bh.shape[1])
              & (xy[..., 1] < bh.shape[0]))
    polar = np.zeros(xy.shape[:2], np.float32)
    polar[inside] = bh[xy[..., 1][inside], xy[..., 0][inside]]
    step = RIM_STEP_COST * bridge
    total = polar[0].copy()
    came = np.zeros(polar.shape, np.int32)
    for t in range(1, n_t):
        # from radius index r, r-1, r+1: on equal sums the path stays, then moves inwards
        cand = np.stack([total, np.r_[-np.inf, total[:-1]] - step,
                         np.r_[total[1:], -np.inf] - step])
        pick = cand.argmax(0)
        came[t] = np.arange(len(radii)) + np.array([0, -1, 1])[pick]
        total = polar[t] + cand[pick, np.arange(len(radii))]
    r = np.zeros(n_t, np.int32)
    r[-1] = int(total.argmax())
    for t in range(n_t - 1, 0, -1):
        r[t - 1] = came[t, r[t]]
    idx = np.arange(n_t)
    return pts[idx, r], polar[idx, r]


def lower_rim(bh: np.ndarray, eye: np.ndarray, iod: float, ex: np.ndarray, ey: np.ndarray,
              bridge: float, k: int) -> np.ndarray:
    """The lower rim of one lens as frame pixels (uint8 0/1): `rim_path`'s line when black-hat
    >= RIM_LINE_SHARE x the bridge's along RIM_PRESENT_MIN of it, else nothing; then only the
    line pixels (same share) within k/4 px of that path, and the path itself (a thin band, not
    whole components: wrinkles touching the rim are cut at the band's edge)."""
    path, along = rim_path(bh, eye, iod, ex, ey, bridge)
    out = np.zeros(bh.shape, np.uint8)
    if (along >= RIM_LINE_SHARE * bridge).mean() < RIM_PRESENT_MIN:
        return out
    poly = [np.rint(path).astype(np.int32)]
    cv2.polylines(out, poly, False, 1, 1)
    near = np.zeros_like(out)
    cv2.polylines(near, poly, False, 1, max(1, k // 2))
    out[(near > 0) & (bh >= RIM_LINE_SHARE * bridge)] = 1
    return out


def kept_glasses_frame(output_rgb: np.ndarray, target_rgb: np.ndarray,
                       landmarks) -> np.ndarray | None:
    """The target's glasses frame (mask) when the output kept it whole, as base mode's
    occluder mask does: at least KEPT_WHOLE_MIN of the frame's pixels kept both above and
    below the eyes. None when the target wears no glasses, or the frame was (partly)
    replaced. Such a frame is the target's structure on purpose: the target structure
    score leaves it to this module's score, identity compares with the source wearing it."""
    return _kept_whole(*_frame_kept(output_rgb, target_rgb, landmarks))


def _kept_whole(r: dict, frame: np.ndarray | None) -> np.ndarray | None:
    if r["value"] is None or min(r["kept_upper"], r["kept_lower"]) < KEPT_WHOLE_MIN:
        return None
    return frame


def half_erased_glasses(output_rgb: np.ndarray, target_rgb: np.ndarray, landmarks) -> dict:
    """Kept share of the target's frame above the eyes (the bar along the brows, 0.1 IOD or
    more above the eye line) minus below them (the lower rims, 0.25-0.6 IOD below): about 0
    when the frame is kept whole or replaced whole, towards 1 when only its upper part is left.
    `value` None when the target wears no glasses (or a part is empty)."""
    return _frame_kept(output_rgb, target_rgb, landmarks)[0]


def _frame_kept(output_rgb: np.ndarray, target_rgb: np.ndarray,
                landmarks) -> tuple[dict, np.ndarray | None]:
    """`half_erased_glasses`'s result and the target's frame mask it was measured on (None
    without glasses): one pass of the frame finder for both."""
    evidence, frame = target_glasses(target_rgb, landmarks)
    out = {"value": None, "evidence": evidence, "kept_upper": None, "kept_lower": None}
    if frame is None:
        return out, None
    lm = np.asarray(landmarks, np.float32).reshape(68, 2)
    le, re_, iod, _, ey = eye_axes(lm)
    yy, xx = np.mgrid[0:frame.shape[0], 0:frame.shape[1]]
    v = ((np.stack([xx, yy], -1) - (le + re_) / 2) @ ey) / iod
    diff = np.abs(output_rgb[..., :3].astype(int) - target_rgb[..., :3].astype(int)).max(-1)
    kept = diff <= KEPT_MAX_DIFF
    upper, lower = frame & (v < -0.1), frame & (v > 0.35) & (v < 0.6)
    if not upper.any() or not lower.any():
        return out, frame
    out["kept_upper"] = float(kept[upper].mean())
    out["kept_lower"] = float(kept[lower].mean())
    out["value"] = out["kept_upper"] - out["kept_lower"]
    return out, frame


def half_erased_glasses_score(output: np.ndarray, target: np.ndarray, target_landmarks,
                              threshold: float = DEFAULT_THRESHOLDS.half_erased_glasses_max
                              ) -> Score:
    """`half_erased_glasses` as a gating score; not scored when the target wears none."""
    return _as_score(half_erased_glasses(output, target, target_landmarks), threshold)


def glasses_check(output: np.ndarray, target: np.ndarray, target_landmarks,
                  threshold: float = DEFAULT_THRESHOLDS.half_erased_glasses_max
                  ) -> tuple[Score, np.ndarray | None]:
    """(`half_erased_glasses_score`, `kept_glasses_frame`) of one output from one pass of
    the frame finder: `score_output.score_frame` needs both for every frame."""
    r, frame = _frame_kept(output, target, target_landmarks)
    kept = _kept_whole(r, frame)
    return _as_score(r, threshold), kept


def _as_score(r: dict, threshold: float) -> Score:
    if r["value"] is None:
        r["reason"] = f"the target wears no glasses (bridge evidence {r['evidence']:.1f})"
    return _score("glasses", "quality_half_erased_glasses", "", "lower", r.pop("value"),
                  threshold, r)
