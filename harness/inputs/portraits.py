"""Test images for SwapLab: two public-domain portraits and derived variants.

Base images (models/test_images/, see ATTRIBUTION.md there):
  astronaut    skimage's astronaut.png (Eileen Collins, NASA, public domain), 512x512
  grace_hopper matplotlib's grace_hopper.jpg (US Navy portrait, public domain), 512x600

`derive_variants(out_dir)` writes every variant below as PNG, deterministically (fixed
seeds, lossless output), and returns {name: Variant}. Each Variant knows the face boxes
it should contain (the base face box moved by the same geometric transform), so tests
can check that a detector covers the face.

Variants, per base image B:
  B                 the original
  B_rot+15, B_rot-15, B_rot+30
                    rotated about the centre by that many degrees (counter-clockwise
                    positive), same size, black corners                     (pose)
  B_mirror          mirrored left-right                                     (pose)
  B_scale50         resized to 50%                                          (scale)
  B_small_face      resized to 25% and placed at (64, 96) on a 512x512 grey (128) canvas
                    (a small, distant face)                                 (scale)
  B_dark_gamma      gamma 2.2 on [0,1] (darker midtones)                    (lighting)
  B_bright          +60 brightness, clipped                                 (lighting)
  B_lowcontrast     0.5 * (x - 128) + 128                                   (lighting)
  B_lowlight        x * 0.2 plus Gaussian noise sigma 4, seed 1 (mean luma ~25-35)
                                                                            (low light)
  B_noise           Gaussian noise sigma 20, seed 2                         (noise)
And composites:
  duo               astronaut and grace_hopper (resized to 512 high) side by side,
                    1024x512: two faces                                     (multi-face)
  duo_mirror        duo mirrored left-right                                 (multi-face)
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib

import cv2
import numpy as np

IMAGES_DIR = pathlib.Path(__file__).resolve().parents[2] / "models" / "test_images"
BASE_FILES = {"astronaut": "astronaut.png", "grace_hopper": "grace_hopper.jpg"}
# Face boxes [xmin, ymin, xmax, ymax] in the base images (forehead to chin, ear to ear),
# checked by eye against the images.
BASE_FACES = {"astronaut": [176.0, 78.0, 274.0, 180.0],
              "grace_hopper": [166.0, 140.0, 368.0, 345.0]}


@dataclasses.dataclass
class Variant:
    name: str
    base: str                      # base image name or "composite"
    kind: str                      # original | pose | scale | lighting | low_light | noise | multi_face
    description: str
    faces: list[list[float]]       # expected face boxes [xmin, ymin, xmax, ymax], image px
    path: pathlib.Path | None = None

    def load(self) -> np.ndarray:
        return load_rgb(self.path)


def load_rgb(path) -> np.ndarray:
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise FileNotFoundError(f"{path}: cannot read image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def base_image(name: str) -> np.ndarray:
    """RGB uint8 base image by name ("astronaut" or "grace_hopper")."""
    return load_rgb(IMAGES_DIR / BASE_FILES[name])


def _affine_box(box, m) -> list[float]:
    x0, y0, x1, y1 = box
    pts = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], np.float64)
    p = pts @ np.asarray(m, np.float64).T
    return [float(p[:, 0].min()), float(p[:, 1].min()), float(p[:, 0].max()), float(p[:, 1].max())]


def _rotate(img, deg):
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), deg, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0)), m


def _lut(img, fn):
    x = np.arange(256, dtype=np.float64)
    table = np.clip(np.round(fn(x)), 0, 255).astype(np.uint8)
    return cv2.LUT(img, table)


def _noise(img, sigma, seed):
    rng = np.random.default_rng(seed)
    n = rng.normal(0.0, sigma, img.shape)
    return np.clip(np.round(img.astype(np.float64) + n), 0, 255).astype(np.uint8)


def _variants_of(name: str, img: np.ndarray):
    h, w = img.shape[:2]
    face = BASE_FACES[name]
    ident = [[1, 0, 0], [0, 1, 0]]
    yield name, "original", "the original image", img, [_affine_box(face, ident)]
    for deg in (15, -15, 30):
        r, m = _rotate(img, deg)
        yield f"{name}_rot{deg:+d}", "pose", f"rotated {deg:+d} degrees about the centre", r, \
            [_affine_box(face, m)]
    yield f"{name}_mirror", "pose", "mirrored left-right", img[:, ::-1].copy(), \
        [_affine_box(face, [[-1, 0, w], [0, 1, 0]])]
    half = cv2.resize(img, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
    yield f"{name}_scale50", "scale", "resized to 50%", half, \
        [_affine_box(face, [[(w // 2) / w, 0, 0], [0, (h // 2) / h, 0]])]
    qw, qh = w // 4, h // 4
    q = cv2.resize(img, (qw, qh), interpolation=cv2.INTER_AREA)
    canvas = np.full((512, 512, 3), 128, np.uint8)
    canvas[96:96 + qh, 64:64 + qw] = q
    yield f"{name}_small_face", "scale", \
        "resized to 25%, placed at (64, 96) on a 512x512 grey canvas", canvas, \
        [_affine_box(face, [[qw / w, 0, 64], [0, qh / h, 96]])]
    yield f"{name}_dark_gamma", "lighting", "gamma 2.2 (darker)", \
        _lut(img, lambda x: 255.0 * (x / 255.0) ** 2.2), [list(face)]
    yield f"{name}_bright", "lighting", "+60 brightness, clipped", \
        _lut(img, lambda x: x + 60), [list(face)]
    yield f"{name}_lowcontrast", "lighting", "contrast halved around 128", \
        _lut(img, lambda x: 0.5 * (x - 128) + 128), [list(face)]
    dark = _lut(img, lambda x: x * 0.2)
    yield f"{name}_lowlight", "low_light", "x0.2 brightness plus noise sigma 4 (seed 1)", \
        _noise(dark, 4.0, 1), [list(face)]
    yield f"{name}_noise", "noise", "Gaussian noise sigma 20 (seed 2)", \
        _noise(img, 20.0, 2), [list(face)]


def _composites(imgs: dict[str, np.ndarray]):
    parts, boxes, x = [], [], 0
    for name in ("astronaut", "grace_hopper"):
        img = imgs[name]
        h, w = img.shape[:2]
        s = 512 / h
        nw = round(w * s)
        parts.append(cv2.resize(img, (nw, 512), interpolation=cv2.INTER_AREA))
        boxes.append(_affine_box(BASE_FACES[name], [[nw / w, 0, x], [0, 512 / h, 0]]))
        x += nw
    duo = np.concatenate(parts, 1)
    yield "duo", "multi_face", "astronaut | grace_hopper side by side (512 high)", duo, boxes
    W = duo.shape[1]
    yield "duo_mirror", "multi_face", "duo mirrored left-right", duo[:, ::-1].copy(), \
        [_affine_box(b, [[-1, 0, W], [0, 1, 0]]) for b in boxes]


def iter_variants():
    """Yield (name, kind, description, RGB image, expected face boxes), in a fixed order."""
    imgs = {n: base_image(n) for n in BASE_FILES}
    for n, img in imgs.items():
        yield from _variants_of(n, img)
    yield from _composites(imgs)


def derive_variants(out_dir) -> dict[str, Variant]:
    """Write every variant as <out_dir>/<name>.png; returns {name: Variant}."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    res = {}
    for name, kind, desc, img, faces in iter_variants():
        p = out_dir / f"{name}.png"
        if not cv2.imwrite(str(p), cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR)):
            raise OSError(f"{p}: cannot write image")
        base = next((b for b in BASE_FILES if name.startswith(b)), "composite")
        res[name] = Variant(name, base, kind, desc, faces, p)
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="write SwapLab's derived test images")
    ap.add_argument("out_dir")
    args = ap.parse_args(argv)
    for v in derive_variants(args.out_dir).values():
        print(f"{v.path}  {v.kind:10s} {v.description}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
