"""Planted defects: broken variants of a good swap, one per face score (docs/quality.md,
"Evaluation set"). Pure functions of RGB uint8 images and the target's (68, 2) landmarks;
each returns new arrays and leaves its inputs alone.

  colour_shift         face interior paler and greyer (L* +12, chroma x 0.45)   face_colour
  doubled_brows        the target's brows pasted back over the swapped face      structure
  half_erased_glasses  glasses drawn on the target; on the output only their
                       outer arcs and arms are left                             structure
  draw_glasses         glasses drawn on a face (a source that wears glasses)
  cut_source_glasses   the output kept only inside the face hull narrowed about
                       its centre (the mask edge runs through the outer part of
                       each lens ring of a source's glasses)                    cut_glasses
  leak_strip           a grey strip (the source background's luma) on one cheek  leak
  shifted              the face content moved by (dx, dy) px                      pose_points
  scaled               the face content scaled about the face centre              pose_points
  rotated              the face content turned about the face centre              pose_points
  jitter_sequence      the face content moved by a sub-pixel offset per frame    jitter, flicker
  side_by_side         two frames in one (a group photo for the right-faces check)
"""

from __future__ import annotations

import cv2
import numpy as np

from harness.quality import geometry as geo
from harness.quality import regions


def _feathered(mask: np.ndarray, sigma_px: float) -> np.ndarray:
    m = mask.astype(np.float32)
    return cv2.GaussianBlur(m, (0, 0), max(0.5, sigma_px))[..., None]


def _face_inside(tl, shape, inset: float) -> np.ndarray:
    iod = geo.inter_ocular(tl)
    return geo.signed_distance(geo.mask_from_landmarks(tl, shape) > 0) > inset * iod


def colour_shift(output: np.ndarray, tl, d_lightness: float = 12.0, chroma: float = 0.45,
                 inset: float = 0.05) -> np.ndarray:
    """The face from `inset` * IOD inside its outline on paler and greyer."""
    iod = geo.inter_ocular(tl)
    a = _feathered(_face_inside(tl, output.shape, inset), 0.04 * iod)
    lab = cv2.cvtColor(output.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    shifted = lab.copy()
    shifted[..., 0] += d_lightness
    shifted[..., 1:] *= chroma
    lab = lab + a * (shifted - lab)
    rgb = cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def doubled_brows(output: np.ndarray, target: np.ndarray, tl) -> np.ndarray:
    iod = geo.inter_ocular(tl)
    brows = regions.feature_mask(tl, output.shape, iod, 0.06, ("right_brow", "left_brow"))
    a = _feathered(brows, 1.5)
    return np.clip(output + a * (target.astype(np.float32) - output), 0, 255).astype(np.uint8)


def _draw_glasses(image: np.ndarray, tl, outer_only: bool, thickness: float = 0.045
                  ) -> np.ndarray:
    pts = geo.as_landmarks(tl)
    iod = geo.inter_ocular(pts)
    img = np.ascontiguousarray(image.copy())
    thick = max(2, round(thickness * iod))
    colour = (25, 25, 30)
    centres = geo.eye_centres(pts)
    axes = (round(0.24 * iod), round(0.17 * iod))
    eye_line = centres[1] - centres[0]
    angle = float(np.degrees(np.arctan2(eye_line[1], eye_line[0])))
    for i, c in enumerate(centres):
        # outer half of the right eye's ring faces -x (in the eye line's frame), the left's +x
        if outer_only:
            start, end = (90, 270) if i == 0 else (-90, 90)
        else:
            start, end = 0, 360
        cv2.ellipse(img, (round(c[0]), round(c[1])), axes, angle, start, end, colour, thick,
                    cv2.LINE_AA)
    u = eye_line / np.linalg.norm(eye_line)
    if not outer_only:
        a = centres[0] + u * axes[0]
        b = centres[1] - u * axes[0]
        cv2.line(img, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), colour,
                 thick, cv2.LINE_AA)
    for c, s in ((centres[0], -1), (centres[1], 1)):       # temple arms to the face edge
        a = c + s * u * axes[0]
        b = a + s * u * 0.35 * iod
        cv2.line(img, tuple(np.round(a).astype(int)), tuple(np.round(b).astype(int)), colour,
                 thick, cv2.LINE_AA)
    return img


def draw_glasses(image: np.ndarray, tl, thickness: float = 0.025) -> np.ndarray:
    """`image` wearing drawn glasses (dark rings 0.24 x 0.17 IOD round each eye, a bridge,
    short arms; lines `thickness` x IOD, at least 2 px): a source with glasses for the cut
    glasses score, where the set has one real face with glasses. Thinner than
    `half_erased_glasses`'s: a line as wide as the frame finder's black-hat kernel (0.08 x
    the eye-centre distance) is not seen as a line."""
    return _draw_glasses(image, tl, False, thickness)


