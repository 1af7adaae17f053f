"""Python reference face pipeline (ncnn Python binding + OpenCV).

detect -> 468-point mesh -> 68 points, the golden reference that the C++ runner
(`runner/`) must agree with (within 0.5 px). Every step is written out in
models/README.md ("Reference pipeline"); keep the two in sync.

    ref = Reference(mode="small")               # models/ of this repo
    dets = ref.detect_faces(img_rgb)             # list[Detection], best first
    mesh, pts68, presence = ref.face_landmarks(img_rgb, dets[0])
    mask = ref.person_mask(img_rgb)              # base mode only: HxW float32 in [0,1]

Coordinates are image pixels in the continuous convention: the centre of pixel
(i, j) is (i + 0.5, j + 0.5); this is MediaPipe's normalized coordinate times the
image size. Images are RGB uint8 HxWx3.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math

import cv2
import numpy as np

from harness.modelpack.pack import ModelPack, load_pack


@dataclasses.dataclass
class Detection:
    score: float                 # probability after clip + sigmoid
    box: np.ndarray              # [xmin, ymin, xmax, ymax], image px
    keypoints: np.ndarray        # (6, 2) image px: right eye, left eye, nose, mouth, r ear, l ear

    @property
    def center(self) -> tuple[float, float]:
        return float((self.box[0] + self.box[2]) / 2), float((self.box[1] + self.box[3]) / 2)

    @property
    def size(self) -> tuple[float, float]:
        return float(self.box[2] - self.box[0]), float(self.box[3] - self.box[1])


@dataclasses.dataclass
class Roi:
    """Rotated square face crop: centre, side lengths (px) and rotation (radians)."""
    cx: float
    cy: float
    width: float
    height: float
    rotation: float


def generate_anchors(cfg: dict) -> np.ndarray:
    """(N, 2) anchor centres in [0,1], MediaPipe SsdAnchorsCalculator order.

    For each feature map (size = ceil(input/stride) of each distinct stride, in order):
    for y, for x, `anchors_per_cell` copies of ((x + 0.5)/fw, (y + 0.5)/fh).
    (fixed_anchor_size: anchor width = height = 1.)
    """
    centers = []
    for fm, per_cell in zip(cfg["feature_maps"], cfg["anchors_per_cell"]):
        for y in range(fm):
            for x in range(fm):
                c = ((x + cfg["anchor_offset_x"]) / fm, (y + cfg["anchor_offset_y"]) / fm)
                centers.extend([c] * per_cell)
    a = np.asarray(centers, np.float32)
    if len(a) != cfg["num_anchors"]:
        raise ValueError(f"anchor count {len(a)} != num_anchors {cfg['num_anchors']}")
    return a


def letterbox(img: np.ndarray, size: int):
    """Resize keeping aspect (cv2.INTER_LINEAR) and pad with black to size x size.

    Returns (uint8 size x size x 3, scale_x, scale_y, pad_x, pad_y) where
    nw = round(W * s), nh = round(H * s), s = min(size/W, size/H),
    pad_x = (size - nw) // 2, pad_y = (size - nh) // 2, scale_x = nw / W, scale_y = nh / H.
    """
    h, w = img.shape[:2]
    s = min(size / w, size / h)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    resized = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    px, py = (size - nw) // 2, (size - nh) // 2
    out = cv2.copyMakeBorder(resized, py, size - nh - py, px, size - nw - px,
                             cv2.BORDER_CONSTANT, value=(0, 0, 0))
    return out, nw / w, nh / h, px, py


def _to_mat_input(img_u8: np.ndarray, inp: dict) -> np.ndarray:
    """HxWx3 uint8 RGB -> 3xHxW float32 (x - mean) * norm (= substract_mean_normalize)."""
    x = img_u8.astype(np.float32)
    x = (x - np.asarray(inp["mean_vals"], np.float32)) * np.asarray(inp["norm_vals"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1))


def run_net(net, inp: dict, outputs: dict, chw: np.ndarray) -> dict[str, np.ndarray]:
    """Run one ncnn net; returns {role: numpy array} (copies)."""
    import ncnn  # lazy: only running a net needs ncnn's native library

    arr = np.ascontiguousarray(chw, dtype=np.float32)
    mat = ncnn.Mat(arr)  # does not own arr: keep `arr` alive until extraction is done
    ex = net.create_extractor()
    ex.input(inp["blob"], mat)
    res = {}
    for role, blob in outputs.items():
        rc, out = ex.extract(blob)
        if rc != 0:
            raise RuntimeError(f"ncnn extract {blob!r} failed ({rc})")
        res[role] = np.array(out, copy=True)
    del ex, mat, arr
    return res


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of box `a` with each row of `b` ([xmin, ymin, xmax, ymax])."""
    ix = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    iy = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = ix * iy
    area_a = (a[2] - a[0]) * (a[3] - a[1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def weighted_nms(boxes, kps, scores, iou_thr: float):
    """MediaPipe WEIGHTED non-max suppression.

    Repeatedly take the highest-scoring remaining detection, collect every remaining
    one with IoU > iou_thr with it (itself included), and output the score-weighted
    mean of their boxes and keypoints with the top score. Returns indices-free lists.
    """
    order = np.argsort(-scores, kind="stable")
    remaining = list(order)
    out = []
    while remaining:
        top = remaining[0]
        rem = np.asarray(remaining)
        ious = box_iou(boxes[top], boxes[rem])
        members = rem[ious > iou_thr]
        if top not in members:
            members = np.concatenate([[top], members])
        w = scores[members][:, None]
        box = (boxes[members] * w).sum(0) / w.sum()
        kp = (kps[members] * w[:, :, None]).sum(0) / w.sum()
        out.append((float(scores[top]), box, kp))
        keep = set(members.tolist())
        remaining = [i for i in remaining if i not in keep]
    return out


def roi_from_detection(det: Detection) -> Roi:
    """MediaPipe face_detection_front_detection_to_roi: eyes -> rotation, box x1.5 square."""
    (x0, y0), (x1, y1) = det.keypoints[0], det.keypoints[1]
    rot = _normalize_radians(0.0 - math.atan2(-(y1 - y0), x1 - x0))
    cx, cy = det.center
    w, h = det.size
    side = max(w, h) * 1.5
    return Roi(cx, cy, side, side, rot)


def roi_from_landmarks(mesh: np.ndarray) -> Roi:
    """Tracking ROI from the previous frame's mesh (MediaPipe face_landmarks_to_roi):
    rotation from points 33 -> 263, box = axis-aligned bounds of all 468 x,y, x1.5 square."""
    x0, y0 = mesh[33, :2]
    x1, y1 = mesh[263, :2]
    rot = _normalize_radians(0.0 - math.atan2(-(y1 - y0), x1 - x0))
    xmin, ymin = mesh[:, :2].min(0)
    xmax, ymax = mesh[:, :2].max(0)
    side = max(xmax - xmin, ymax - ymin) * 1.5
    return Roi(float((xmin + xmax) / 2), float((ymin + ymax) / 2), float(side), float(side), rot)


def _normalize_radians(a: float) -> float:
    return a - 2 * math.pi * math.floor((a + math.pi) / (2 * math.pi))


def roi_affine(roi: Roi, size: int) -> np.ndarray:
    """2x3 matrix mapping crop pixel indices (u, v) to image pixel indices (x, y):

        s = (u + 0.5) / size - 0.5,  t = (v + 0.5) / size - 0.5
        x = cx + cos(r) * s * W - sin(r) * t * H - 0.5
        y = cy + sin(r) * s * W + cos(r) * t * H - 0.5

    Use with cv2.warpAffine(..., flags=INTER_LINEAR | WARP_INVERSE_MAP,
    borderMode=BORDER_REPLICATE).
    """
    c, s_ = math.cos(roi.rotation), math.sin(roi.rotation)
    a, b = c * roi.width / size, -s_ * roi.height / size
    d, e = s_ * roi.width / size, c * roi.height / size
    # constant terms: value at u = v = 0
    tx = roi.cx + a * (0.5 - size / 2) + b * (0.5 - size / 2) - 0.5
    ty = roi.cy + d * (0.5 - size / 2) + e * (0.5 - size / 2) - 0.5
    return np.array([[a, b, tx], [d, e, ty]], np.float64)


def project_landmarks(raw: np.ndarray, roi: Roi, size: int) -> np.ndarray:
    """Model output (468, 3) in crop pixels -> image pixels (continuous convention).

        s = x / size - 0.5, t = y / size - 0.5
        X = cx + cos(r) * s * W - sin(r) * t * H
        Y = cy + sin(r) * s * W + cos(r) * t * H
        Z = z / size * W
    """
    c, s_ = math.cos(roi.rotation), math.sin(roi.rotation)
    s = raw[:, 0] / size - 0.5
    t = raw[:, 1] / size - 0.5
    out = np.empty_like(raw, dtype=np.float64)
    out[:, 0] = roi.cx + c * s * roi.width - s_ * t * roi.height
    out[:, 1] = roi.cy + s_ * s * roi.width + c * t * roi.height
    out[:, 2] = raw[:, 2] / size * roi.width
    return out


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.clip(x, -80.0, 80.0)))


