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

from harness.modelpack.reference import Reference

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
