"""Scores that look inside the swapped face (docs/quality.md, "Face scores").

    face_interior_colour  quality_face_colour_de     whole-interior skin vs the target's (lower)
    doubled_brows         quality_doubled_brows      the target's brows still visible beside the
                                                     source's (lower)
    target_structure      quality_target_structure   structure around the eyes explained by the
                                                     target rather than the source (glasses) (lower)
    background_leak       quality_leak_ratio         non-skin pixels new on one side of the face
                                                     (source background or hair) (lower)
    transferable_pose     quality_pose_points_nme    how far the source's eye centres and nose
                                                     moved from their expected place, over the
                                                     IOD (registration, placement.py) (lower)

Pure functions of RGB uint8 images and (68, 2) landmarks; nothing reads or writes files.
`expected` landmarks are where the source's features land in the target frame
(`expected_landmarks`: the runner's similarity from the source's 68 points to the
target's), the places the output should show the source's brows, eyes, nose and mouth.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab

from harness.quality import geometry as geo
from harness.quality import placement, regions
from harness.quality.result import Score, _score
from harness.quality.thresholds import DEFAULT_THRESHOLDS

#: structure: band-pass of the luma (difference of Gaussians, px): brow hairs, lids, frames
STRUCTURE_FINE_PX = 1.0
STRUCTURE_COARSE_PX = 4.0
#: structure: brows grown by this * IOD make a brow region
STRUCTURE_GROW = 0.05
#: structure: the other face's brows are cut out grown by this * IOD
STRUCTURE_EXPECTED_GROW = 0.08
#: target structure: the target's eyes grown by this * IOD (a glasses frame lies within)
TARGET_STRUCTURE_GROW = 0.30
#: target structure: the hull's edge band left out, as a share of sqrt(hull area): the
#: runner's blend mask erodes the hull by this much (runner/src/stages.cpp, blend_mask), so
#: there the output is the target by design, whatever the swap
MASK_ERODE_SHARE = 0.03
#: structure: a region smaller than this * IOD^2 cannot show a brow of its own
STRUCTURE_MIN_AREA = 0.01
#: leak: a pixel is not skin when its CIEDE2000 to the face's robust skin colour exceeds this
LEAK_DE = 15.0
#: leak: the band along the inside of the hull where a leak shows (fractions of the IOD)
LEAK_BAND = (0.03, 0.30)
#: leak: the band is cut into this many angular sectors around the face centre
LEAK_SECTORS = 8
#: pose points: eye centres, nose root, nose tip (a swap must keep them where they were)
POSE_POINTS = ("right_eye", "left_eye", 27, 30)


def _lab(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(np.ascontiguousarray(rgb[..., :3]))


def _box(mask: np.ndarray, margin: float) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    m = math.ceil(margin)
    return (slice(max(0, ys.min() - m), min(h, ys.max() + m + 1)),
            slice(max(0, xs.min() - m), min(w, xs.max() + m + 1)))


def expected_landmarks(source_landmarks, target_landmarks) -> np.ndarray:
    """The source's 68 points carried into the target frame by the least-squares
    similarity over all 68 (the runner's align stage, `--align similarity`)."""
    s = geo.as_landmarks(source_landmarks)
    t = geo.as_landmarks(target_landmarks)
    m = geo.similarity_transform(s, t)
    return s @ m[:, :2].T + m[:, 2]


# --- whole-face colour ------------------------------------------------------------------

def face_interior_colour(output: np.ndarray, target: np.ndarray, target_landmarks,
                         threshold: float = DEFAULT_THRESHOLDS.face_colour_de_max) -> Score:
    """CIEDE2000 between the robust median skin colour of the output's face interior and
    the target's (both over the landmark hull shrunk by 0.1 IOD, brows, eyes, nose and mouth
    left out, pixels within dE 15 of the median; a trimmed mean was tried and dropped: good
    swaps' worst rose from 4.8 to 5.4 while real pale faces fell to 6.1). The target's face skin is the colour
    that matches its forehead, neck and ears; how far the output is from that skin outside
    is in the detail (`de_vs_outside_skin`, next to the target's own `target_natural_de`)."""
    tl = geo.as_landmarks(target_landmarks)
    iod = geo.inter_ocular(tl)
    hull = geo.mask_from_landmarks(tl, target.shape) > 0
    ys, xs = _box(hull, 0.4 * iod + 2)
    shift = np.array([xs.start, ys.start], float)
    crop_l = tl - shift
    shape = hull[ys, xs].shape
    inner = regions.interior_skin(crop_l, shape, iod)
    band = regions.outside_skin_band(crop_l, shape, iod)
    out_lab, tgt_lab = _lab(output[ys, xs]), _lab(target[ys, xs])
    tgt_in, n_t = regions.robust_median(tgt_lab, inner)
    out_in, n_o = regions.robust_median(out_lab, inner)
    if tgt_in is None or out_in is None:
        return _score("face_colour", "quality_face_colour_de", "", "lower", None, threshold,
                      {"reason": f"too little skin inside the face ({min(n_t, n_o)} px)"})
    detail = {"output_skin_lab": [round(float(v), 2) for v in out_in],
              "target_skin_lab": [round(float(v), 2) for v in tgt_in], "skin_pixels": n_o}
    tgt_out, n_b = regions.robust_median(tgt_lab, band, reference=tgt_in, max_de=20.0)
    if tgt_out is not None:
        detail["de_vs_outside_skin"] = float(deltaE_ciede2000(out_in, tgt_out))
        detail["target_natural_de"] = float(deltaE_ciede2000(tgt_in, tgt_out))
        detail["outside_skin_pixels"] = n_b
    value = float(deltaE_ciede2000(out_in, tgt_in))
    return _score("face_colour", "quality_face_colour_de", "", "lower", value, threshold, detail)


def warp_source(source: np.ndarray, source_landmarks, target_landmarks, shape) -> np.ndarray:
    """The source image carried into the target frame by the similarity of
    `expected_landmarks` (what the runner's warp stage pastes, before colour correction)."""
    m = geo.similarity_transform(geo.as_landmarks(source_landmarks),
                             geo.as_landmarks(target_landmarks))
    return cv2.warpAffine(np.ascontiguousarray(source[..., :3]), m, (shape[1], shape[0]),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


# --- doubled brows: the target's left beside the source's ----------------------------------------------

def _high_pass(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return cv2.GaussianBlur(grey, (0, 0), STRUCTURE_FINE_PX) - cv2.GaussianBlur(
        grey, (0, 0), STRUCTURE_COARSE_PX)


def _ncc(a: np.ndarray, b: np.ndarray) -> float:
    return float((a * b).sum() / math.sqrt(float((a * a).sum() * (b * b).sum()) + 1e-6))


def doubled_brows(output: np.ndarray, target: np.ndarray, warped_source: np.ndarray,
                  target_landmarks, expected,
                  threshold: float = DEFAULT_THRESHOLDS.doubled_brows_max) -> Score:
    """Doubled brows: the target's brows still visible above (or below) the source's.

    Two regions inside the landmark hull: where only the target's brows are (the target's
    brows grown by STRUCTURE_GROW * IOD, minus the source's as placed by `expected`,
    grown by STRUCTURE_EXPECTED_GROW * IOD) and where only the source's are (the other way
    round). In each, the normalised cross-correlation of the band-passed luma (1 .. 4 px)
    of the output with the target, resp. with `warped_source` (`warp_source`). The value
    is the smaller of the two: high only when both pairs of brows show. When the source's
    brows land on the target's (either region smaller than STRUCTURE_MIN_AREA * IOD^2)
    nothing can be doubled: 0.
"""
    tl = geo.as_landmarks(target_landmarks)
    ex = geo.as_landmarks(expected)
    iod = geo.inter_ocular(tl)
    hull = geo.mask_from_landmarks(tl, output.shape) > 0
    ys, xs = _box(hull, 4 * STRUCTURE_COARSE_PX)
    shift = np.array([xs.start, ys.start], float)
    h = hull[ys, xs]
    t_l, e_l = tl - shift, ex - shift
    brows = ("right_brow", "left_brow")

    def only(a, b, names, grow):
        return h & regions.feature_mask(a, h.shape, iod, grow, names) & ~regions.feature_mask(
            b, h.shape, iod, STRUCTURE_EXPECTED_GROW, names)

    hp_o, hp_t = _high_pass(output[ys, xs]), _high_pass(target[ys, xs])
    hp_s = _high_pass(warped_source[ys, xs])
    r_t = only(t_l, e_l, brows, STRUCTURE_GROW)
    r_s = only(e_l, t_l, brows, STRUCTURE_GROW)
    detail = {"target_only_px": int(r_t.sum()), "source_only_px": int(r_s.sum())}
    if min(r_t.sum(), r_s.sum()) < STRUCTURE_MIN_AREA * iod * iod:
        detail["reason_zero"] = "the source's brows land on the target's: nothing to double"
        return _score("brows", "quality_doubled_brows", "", "lower", 0.0, threshold,
                      detail)
    kept = _ncc(hp_o[r_t], hp_t[r_t])
    shown = _ncc(hp_o[r_s], hp_s[r_s])
    detail.update(target_brows_kept=kept, source_brows_shown=shown)
    return _score("brows", "quality_doubled_brows", "", "lower", min(kept, shown),
                  threshold, detail)


def target_structure(output: np.ndarray, target: np.ndarray, warped_source: np.ndarray,
                     target_landmarks, expected,
                     threshold: float = DEFAULT_THRESHOLDS.target_structure_max,
                     kept_frame: np.ndarray | None = None) -> Score:
    """Does the target explain the structure around the eyes better than the source does?
    (the outer arcs of the target's glasses left, the target's lids or brows kept)

    Region: the target's eyes grown by TARGET_STRUCTURE_GROW * IOD (a glasses frame lies
    within), inside the landmark hull less the band the runner's blend mask erodes away
    (MASK_ERODE_SHARE: the target's lids and brows there are kept by design), without the source's eyes and brows as placed by
    `expected` (grown by STRUCTURE_EXPECTED_GROW * IOD). value = NCC(output, target) -
    NCC(output, warped source) of the band-passed luma there: < 0 on a swap (its
    structure is the source's: the Poisson blend keeps the source's gradients), 1 with no
    swap.

    Not scored when the output wears the target's glasses whole (`kept_frame`, from
    `glasses.kept_glasses_frame`): the frame and what the lenses' rims touch are the
    target's structure on purpose there (base mode's occluder mask), and leaving the
    frame out of the region did not separate (docs/quality.md); the half-erased glasses
    score judges the frame."""
    if kept_frame is not None:
        return _score("target_structure", "quality_target_structure", "", "lower", None,
                      threshold, {"reason": "the output keeps the target's glasses whole "
                                            "(judged by the half-erased glasses score)",
                                  "kept_frame_px": int(kept_frame.sum())})
    tl = geo.as_landmarks(target_landmarks)
    iod = geo.inter_ocular(tl)
    hull = geo.mask_from_landmarks(tl, output.shape) > 0
    ys, xs = _box(hull, 4 * STRUCTURE_COARSE_PX)
    shift = np.array([xs.start, ys.start], float)
    h = hull[ys, xs]
    e = max(1, round(MASK_ERODE_SHARE * math.sqrt(float(h.sum()))))
    inside = cv2.erode(h.astype(np.uint8), cv2.getStructuringElement(
        cv2.MORPH_ELLIPSE, (2 * e + 1, 2 * e + 1))) > 0
    e_l = geo.as_landmarks(expected) - shift
    region = inside & regions.feature_mask(tl - shift, h.shape, iod, TARGET_STRUCTURE_GROW,
                                      ("right_eye", "left_eye"))
    region &= ~regions.feature_mask(e_l, h.shape, iod, STRUCTURE_EXPECTED_GROW,
                                    ("right_eye", "left_eye", "right_brow", "left_brow"))
    n = int(region.sum())
    if n < STRUCTURE_MIN_AREA * iod * iod:
        return _score("target_structure", "quality_target_structure", "", "lower", None,
                      threshold, {"region_px": n, "reason": "no region around the eyes"})
    hp_o = _high_pass(output[ys, xs])[region]
    by_target = _ncc(hp_o, _high_pass(target[ys, xs])[region])
    by_source = _ncc(hp_o, _high_pass(warped_source[ys, xs])[region])
    return _score("target_structure", "quality_target_structure", "", "lower",
                  by_target - by_source, threshold,
                  {"region_px": n, "ncc_target": by_target, "ncc_source": by_source})


# --- background leak ----------------------------------------------------------------------

def background_leak(output: np.ndarray, target: np.ndarray, target_landmarks, expected=None,
                    threshold: float = DEFAULT_THRESHOLDS.leak_ratio_max) -> Score:
    """Share of a boundary sector of the face that is not skin in the output but was skin
    in the target: the source's background, ear or hair pasted onto a cheek.

    Band LEAK_BAND inside the hull (features of the target and, when given, of the
    expected source placement left out), cut into LEAK_SECTORS angular sectors; a pixel is
    new non-skin when its dE to the output's robust skin colour is > LEAK_DE while the
    target's pixel is within LEAK_DE of the target's skin. The value is the worst sector."""
    tl = geo.as_landmarks(target_landmarks)
    iod = geo.inter_ocular(tl)
    hull = geo.mask_from_landmarks(tl, target.shape) > 0
    ys, xs = _box(hull, 4)
    shift = np.array([xs.start, ys.start], float)
    h = hull[ys, xs]
    crop_l = tl - shift
    sd = geo.signed_distance(h)
    band = (sd > LEAK_BAND[0] * iod) & (sd <= LEAK_BAND[1] * iod)
    band &= ~regions.feature_mask(crop_l, h.shape, iod, 0.10)
    if expected is not None:
        band &= ~regions.feature_mask(geo.as_landmarks(expected) - shift, h.shape, iod, 0.10)
    out_lab, tgt_lab = _lab(output[ys, xs]), _lab(target[ys, xs])
    inner = regions.interior_skin(crop_l, h.shape, iod)
    skin_o, _ = regions.robust_median(out_lab, inner)
    skin_t, _ = regions.robust_median(tgt_lab, inner)
    if skin_o is None or skin_t is None:
        return _score("leak", "quality_leak_ratio", "", "lower", None, threshold,
                      {"reason": "too little skin inside the face"})
    new = (deltaE_ciede2000(out_lab, skin_o[None, None]) > LEAK_DE) & (
        deltaE_ciede2000(tgt_lab, skin_t[None, None]) <= LEAK_DE)
    sectors = geo.angular_sectors(h.shape, geo.face_centre(crop_l), LEAK_SECTORS)
    shares = []
    for k in range(LEAK_SECTORS):
        sel = band & (sectors == k)
        n = int(sel.sum())
        shares.append(float(new[sel].sum()) / n if n >= 0.02 * iod * iod else 0.0)
    k = int(np.argmax(shares))
    return _score("leak", "quality_leak_ratio", "", "lower", shares[k], threshold,
                  {"worst_sector": k, "sector_shares": [round(v, 3) for v in shares]})


# --- pose on the points that transfer -------------------------------------------------------

def pose_points(landmarks) -> np.ndarray:
    """(4, 2): right eye centre, left eye centre, nose root (27), nose tip (30)."""
    pts = geo.as_landmarks(landmarks)
    r, left = geo.eye_centres(pts)
    return np.array([r, left, pts[27], pts[30]])


def transferable_pose(output: np.ndarray, warped_source: np.ndarray, expected_landmarks,
                      threshold: float = DEFAULT_THRESHOLDS.pose_points_nme_max,
                      output_landmarks=None) -> Score:
    """Mean distance the eye centres, nose root and nose tip of the source moved from
    where the runner's similarity puts them (`expected_landmarks`), over the IOD: the points
    a swap must place (mouth corners and jaw belong to the source's face shape and are left
    out). Measured by registering the output's inner face onto the warped source
    (`placement.face_motion`), not by reading the output's points off the face mesh, which
    places them between the source's features and the target's outline. Orientation
    (eye-line angle) and scale (eye-distance ratio) are in the detail; with
    `output_landmarks` the mesh's reading too (`mesh_nme`, for comparison only)."""
    ex = geo.as_landmarks(expected_landmarks)
    iod = geo.inter_ocular(ex)
    points = pose_points(ex)
    detail = placement.placement_error(output, warped_source, ex, points, iod)
    if output_landmarks is not None:
        mesh = np.linalg.norm(pose_points(output_landmarks) - points, axis=1)
        detail["mesh_nme"] = round(float(mesh.mean() / iod), 4)
    return _score("pose_points", "quality_pose_points_nme", "", "lower", detail.pop("nme"),
                  threshold, detail)
