"""The runner's Retinex low-light pass in Python (runner/src/stages.cpp `retinex_enhance`,
runner/README.md "Enhance"), so a frame the runner enhanced is scored against the
enhanced target, not the dark original. Pure; the same OpenCV calls as the C++ code.
"""

from __future__ import annotations

import cv2
import numpy as np

TARGET_LUMA = 128.0
STRENGTH = 0.6
MAX_GAIN = 4.0


def retinex_enhance(rgb: np.ndarray) -> np.ndarray:
    """RGB uint8 in, RGB uint8 out: each pixel times clamp((128 / max(I, 4))^0.6, 1, 4),
    I = luma at 1/4 resolution blurred by max(2, max side / 16) and scaled back up."""
    img = np.ascontiguousarray(rgb[..., :3])
    h, w = img.shape[:2]
    sw, sh = max(1, w // 4), max(1, h // 4)
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    luma = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    luma = cv2.GaussianBlur(luma, (0, 0), max(2.0, max(sw, sh) / 16.0))
    illum = cv2.resize(luma, (w, h), interpolation=cv2.INTER_LINEAR)
    levels = np.arange(256, dtype=np.float32)
    gain = np.clip((TARGET_LUMA / np.maximum(4.0, levels)) ** STRENGTH, 1.0, MAX_GAIN)
    g = gain[illum][..., None]
    return np.clip(np.rint(img.astype(np.float32) * g), 0, 255).astype(np.uint8)