def half_erased_glasses(output: np.ndarray, target: np.ndarray, tl
                        ) -> tuple[np.ndarray, np.ndarray]:
    """(target with glasses, output with only their outer arcs and arms)."""
    return _draw_glasses(target, tl, False), _draw_glasses(output, tl, True)


def cut_source_glasses(output: np.ndarray, target: np.ndarray, tl, width: float = 0.55
                       ) -> np.ndarray:
    """The target outside the landmark hull narrowed to `width` of its size across the face
    (along the eye line, about the face centre), the output inside, feathered 0.02 IOD: a
    mask edge that runs through the outer part of a source's lens rings, as on a target
    face narrower than the source's glasses."""
    pts = geo.as_landmarks(tl)
    c = geo.face_centre(pts)
    right, left = geo.eye_centres(pts)
    ex = (left - right) / np.linalg.norm(left - right)
    ey = np.array([-ex[1], ex[0]])
    d = pts - c
    narrow = c + np.outer((d @ ex) * width, ex) + np.outer(d @ ey, ey)
    a = _feathered(geo.mask_from_landmarks(narrow, output.shape) > 0,
                   0.02 * geo.inter_ocular(pts))
    return np.clip(target + a * (output.astype(np.float32) - target), 0, 255).astype(np.uint8)


def source_background_colour(source: np.ndarray) -> np.ndarray:
    """Median colour of the source's top corners (its background)."""
    h, w = source.shape[:2]
    k = max(4, min(h, w) // 8)
    corners = np.concatenate([source[:k, :k].reshape(-1, 3), source[:k, -k:].reshape(-1, 3)])
    return np.median(corners, axis=0)


def leak_strip(output: np.ndarray, source: np.ndarray, tl, side: int = -1,
               width: float = 0.18) -> np.ndarray:
    """A grey strip `width` * IOD wide just inside the face outline on one side (-1: the
    image's left, +1: its right), from eye to mouth level: the grey of the source's
    background (its luma, no colour), as the leaks of the issue looked."""
    pts = geo.as_landmarks(tl)
    iod = geo.inter_ocular(pts)
    hull = geo.mask_from_landmarks(pts, output.shape) > 0
    sd = geo.signed_distance(hull)
    yy, xx = np.mgrid[0:output.shape[0], 0:output.shape[1]]
    cx = pts[27:36, 0].mean()
    y0, y1 = pts[36:48, 1].mean(), pts[48:60, 1].max()
    strip = (sd > 0.02 * iod) & (sd < width * iod) & (yy > y0) & (yy < y1)
    strip &= (xx < cx - 0.3 * iod) if side < 0 else (xx > cx + 0.3 * iod)
    a = _feathered(strip, 1.0)
    bg = np.full(3, source_background_colour(source).mean(), np.float32)
    return np.clip(output + a * (bg - output), 0, 255).astype(np.uint8)


def _move_face(output: np.ndarray, tl, matrix: np.ndarray) -> np.ndarray:
    iod = geo.inter_ocular(tl)
    moved = cv2.warpAffine(output, matrix, (output.shape[1], output.shape[0]),
                           flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    a = _feathered(_face_inside(tl, output.shape, 0.0), 0.02 * iod)
    return np.clip(output + a * (moved.astype(np.float32) - output), 0, 255).astype(np.uint8)


def shifted(output: np.ndarray, tl, dx: float = 5.0, dy: float = 0.0) -> np.ndarray:
    return _move_face(output, tl, np.array([[1.0, 0, dx], [0, 1.0, dy]]))


def scaled(output: np.ndarray, tl, scale: float = 0.9) -> np.ndarray:
    c = geo.face_centre(tl)
    return _move_face(output, tl, np.array([[scale, 0, (1 - scale) * c[0]],
                                            [0, scale, (1 - scale) * c[1]]]))


def rotated(output: np.ndarray, tl, degrees: float = 4.0) -> np.ndarray:
    c = geo.face_centre(tl)
    return _move_face(output, tl, cv2.getRotationMatrix2D((float(c[0]), float(c[1])), degrees, 1.0))


def jitter_sequence(output: np.ndarray, tl, offsets_px) -> list[np.ndarray]:
    """One frame per (dx, dy): the face content moved by it (0, 0 = the frame itself)."""
    return [output.copy() if (dx, dy) == (0, 0) else shifted(output, tl, dx, dy)
            for dx, dy in offsets_px]


def side_by_side(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Both frames at the height of the smaller one, next to each other."""
    h = min(left.shape[0], right.shape[0])

    def fit(img):
        if img.shape[0] == h:
            return img
        w = round(img.shape[1] * h / img.shape[0])
        return cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)

    return np.ascontiguousarray(np.hstack([fit(left), fit(right)]))

