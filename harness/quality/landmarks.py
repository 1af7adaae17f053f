"""68 landmarks for the scores, from the Python reference pipeline (harness.modelpack.reference).

`reference_landmarks(image, mode)` returns the (68, 2) iBUG points of the most confident
face, or None when no face is found (or the mesh's presence is below 0.5). The reference
pipeline is the same detector + face mesh as the runner's, run by ncnn's Python binding.

`reference_landmarks(output, mode, roi_image=target)` runs the face mesh on the output
inside the crop the detector chose on the *target*: the pose score then compares two
mesh runs on the same crop, so detector jitter between the two frames does not count as
a pose error (it is about as large as the 5 px shift the score must catch).
"""

from __future__ import annotations

import functools

import numpy as np

from harness.modelpack.reference import Reference, box_iou

MIN_PRESENCE = 0.5


@functools.lru_cache(maxsize=4)
def _reference(mode: str):

    return Reference(mode)


def reference_landmarks(image: np.ndarray, mode: str = "small",
                        roi_image: np.ndarray | None = None) -> np.ndarray | None:
    ref = _reference(mode)
    img = np.ascontiguousarray(image[..., :3])
    det_img = img if roi_image is None else np.ascontiguousarray(roi_image[..., :3])
    dets = ref.detect_faces(det_img)
    if not dets:
        return None
    _, pts68, presence = ref.face_landmarks(img, dets[0])
    if presence < MIN_PRESENCE:
        return None
    return np.asarray(pts68, np.float64)


def landmark_fn(mode: str = "small", roi_image: np.ndarray | None = None):
    """A `landmarks_fn` for `score_blend` bound to one mode of the reference pipeline
    (and, with `roi_image`, to the face crop found on that image)."""
    return functools.partial(reference_landmarks, mode=mode, roi_image=roi_image)


#: the detector that sees small and distant faces (the runner's small-face passes)
FULL_RANGE = "face_detection_full_range"
#: a box found twice (IoU above this) is one face: the runner's merge_detections
SAME_FACE_IOU = 0.3
#: side of each of the 2x2 overlapping tiles, as a share of the frame's (runner:
#: small_face_tiles); faces in a tile are 1.7x larger in the detector's input
TILE_SHARE = 0.6


@functools.lru_cache(maxsize=1)
def _full_range():
    return Reference("base", detector=FULL_RANGE)


def every_face(image: np.ndarray, mode: str = "small") -> list:
    """Every face of the frame that a user would expect swapped, best first
    (`quality_missed_faces`): the mode's detector, the full-range detector on the frame
    and on 2x2 overlapping tiles, merged (a box found twice keeps the more confident).
    The scorer's own search, as thorough as the runner's `--small-faces always-tiles`, so
    that a runner which misses a group photo's back row is seen to miss it: the mode's
    detector alone finds none of a 1280x720 group's back row, so it could not tell."""
    img = np.ascontiguousarray(image[..., :3])
    ref, full = _reference(mode), _full_range()
    dets = list(ref.detect_faces(img))
    if ref.det_id != FULL_RANGE:        # base mode's detector is the full-range one
        dets += full.detect_faces(img)
    h, w = img.shape[:2]
    side = full.det_cfg["input"]["width"]
    if w >= 2 * side and h >= 2 * side:
        tw, th = int(np.ceil(TILE_SHARE * w)), int(np.ceil(TILE_SHARE * h))
        for x0, y0 in ((0, 0), (w - tw, 0), (0, h - th), (w - tw, h - th)):
            for d in full.detect_faces(np.ascontiguousarray(img[y0:y0 + th, x0:x0 + tw])):
                shift = np.array([x0, y0], float)
                dets.append(type(d)(d.score, d.box + np.tile(shift, 2), d.keypoints + shift))
    out: list = []
    for d in sorted(dets, key=lambda d: -d.score):
        if not out or (box_iou(d.box, np.stack([k.box for k in out])) <= SAME_FACE_IOU).all():
            out.append(d)
    return out
