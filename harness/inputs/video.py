"""A short video of the lab's target frames, for profiles with `[run] input = "video"`
(the linux runner decodes it with OpenCV videoio in libswap_video.so)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import cv2

from harness.inputs import derived_key

#: frames in the clip; the runner loops over it
FRAMES = 8
NAME = "frames.avi"


def video_clip(images: Mapping[str, Path], cache: Path) -> dict[str, Path]:
    """Motion-JPEG AVI of the images (each repeated to FRAMES frames, even size), in a
    content-keyed folder under `cache`; {file name: path}."""
    out = Path(cache) / f"video-{derived_key(__file__, images)}"
    dest = out / NAME
    if not dest.is_file():
        out.mkdir(parents=True, exist_ok=True)
        frames = []
        for name in sorted(images):
            img = cv2.imread(str(images[name]), cv2.IMREAD_COLOR)
            if img is None:
                raise FileNotFoundError(f"cannot read input image {images[name]}")
            frames.append(img[:img.shape[0] // 2 * 2, :img.shape[1] // 2 * 2])
        height, width = frames[0].shape[:2]
        tmp = out / f"tmp-{NAME}"
        writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*"MJPG"), 30.0, (width, height))
        if not writer.isOpened():
            raise OSError(f"cannot write a Motion-JPEG video to {tmp}")
        for i in range(FRAMES):
            writer.write(cv2.resize(frames[i % len(frames)], (width, height)))
        writer.release()
        tmp.replace(dest)
    return {NAME: dest}