class Reference:
    """The reference pipeline for one mode of the pack."""

    def __init__(self, mode: str = "small", pack: ModelPack | None = None, num_threads: int = 1,
                 detector: str | None = None, landmarks: str | None = None):
        self.pack = pack or load_pack()
        m = self.pack.mode(mode)
        self.mode = mode
        self.detect_every_n_frames = int(m["detect_every_n_frames"])
        self.det_id = detector or m["detector"]
        self.mesh_id = landmarks or m["landmarks"]
        self.seg_id = m.get("segmentation")
        self.det_cfg = self.pack.model(self.det_id)
        self.mesh_cfg = self.pack.model(self.mesh_id)
        self.det_net = self.pack.load_net(self.det_id, num_threads)
        self.mesh_net = self.pack.load_net(self.mesh_id, num_threads)
        self.seg_net = self.pack.load_net(self.seg_id, num_threads) if self.seg_id else None
        self.anchors = generate_anchors(self.det_cfg["detector"])
        self.landmarks68 = np.asarray(self.pack.landmarks68)

    # -- detection -------------------------------------------------------------
    def detector_raw(self, img_rgb: np.ndarray):
        cfg = self.det_cfg
        size = cfg["input"]["width"]
        lb, sx, sy, px, py = letterbox(img_rgb, size)
        out = run_net(self.det_net, cfg["input"], cfg["outputs"], _to_mat_input(lb, cfg["input"]))
        n = cfg["detector"]["num_anchors"]
        return (out["regressors"].reshape(n, 16), out["scores"].reshape(n),
                (sx, sy, px, py))

    def detect_faces(self, img_rgb: np.ndarray, min_score: float | None = None) -> list[Detection]:
        """Faces in the image, best first (weighted NMS), coordinates in image px."""
        d = self.det_cfg["detector"]
        reg, logits, (sx, sy, px, py) = self.detector_raw(img_rgb)
        clip = d["score_clip"]
        scores = sigmoid(np.clip(logits, -clip, clip))
        thr = d["min_score"] if min_score is None else min_score
        idx = np.nonzero(scores >= thr)[0]
        if len(idx) == 0:
            return []
        size, k = d["input_size"], d["num_keypoints"]
        scale = d["box_scale"]
        a = self.anchors[idx]
        r = reg[idx].astype(np.float64)
        # decode in letterboxed-normalized coordinates, then undo the letterbox
        cx = r[:, 0] / scale + a[:, 0]
        cy = r[:, 1] / scale + a[:, 1]
        w = r[:, 2] / scale
        h = r[:, 3] / scale
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        kps = np.stack([r[:, 4 + 2 * j: 6 + 2 * j] / scale + a for j in range(k)], 1)
        boxes_px = np.empty_like(boxes)
        boxes_px[:, [0, 2]] = (boxes[:, [0, 2]] * size - px) / sx
        boxes_px[:, [1, 3]] = (boxes[:, [1, 3]] * size - py) / sy
        kps_px = np.empty_like(kps)
        kps_px[..., 0] = (kps[..., 0] * size - px) / sx
        kps_px[..., 1] = (kps[..., 1] * size - py) / sy
        dets = weighted_nms(boxes_px, kps_px, scores[idx].astype(np.float64), d["nms_iou"])
        return [Detection(s, b, kp) for s, b, kp in dets]

    # -- mesh -----------------------------------------------------------------
    def crop(self, img_rgb: np.ndarray, roi: Roi) -> np.ndarray:
        size = self.mesh_cfg["input"]["width"]
        m = roi_affine(roi, size)
        return cv2.warpAffine(img_rgb, m, (size, size),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_REPLICATE)

    def mesh_raw(self, crop_rgb: np.ndarray):
        cfg = self.mesh_cfg
        out = run_net(self.mesh_net, cfg["input"], cfg["outputs"], _to_mat_input(crop_rgb, cfg["input"]))
        return out["landmarks"].reshape(468, 3), float(out["face_flag"].reshape(-1)[0])

    def face_landmarks(self, img_rgb: np.ndarray, face: Detection | Roi):
        """(mesh 468x3 image px, 68x2 image px in iBUG order, presence probability)."""
        roi = roi_from_detection(face) if isinstance(face, Detection) else face
        size = self.mesh_cfg["input"]["width"]
        raw, flag = self.mesh_raw(self.crop(img_rgb, roi))
        mesh = project_landmarks(raw, roi, size)
        return mesh, mesh[self.landmarks68, :2].copy(), float(sigmoid(flag))

    # -- segmentation ---------------------------------------------------------
    def person_mask(self, img_rgb: np.ndarray) -> np.ndarray | None:
        """HxW float32 person probability (model input: whole image stretched to 256x256,
        cv2.INTER_LINEAR both ways), or None if the mode has no segmentation."""
        if self.seg_net is None:
            return None
        cfg = self.pack.model(self.seg_id)
        s = cfg["input"]["width"]
        small = cv2.resize(img_rgb, (s, cfg["input"]["height"]), interpolation=cv2.INTER_LINEAR)
        out = run_net(self.seg_net, cfg["input"], cfg["outputs"], _to_mat_input(small, cfg["input"]))
        m = out["mask"].reshape(cfg["input"]["height"], s).astype(np.float32)
        return cv2.resize(m, (img_rgb.shape[1], img_rgb.shape[0]), interpolation=cv2.INTER_LINEAR)

    # -- video ----------------------------------------------------------------
    def track(self, frames, min_presence: float = 0.5):
        """Run the mode over frames as the runner does: detect on frame 0 and every
        `detect_every_n_frames`-th frame (or when tracking is lost), else crop from the
        previous mesh. Yields (frame index, mesh or None, pts68 or None, detected)."""
        prev = None
        for i, img in enumerate(frames):
            detected = False
            if prev is None or i % self.detect_every_n_frames == 0:
                dets = self.detect_faces(img)
                detected = True
                roi = roi_from_detection(dets[0]) if dets else None
            else:
                roi = roi_from_landmarks(prev)
            if roi is None:
                prev = None
                yield i, None, None, detected
                continue
            mesh, pts, presence = self.face_landmarks(img, roi)
            if presence < min_presence:
                prev = None
                yield i, None, None, detected
                continue
            prev = mesh
            yield i, mesh, pts, detected


