"""A short video of the lab's target frames, for profiles with `[run] input = "video"`
(the linux runner decodes it with OpenCV videoio in libswap_video.so)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2

from harness.inputs import build_once, derived_key

#: frames in the clip; the runner loops over it
FRAMES = 8
NAME = "frames.avi"


def video_clip(images: Mapping[str, Path], cache: Path) -> dict[str, Path]:
    """Motion-JPEG AVI of the images (each repeated to FRAMES frames, even size), in a
    content-keyed folder under `cache`; {file name: path}."""
    def build(folder: Path) -> None:
        frames = []
        for name in sorted(images):
            img = cv2.imread(str(images[name]), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"cannot read input image {images[name]}")
            frames.append(img[:img.shape[0] // 2 * 2, :img.shape[1] // 2 * 2])
        height, width = frames[0].shape[:2]
        dest = folder / NAME
        writer = cv2.VideoWriter(str(dest), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
        if not writer.isOpened():
            raise OSError(f"cannot write a Motion-JPEG video to {dest}")
        for i in range(FRAMES):
            writer.write(cv2.resize(frames[i % len(frames)], (width, height)))
        writer.release()

    out = build_once(Path(cache) / f"video-{derived_key(__file__, images)}", build)
    return {NAME: out / NAME}
