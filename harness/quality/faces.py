"""The right faces: every face of the target that the face policy asks for was swapped.

    faces_swapped(target, output, face_boxes, policy)   quality_missed_faces (lower)

Pure. `face_boxes` are the target's faces ([xmin, ymin, xmax, ymax], image px;
`landmarks.every_face` finds them with the mode's and the full-range detector on the frame
and on 2x2 tiles, so a group photo's back row is counted), `policy` the runner's `--faces`:
"all" (every face), "largest" (the biggest box), "best" (the first, most confident box).
A face counts as swapped when more than SWAPPED_SHARE of its inner box (the box shrunk
to its middle 60 %) changed by more than CHANGE_LEVELS in any channel: a swap replaces the
eyes, nose and mouth there, JPEG re-encoding changes a pixel by a few levels.
"""

from __future__ import annotations

import cv2
import numpy as np

from harness.quality.result import Score, _score
from harness.quality.thresholds import DEFAULT_THRESHOLDS

POLICIES = ("all", "largest", "best")
CHANGE_LEVELS = 12.0
SWAPPED_SHARE = 0.25
INNER = 0.6


def swapped_share(target: np.ndarray, output: np.ndarray, box) -> float:
    """Share of the box's middle INNER part that the output changed."""
    x0, y0, x1, y1 = (float(v) for v in box[:4])
    cx, cy, w, h = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) * INNER, (y1 - y0) * INNER
    H, W = target.shape[:2]
    xa, xb = int(max(0, cx - w / 2)), int(min(W, cx + w / 2 + 1))
    ya, yb = int(max(0, cy - h / 2)), int(min(H, cy + h / 2 + 1))
    if xb <= xa or yb <= ya:
        return 0.0
    o = cv2.GaussianBlur(output[ya:yb, xa:xb, :3].astype(np.float32), (0, 0), 1.0)
    t = cv2.GaussianBlur(target[ya:yb, xa:xb, :3].astype(np.float32), (0, 0), 1.0)
    return float((np.abs(o - t).max(axis=2) > CHANGE_LEVELS).mean())


def faces_swapped(target: np.ndarray, output: np.ndarray, face_boxes, policy: str = "all",
                  threshold: float = DEFAULT_THRESHOLDS.missed_faces_max) -> Score:
    if policy not in POLICIES:
        raise ValueError(f"face policy {policy!r}: expected one of {', '.join(POLICIES)}")
    boxes = [list(map(float, b[:4])) for b in face_boxes]
    shares = [swapped_share(target, output, b) for b in boxes]
    if not boxes:
        return _score("faces", "quality_missed_faces", "", "lower", None, threshold,
                      {"reason": "no face found in the target", "faces": 0})
    if policy == "all":
        asked = list(range(len(boxes)))
    elif policy == "largest":
        asked = [int(np.argmax([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes]))]
    else:
        asked = [0]
    missed = [i for i in asked if shares[i] <= SWAPPED_SHARE]
    return _score("faces", "quality_missed_faces", "", "lower", float(len(missed)), threshold,
                  {"policy": policy, "faces": len(boxes), "asked": asked, "missed": missed,
                   "swapped_share": [round(s, 3) for s in shares],
                   "boxes": [[round(v, 1) for v in b] for b in boxes]})