def detect_faces(img_rgb: np.ndarray, mode: str = "small") -> list[Detection]:
    return _default(mode).detect_faces(img_rgb)


def face_landmarks(img_rgb: np.ndarray, detection, mode: str = "small"):
    return _default(mode).face_landmarks(img_rgb, detection)


_CACHE: dict[str, Reference] = {}


def _default(mode: str) -> Reference:
    if mode not in _CACHE:
        _CACHE[mode] = Reference(mode)
    return _CACHE[mode]


def main(argv=None) -> int:
    """`python -m harness.modelpack.reference IMAGE [--mode small]`: JSON with the faces found,
    their 468 mesh points and 68 points (image px), to compare the runner against."""

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("image")
    ap.add_argument("--mode", default="small")
    ap.add_argument("--models", help="model pack folder (default: models/ of this repo)")
    args = ap.parse_args(argv)
    bgr = cv2.imread(args.image, cv2.IMREAD_COLOR)
    if bgr is None:
        ap.error(f"{args.image}: cannot read image")
    img = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    ref = Reference(args.mode, load_pack(args.models) if args.models else None)
    faces = []
    for d in ref.detect_faces(img):
        roi = roi_from_detection(d)
        mesh, pts68, presence = ref.face_landmarks(img, roi)
        faces.append({"score": d.score, "box": d.box.tolist(), "keypoints": d.keypoints.tolist(),
                      "roi": dataclasses.asdict(roi), "presence": presence,
                      "landmarks68": pts68.tolist(), "mesh": mesh.tolist()})
    print(json.dumps({"image": args.image, "mode": args.mode, "width": img.shape[1],
                      "height": img.shape[0], "faces": faces}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
