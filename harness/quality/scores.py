"""Blend quality scores for one swapped frame.

    scores = score_blend(source, target, output, target_landmarks,
                         source_landmarks=..., output_landmarks=... or landmarks_fn=...,
                         mask=None, thresholds=QualityThresholds())
    scores.passed, scores.failures(), scores.summary(), scores.as_dict()

Images are RGB uint8 arrays (H, W, 3); output and target have the same size. Landmarks
are (68, 2) arrays (see harness.quality.geometry). `mask` is the blend mask in target
coordinates when the runner provides one; otherwise (None) the convex hull of the target's
68 landmarks is used. Nothing here reads or writes files.

The five scores (docs/quality.md explains each and its threshold):
  colour      quality_de_ciede2000        CIEDE2000, face skin just inside the mask
                                          boundary vs the target's skin just outside (lower)
  seam        quality_seam_ratio          boundary gradient energy vs the rings beside it,
                                          relative to the same ratio on the target (lower)
  pose        quality_pose_nme            NME of output vs target landmarks over the
                                          inter-ocular distance, pose part (lower)
  background  quality_background_ssim     SSIM outside the dilated mask, worst tile (higher)
              quality_background_psnr_db  PSNR outside the dilated mask, worst tile (higher)
  identity    quality_identity_margin     d(out, target) - d(out, source) (higher)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from harness.quality import geometry as geo
from harness.quality.face_scores import face_interior_colour
from harness.quality.identity import IdentityModel, get_identity_model
from harness.quality.result import Score, _score
from harness.quality.thresholds import DEFAULT_THRESHOLDS, QualityThresholds

LandmarkFn = Callable[[np.ndarray], np.ndarray | None]
#: score_blend's default for output_landmarks (None there means "no face in the output")
_MISSING: Any = object()

# --- ring geometry, as fractions of the inter-ocular distance (IOD) -------------------
#: colour: face ring inside the boundary and target ring outside it
COLOUR_INNER = (0.04, 0.16)
COLOUR_OUTER = (-0.14, -0.03)
#: colour: number of angular sectors around the face centre; a sector counts when both
#: rings hold at least COLOUR_MIN_PIXELS skin pixels
COLOUR_SECTORS = 16
COLOUR_MIN_PIXELS = 12
#: colour: a ring pixel is skin when its CIEDE2000 to the median skin of its side is below
SKIN_DE = 18.0
#: seam: band of half-width SEAM_BAND around the boundary; reference rings from
#: SEAM_GAP to SEAM_GAP + SEAM_REF on either side
SEAM_BAND = 0.025
SEAM_GAP = 0.06
SEAM_REF = 0.12
#: seam: the boundary is searched within +-SEAM_SEARCH_PX of the located one (the
#: score is the largest ratio): a seam need not sit exactly on the estimated edge
SEAM_SEARCH_PX = 3
#: seam: locating the pasted region (see paste_region)
PASTE_TOL = 8.0
PASTE_BLUR = 1.0
PASTE_SEARCH = 0.3
PASTE_MIN_AREA = 0.3
#: pose: points for the similarity fit (nose bridge + tip, eye corners, mouth corners):
#: the ones a swap moves least and the landmark model places best
POSE_FIT_POINTS = [27, 28, 29, 30, 31, 33, 35, 36, 39, 42, 45, 48, 54]
#: background: the mask is grown by this before comparing (covers feather, Poisson
#: spill and JPEG ringing)
BACKGROUND_DILATE = 0.25
#: background: tile size in px (full resolution) for the worst-tile SSIM / PSNR
BACKGROUND_TILE = 32
#: background: both frames are area-downsampled by this first, which averages out JPEG
#: noise (the runner saves JPEG) but keeps any real change of the background
BACKGROUND_DOWNSAMPLE = 2


@dataclasses.dataclass
class BlendScores:
    colour: Score
    seam: Score
    pose: Score
    background_ssim: Score
    background_psnr: Score
    identity: Score
    thresholds: QualityThresholds
    mask_source: str     # "runner" (mask given) or "landmarks" (hull of target's 68)

    def all(self) -> list[Score]:
        return [self.colour, self.seam, self.pose, self.background_ssim,
                self.background_psnr, self.identity]

    @property
    def passed(self) -> bool:
        """True when no scored check failed (unscored ones do not fail the frame)."""
        return not self.failures()

    def failures(self) -> list[Score]:
        return [s for s in self.all() if s.passed is False]

    def failed_names(self) -> set[str]:
        return {s.name for s in self.failures()}

    def values(self) -> dict[str, float | None]:
        return {s.metric: s.value for s in self.all()}

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "mask_source": self.mask_source,
            "scores": {s.name: dataclasses.asdict(s) for s in self.all()},
            "thresholds": self.thresholds.as_dict(),
        }

    def summary(self) -> str:
        return "; ".join(s.message() for s in self.all())


def _crop_box(mask: np.ndarray, margin: float) -> tuple[slice, slice]:
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    m = math.ceil(margin)
    return (slice(max(0, ys.min() - m), min(h, ys.max() + m + 1)),
            slice(max(0, xs.min() - m), min(w, xs.max() + m + 1)))


def _lab(rgb: np.ndarray) -> np.ndarray:
    return rgb2lab(np.ascontiguousarray(rgb[..., :3]))


# --- 1. colour consistency -------------------------------------------------------------

def colour_consistency(output: np.ndarray, target: np.ndarray, mask: np.ndarray,
                       iod: float, centre, threshold: float = DEFAULT_THRESHOLDS.colour_de_max,
                       landmarks=None) -> Score:
    """CIEDE2000 of the output's skin against the target's: just inside the mask boundary
    (per angular sector the median Lab of the ring's skin pixels, output vs target, median
    over the sectors where the ring shows skin on both sides of the mask) and, given the
    target's `landmarks`, over the whole face interior; the value is the larger."""
    m = geo.as_mask(mask, output.shape)
    ys, xs = _crop_box(m, abs(COLOUR_OUTER[0]) * iod + 2)
    m = m[ys, xs]
    out_lab = _lab(output[ys, xs])
    tgt_lab = _lab(target[ys, xs])
    sd = geo.signed_distance(m)
    inner = geo.ring(sd, COLOUR_INNER[0] * iod, COLOUR_INNER[1] * iod)
    outer = geo.ring(sd, COLOUR_OUTER[0] * iod, COLOUR_OUTER[1] * iod)
    # skin references: the median colour of each face's interior
    core_out = sd > 0.2 * iod
    core_tgt = core_out
    ref_out = np.median(out_lab[core_out], axis=0)
    ref_tgt = np.median(tgt_lab[core_tgt], axis=0)
    skin_in = inner & (deltaE_ciede2000(out_lab, ref_out[None, None]) < SKIN_DE)
    skin_out = outer & (deltaE_ciede2000(tgt_lab, ref_tgt[None, None]) < SKIN_DE)
    c = np.asarray(centre, float) - [xs.start, ys.start]
    sectors = geo.angular_sectors(m.shape, c, COLOUR_SECTORS)
    des, raw, natural, used = [], [], [], []
    for k in range(COLOUR_SECTORS):
        a = skin_in & (sectors == k)
        b = skin_out & (sectors == k)
        if a.sum() < COLOUR_MIN_PIXELS or b.sum() < COLOUR_MIN_PIXELS:
            continue
        out_in = np.median(out_lab[a], axis=0)
        tgt_out = np.median(tgt_lab[b], axis=0)
        tgt_in = np.median(tgt_lab[a], axis=0)
        # the colour the face's skin should have there is the target's own skin there
        # (its skin just outside carried across by its shading step is the same thing)
        des.append(float(deltaE_ciede2000(out_in, tgt_in)))
        raw.append(float(deltaE_ciede2000(out_in, tgt_out)))
        natural.append(float(deltaE_ciede2000(tgt_in, tgt_out)))
        used.append(k)
    detail = {"sectors_used": len(used), "sector_de": [round(d, 3) for d in des],
              "raw_de": float(np.median(raw)) if raw else None,
              "natural_de": float(np.median(natural)) if natural else None}
    if not des:
        detail["reason"] = "no boundary sector shows skin on both sides of the mask"
        return _score("colour", "quality_de_ciede2000", "", "lower", None, threshold, detail)
    detail["interior_de"] = float(deltaE_ciede2000(ref_out, ref_tgt))
    # The ring alone is blind to a pale or grey face: a Poisson blend forces the output to
    # agree with the target exactly there. The whole interior's skin colour
    # (face_scores.face_interior_colour, robust sampling) counts as much.
    detail["boundary_de"] = float(np.median(des))
    value = detail["boundary_de"]
    if landmarks is not None:
        whole = face_interior_colour(output, target, landmarks)
        detail["whole_interior_de"] = whole.value
        if whole.value is not None:
            value = max(value, whole.value)
    return _score("colour", "quality_de_ciede2000", "", "lower", value, threshold, detail)


