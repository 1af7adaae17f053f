"""Camera-like frames: the lab's target images as a phone camera hands them to the pipeline.

Android's camera (Camera2 / CameraX, YUV_420_888) delivers NV21: the full-resolution luma
plane, then the chroma at half resolution in both directions with V and U interleaved. The
frames are made once here (content-keyed cache), pushed, and the runner holds them in
memory: no JPEG decode per frame, a `convert` stage (YUV -> BGR) instead
(runner/README.md, "Camera input"). File names carry the size, `<stem>_<W>x<H>.nv21`,
because a camera buffer has no header.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np

from harness.inputs import build_once, derived_key

SUFFIX = ".nv21"


def to_nv21(bgr: np.ndarray) -> np.ndarray:
    """8-bit BGR (even width and height) -> NV21 bytes as a (H*3/2, W) uint8 array
    (BT.601 as OpenCV's YUV_I420, chroma re-interleaved V,U)."""
    h, w = bgr.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"NV21 needs an even width and height, got {w}x{h}")
    i420 = cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV_I420)
    y = i420[:h]
    u = i420[h:h + h // 4].reshape(-1)
    v = i420[h + h // 4:].reshape(-1)
    vu = np.empty(u.size * 2, np.uint8)
    vu[0::2], vu[1::2] = v, u
    return np.concatenate([y.reshape(-1), vu]).reshape(h * 3 // 2, w)


def nv21_name(stem: str, width: int, height: int) -> str:
    return f"{stem}_{width}x{height}{SUFFIX}"


def camera_frames(images: Mapping[str, Path], cache: Path) -> dict[str, Path]:
    """The images of an input set as NV21 camera frames (cropped to even sizes), in a
    content-keyed folder under `cache`; {file name: path}."""
    def build(folder: Path) -> None:
        for name in sorted(images):
            img = cv2.imread(str(images[name]), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"cannot read input image {images[name]}")
            img = img[:img.shape[0] // 2 * 2, :img.shape[1] // 2 * 2]
            dest = folder / nv21_name(Path(name).stem, img.shape[1], img.shape[0])
            dest.write_bytes(to_nv21(img).tobytes())

    out = build_once(Path(cache) / f"camera-{derived_key(__file__, images)}", build)
    return {p.name: p for p in sorted(out.glob(f"*{SUFFIX}"))}
