"""Identity descriptors: is the output face nearer the source than the target?

Two back-ends, chosen by `get_identity_model()`:

* "dlib-resnet" (preferred): dlib's 128-D face recognition ResNet
  (`dlib_face_recognition_resnet_model_v1.dat`), shipped inside the PyPI package
  `face_recognition_models` (MIT; the model itself was released into the public domain by
  its author, Davis King), run with dlib from the binary wheel `dlib-bin` (Boost licence).
  Offline: nothing is fetched at run time. The face chip is aligned from our own 68
  landmarks (dlib's 68-point chip layout), so no dlib detector or landmark model is used.
  Distances are Euclidean; dlib's own same-person cut-off is 0.6.
* "hog-texture" (fallback when dlib is not importable): HOG of the aligned inner face
  (`HogTexture`), documented in docs/quality.md. Weaker (it misses on heavily noised
  frames), but needs only OpenCV and scikit-image. The margin threshold is the same
  (> 0: nearer the source).
"""

from __future__ import annotations

import functools
import importlib.util
import os
from typing import Protocol

import cv2
import numpy as np
from skimage.feature import hog

from harness.quality import geometry as geo


def _mirror_68() -> list[int]:
    pairs = [(i, 16 - i) for i in range(17)] + [(17 + i, 26 - i) for i in range(10)]
    pairs += [(27, 27), (28, 28), (29, 29), (30, 30), (31, 35), (32, 34), (33, 33), (34, 32),
              (35, 31)]
    eyes = {36: 45, 37: 44, 38: 43, 39: 42, 40: 47, 41: 46}
    eyes.update({v: k for k, v in eyes.items()})
    mouth = {48: 54, 49: 53, 50: 52, 51: 51, 55: 59, 56: 58, 57: 57, 60: 64, 61: 63, 62: 62,
             65: 67, 66: 66}
    mouth.update({v: k for k, v in mouth.items()})
    m = dict(pairs)
    m.update(eyes)
    m.update(mouth)
    return [m[i] for i in range(68)]


#: index permutation of the 68 iBUG points for a left-right mirrored face
MIRROR_68 = _mirror_68()


class IdentityModel(Protocol):
    name: str

    def describe(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray: ...

    def distance(self, a: np.ndarray, b: np.ndarray) -> float: ...


def _dlib_model_path() -> str | None:
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        return None
    # Located without importing the package: its __init__ needs pkg_resources.
    for folder in spec.submodule_search_locations:
        p = os.path.join(folder, "models", "dlib_face_recognition_resnet_model_v1.dat")
        if os.path.isfile(p):
            return p
    return None


class DlibEmbedding:
    name = "dlib-resnet"

    def __init__(self, model_path: str) -> None:
        import dlib  # lazy: dlib is the optional [identity] extra

        self._dlib = dlib
        self._net = dlib.face_recognition_model_v1(model_path)
        self.model_path = model_path

    def describe(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        dlib = self._dlib
        pts = geo.as_landmarks(landmarks)
        img = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
        x0, y0 = pts.min(0)
        x1, y1 = pts.max(0)
        rect = dlib.rectangle(round(x0), round(y0), round(x1), round(y1))
        shape = dlib.full_object_detection(rect, [dlib.point(round(x), round(y))
                                                 for x, y in pts])
        chip = dlib.get_face_chip(img, shape, size=150, padding=0.25)
        return np.asarray(self._net.compute_face_descriptor(chip), np.float64)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b))


class HogTexture:
    """Fallback identity descriptor: HOG of the aligned, histogram-equalised inner face.

    The face is aligned by a similarity transform of five landmarks (eye corners, nose
    tip, mouth corners) onto a 112x112 template; the inner face (eyes, nose, mouth:
    72x68 px) is histogram-equalised and described by HOG (9 orientations, 8x8 cells,
    2x2 blocks). What a swap transfers is exactly that structure (eye and brow shapes,
    glasses, wrinkles, mouth); landmark ratios and colour histograms were tried first and
    dropped: a swap keeps the target's pose, outline and (after colour correction) its
    colours by design, so both said "target" for every good blend (docs/quality.md).
    """

    name = "hog-texture"
    SIZE = 112
    _ANCHORS = (36, 45, 30, 48, 54)
    _TEMPLATE = np.array([[30.0, 45.0], [82.0, 45.0], [56.0, 68.0], [38.0, 88.0],
                          [74.0, 88.0]])

    def crop(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        pts = geo.as_landmarks(landmarks)
        m, _ = cv2.estimateAffinePartial2D(pts[list(self._ANCHORS)].astype(np.float32),
                                           self._TEMPLATE.astype(np.float32))
        if m is None:
            raise ValueError("cannot align the face for the texture descriptor")
        crop = cv2.warpAffine(np.ascontiguousarray(image[..., :3]), m, (self.SIZE, self.SIZE),
                              flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
        return cv2.equalizeHist(np.ascontiguousarray(grey[28:100, 22:90]))

    def describe(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        return hog(self.crop(image, landmarks), orientations=9, pixels_per_cell=(8, 8),
                   cells_per_block=(2, 2), feature_vector=True)

    def distance(self, a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b))


def get_identity_model(prefer: str | None = None) -> IdentityModel:
    """"auto" (default; or $SWAPLAB_IDENTITY_MODEL): the dlib embedding when dlib and its
    model are installed, else the HOG texture descriptor. "dlib-resnet" raises if it is
    missing; "hog-texture" forces the fallback."""
    return _identity_model(prefer or os.environ.get("SWAPLAB_IDENTITY_MODEL") or "auto")


@functools.lru_cache(maxsize=4)
def _identity_model(prefer: str) -> IdentityModel:
    if prefer in ("auto", "dlib-resnet"):
        path = _dlib_model_path()
        if path is not None and importlib.util.find_spec("dlib") is not None:
            return DlibEmbedding(path)
        if prefer == "dlib-resnet":
            raise RuntimeError("dlib face embedding unavailable: install the PyPI packages "
                               "'dlib-bin' and 'face_recognition_models'")
    if prefer not in ("auto", "dlib-resnet", "hog-texture"):
        raise ValueError(f"unknown identity model {prefer!r}")
    return HogTexture()