# --- 2. seam visibility -----------------------------------------------------------------

def _grad_mag(rgb: np.ndarray) -> np.ndarray:
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)
    grey = cv2.GaussianBlur(grey, (0, 0), 0.8)
    gx = cv2.Sobel(grey, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(grey, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def _seam_raw(g: np.ndarray, sd: np.ndarray, iod: float) -> tuple[float, float, float]:
    """(band energy, reference energy, ratio) of gradient magnitudes `g`."""
    half = max(1.5, SEAM_BAND * iod)
    lo = max(SEAM_GAP * iod, half + SEAM_SEARCH_PX + 1.0)
    hi = lo + max(SEAM_REF * iod, 5.0)
    band = np.abs(sd) < half
    inner = geo.ring(sd, lo, hi)
    outer = geo.ring(sd, -hi, -lo)
    if not band.any() or not inner.any() or not outer.any():
        return float("nan"), float("nan"), float("nan")
    e_band = float(np.mean(g[band] ** 2))
    e_ref = 0.5 * (float(np.mean(g[inner] ** 2)) + float(np.mean(g[outer] ** 2)))
    return e_band, e_ref, e_band / max(e_ref, 1e-6)


def paste_region(output: np.ndarray, target: np.ndarray, hull: np.ndarray, iod: float
                 ) -> np.ndarray | None:
    """Where the blend changed the target near the face: pixels differing by more than
    PASTE_TOL (any channel, after a light blur), within the landmark hull grown by
    PASTE_SEARCH * IOD, closed, largest component, convex hull. None when that covers less
    than PASTE_MIN_AREA of the landmark hull (nothing was pasted there).

    Its boundary is where the pasted face meets the untouched target: exactly the
    runner's mask edge for a hard paste, a little inside it for a feathered or Poisson
    blend (whose difference fades out before the edge)."""
    h = geo.as_mask(hull, output.shape)
    o = cv2.GaussianBlur(output[..., :3].astype(np.float32), (0, 0), PASTE_BLUR)
    t = cv2.GaussianBlur(target[..., :3].astype(np.float32), (0, 0), PASTE_BLUR)
    diff = np.abs(o - t).max(axis=2)
    changed = ((diff > PASTE_TOL) & geo.dilate(h, PASTE_SEARCH * iod)).astype(np.uint8)
    k1 = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    changed = cv2.morphologyEx(changed, cv2.MORPH_OPEN, k1)
    r = max(1, round(0.04 * iod))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    changed = cv2.morphologyEx(changed, cv2.MORPH_CLOSE, k)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(changed, connectivity=8)
    if n <= 1:
        return None
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    ys, xs = np.nonzero(labels == best)
    pts = np.c_[xs, ys].astype(np.int32)
    region = np.zeros(h.shape, np.uint8)
    cv2.fillConvexPoly(region, cv2.convexHull(pts), 1)
    if region.sum() < PASTE_MIN_AREA * h.sum():
        return None
    return region.astype(bool)


def seam_visibility(output: np.ndarray, target: np.ndarray, mask: np.ndarray, iod: float,
                    threshold: float = DEFAULT_THRESHOLDS.seam_ratio_max,
                    locate: bool = True) -> Score:
    """Gradient energy (mean squared Sobel magnitude of luminance) in a thin band on the
    blend boundary over the mean energy of the rings just inside and outside it; divided
    by the same ratio on the target, so edges the target already has there (a jaw line)
    do not count. 1.0 = the blend added no edge along its boundary.

    The boundary is `mask`'s; with `locate` (used when the mask is only the landmark hull,
    not the runner's own) it is the edge of `paste_region`, the area the blend actually
    changed, which is where a hard seam sits even when the runner's mask was eroded or
    cut differently from the hull."""
    m = geo.as_mask(mask, output.shape)
    boundary = "mask"
    if locate:
        region = paste_region(output, target, m, iod)
        if region is not None:
            m, boundary = region, "paste_region"
    ys, xs = _crop_box(m, (SEAM_GAP + SEAM_REF) * iod + 2 * SEAM_SEARCH_PX + 12)
    sd0 = geo.signed_distance(m[ys, xs])
    g_out = _grad_mag(output[ys, xs])
    g_tgt = _grad_mag(target[ys, xs])
    profile = []
    for delta in range(-SEAM_SEARCH_PX, SEAM_SEARCH_PX + 1):
        sd = sd0 - delta            # the boundary moved `delta` px inwards
        _, _, r_out = _seam_raw(g_out, sd, iod)
        _, _, r_tgt = _seam_raw(g_tgt, sd, iod)
        profile.append(r_out / max(r_tgt, 1e-6))
    if not np.all(np.isfinite(profile)):
        return _score("seam", "quality_seam_ratio", "", "lower", None, threshold,
                      {"reason": "mask too small for the seam rings", "boundary": boundary})
    k = int(np.argmax(profile))
    return _score("seam", "quality_seam_ratio", "", "lower", float(profile[k]), threshold,
                  {"boundary": boundary, "offset_px": k - SEAM_SEARCH_PX,
                   "profile": [round(float(v), 3) for v in profile]})


# --- 3. pose fidelity -------------------------------------------------------------------

def pose_fidelity(output_landmarks, target_landmarks,
                  threshold: float = DEFAULT_THRESHOLDS.pose_nme_max) -> Score:
    """NME of the output's pose against the target's, over the target's inter-ocular
    (outer eye corner) distance.

    The 68 output landmarks differ from the target's in two ways: the pose (where the
    face sits: offset, scale, rotation) and the shape (the source's eyes, nose and mouth
    are not the target's). A swap must keep the pose and change the shape, so the score is
    the pose part only: the similarity transform that best maps the target's stable
    landmarks (POSE_FIT_POINTS: nose, eye corners, mouth corners) onto the output's,
    applied to the target's 68 points, and the mean distance it moves them, over the IOD.
    For the output's landmarks use the face mesh on the target's detector crop
    (harness.quality.landmarks, roi_image=target) so detector jitter does not count.
    The plain NME (pose + shape) is in detail["nme_raw"]."""
    tgt = geo.as_landmarks(target_landmarks)
    if output_landmarks is None:
        return _score("pose", "quality_pose_nme", "", "lower", float("inf"), threshold,
                      {"reason": "no face found in the output"})
    out = geo.as_landmarks(output_landmarks)
    iod = geo.inter_ocular(tgt)
    m = geo.similarity_transform(tgt[POSE_FIT_POINTS], out[POSE_FIT_POINTS])
    moved = tgt @ m[:, :2].T + m[:, 2]
    nme = float(np.linalg.norm(moved - tgt, axis=1).mean() / iod)
    err = np.linalg.norm(out - tgt, axis=1)
    scale = float(math.hypot(m[0, 0], m[1, 0]))
    detail = {"nme_raw": float(err.mean() / iod),
              "nme_raw_inner": float(err[17:].mean() / iod),
              "offset_px": [float(v) for v in (moved - tgt).mean(0)],
              "scale_ratio": scale,
              "rotation_deg": float(math.degrees(math.atan2(m[1, 0], m[0, 0]))),
              "iod_px": iod}
    return _score("pose", "quality_pose_nme", "", "lower", nme, threshold, detail)


# --- 4. background preservation ---------------------------------------------------------

def background_preservation(output: np.ndarray, target: np.ndarray, mask: np.ndarray,
                            iod: float, ssim_min: float = DEFAULT_THRESHOLDS.background_ssim_min,
                            psnr_min_db: float = DEFAULT_THRESHOLDS.background_psnr_min_db
                            ) -> tuple[Score, Score]:
    """SSIM (skimage `structural_similarity`, Gaussian-weighted as in Wang et al., its
    per-pixel map) and PSNR of output vs target over the pixels outside the mask grown by
    BACKGROUND_DILATE * IOD, after a 2x area downsample of both (BACKGROUND_DOWNSAMPLE).

    Both are taken per tile (BACKGROUND_TILE px squares with at least half their pixels in
    the background) and the score is the worst tile: a touched corner must not vanish in
    the average over a whole frame, while JPEG noise, spread evenly, costs every tile a
    little. Frame-wide values are in the detail."""
    m = geo.as_mask(mask, output.shape)
    bg = ~geo.dilate(m, BACKGROUND_DILATE * iod)
    if bg.sum() < 64:
        reason = {"reason": "no background left outside the dilated mask"}
        return (_score("background_ssim", "quality_background_ssim", "", "higher", None,
                       ssim_min, reason),
                _score("background_psnr", "quality_background_psnr_db", "dB", "higher", None,
                       psnr_min_db, reason))
    o, tg = output[..., :3], target[..., :3]
    f = BACKGROUND_DOWNSAMPLE
    if f > 1:
        size = (max(8, o.shape[1] // f), max(8, o.shape[0] // f))
        o = cv2.resize(o, size, interpolation=cv2.INTER_AREA)
        tg = cv2.resize(tg, size, interpolation=cv2.INTER_AREA)
        bg = cv2.resize(bg.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) > 0
    _, smap = structural_similarity(tg, o, channel_axis=2, data_range=255, full=True,
                                    gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False)
    smap = smap.mean(axis=2)
    sq = ((o.astype(np.float64) - tg.astype(np.float64)) ** 2).mean(axis=2)
    h, w = bg.shape
    t = max(4, BACKGROUND_TILE // f)
    tiles = []
    for y in range(0, h, t):
        for x in range(0, w, t):
            sel = bg[y:y + t, x:x + t]
            if sel.sum() < 0.5 * t * t:
                continue
            tiles.append((float(smap[y:y + t, x:x + t][sel].mean()),
                          _psnr(float(sq[y:y + t, x:x + t][sel].mean())), (x, y)))
    if not tiles:  # a small frame: one tile, the whole background
        tiles.append((float(smap[bg].mean()), _psnr(float(sq[bg].mean())), (0, 0)))
    worst_ssim = min(tiles, key=lambda v: v[0])
    worst_psnr = min(tiles, key=lambda v: v[1])
    detail = {"background_pixels": int(bg.sum()), "tiles": len(tiles),
              "frame_ssim": float(smap[bg].mean()), "frame_psnr_db": _psnr(float(sq[bg].mean())),
              "worst_ssim_tile_xy": list(worst_ssim[2]), "worst_psnr_tile_xy": list(worst_psnr[2])}
    return (_score("background_ssim", "quality_background_ssim", "", "higher", worst_ssim[0],
                   ssim_min, detail),
            _score("background_psnr", "quality_background_psnr_db", "dB", "higher",
                   worst_psnr[1], psnr_min_db, detail))


def _psnr(mse: float) -> float:
    return 100.0 if mse <= 1e-10 else min(100.0, 10.0 * math.log10(255.0 ** 2 / mse))


# --- 5. identity transfer ---------------------------------------------------------------

def identity_transfer(source, target, output, source_landmarks, target_landmarks,
                      output_landmarks=None, model: IdentityModel | None = None,
                      threshold: float = DEFAULT_THRESHOLDS.identity_margin_min) -> Score:
    """margin = d(output, target) - d(output, source) in the identity space; positive
    means the output face is nearer the source. The output face is described at the
    output's landmarks when known, else at the target's (where the face was pasted)."""
    model = model or get_identity_model()
    e_src = model.describe(source, source_landmarks)
    e_tgt = model.describe(target, target_landmarks)
    out_l = output_landmarks if output_landmarks is not None else target_landmarks
    e_out = model.describe(output, out_l)
    d_src = model.distance(e_out, e_src)
    d_tgt = model.distance(e_out, e_tgt)
    return _score("identity", "quality_identity_margin", "", "higher", d_tgt - d_src, threshold,
                  {"method": model.name, "d_output_source": d_src, "d_output_target": d_tgt,
                   "d_source_target": model.distance(e_src, e_tgt)})


# --- all of them --------------------------------------------------------------------------

def score_blend(source: np.ndarray, target: np.ndarray, output: np.ndarray,
                target_landmarks, *, source_landmarks=None, output_landmarks=_MISSING,
                landmarks_fn: LandmarkFn | None = None, mask=None,
                thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
                identity_model: IdentityModel | None = None) -> BlendScores:
    """Score one swapped frame. `landmarks_fn(image) -> (68, 2) | None` (the reference
    pipeline) is used for landmarks not given: the output's (pose) and the source's
    (identity). Without them the pose / identity scores are None (not scored).
    `output_landmarks=None` given explicitly means the landmark model found no face in
    the output: the pose check fails."""
    for name, img in (("source", source), ("target", target), ("output", output)):
        a = np.asarray(img)
        if a.ndim != 3 or a.shape[2] < 3 or a.dtype != np.uint8:
            raise ValueError(f"{name}: expected an RGB uint8 image (H, W, 3), got "
                             f"{a.dtype} {a.shape}")
    if output.shape[:2] != target.shape[:2]:
        raise ValueError(f"output {output.shape[:2]} and target {target.shape[:2]} differ in size")
    tgt_l = geo.as_landmarks(target_landmarks)
    iod = geo.inter_ocular(tgt_l)
    if mask is None:
        m = geo.mask_from_landmarks(tgt_l, target.shape)
        mask_source = "landmarks"
    else:
        m = geo.as_mask(mask, target.shape).astype(np.uint8) * 255
        mask_source = "runner"
    t = thresholds
    colour = colour_consistency(output, target, m, iod, geo.face_centre(tgt_l), t.colour_de_max,
                                landmarks=tgt_l)
    seam = seam_visibility(output, target, m, iod, t.seam_ratio_max,
                           locate=mask_source == "landmarks")

    if output_landmarks is _MISSING:
        out_known = landmarks_fn is not None
        output_landmarks = landmarks_fn(output) if out_known else None
    else:
        out_known = True            # given; None means "no face found in the output"
    if out_known:
        pose = pose_fidelity(output_landmarks, tgt_l, t.pose_nme_max)
    else:
        pose = _score("pose", "quality_pose_nme", "", "lower", None, t.pose_nme_max,
                      {"reason": "no landmark function for the output"})
    bg_ssim, bg_psnr = background_preservation(output, target, m, iod,
                                               t.background_ssim_min, t.background_psnr_min_db)
    if source_landmarks is None and landmarks_fn is not None:
        source_landmarks = landmarks_fn(source)
    if source_landmarks is None:
        identity = _score("identity", "quality_identity_margin", "", "higher", None,
                          t.identity_margin_min, {"reason": "no source landmarks"})
    else:
        out_l = output_landmarks if output_landmarks is not None else None
        identity = identity_transfer(source, target, output, source_landmarks, tgt_l,
                                     out_l, identity_model, t.identity_margin_min)
    return BlendScores(colour, seam, pose, bg_ssim, bg_psnr, identity, t, mask_source)
