"""Golden output frames: perceptual comparison, diff heat map, side-by-side panel.

A golden is an output frame of the runner that a person looked at and accepted, stored
in suites/golden/ (see the README there). A later output of the same inputs is a visual
regression when it drifts from its golden beyond a perceptual threshold:

  ssim              SSIM of luminance (skimage `structural_similarity` on Rec. 601 Y,
                    Gaussian-weighted) over the face box (target landmarks' box
                    grown by 25 %)                                    (>= golden_ssim_min)
  de_p95            95th percentile of the per-pixel CIEDE2000 map (skimage
                    `deltaE_ciede2000`, both frames blurred by sigma 2 px) over the
                    face box                                          (<= golden_de_p95_max)
  changed_fraction  share of the whole frame with that dE > 5         (<= golden_changed_max)

SSIM catches structure (a moved or rescaled face, a seam), the dE percentile catches
colour (a colour patch over the face), the changed fraction catches anything touched
outside the face. JPEG re-encoding and float differences between builds stay far below
all three (docs/quality.md, "Golden frames").

Everything here is a pure function on RGB uint8 arrays except `load_rgb`/`save_rgb`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import structural_similarity

from harness import REPO_ROOT
from harness.quality.thresholds import DEFAULT_THRESHOLDS, QualityThresholds

#: where the suite's golden frames live (README there)
GOLDEN_DIR = REPO_ROOT / "suites" / "golden"

#: heat map scale: dE 0 -> dark blue, HEATMAP_MAX_DE and above -> red
HEATMAP_MAX_DE = 10.0
#: a pixel counts as changed when its dE (after GOLDEN_BLUR) is above this
CHANGED_DE = 5.0
#: Gaussian sigma (px) applied to both frames before the dE map of the comparison
GOLDEN_BLUR = 2.0


@dataclasses.dataclass
class GoldenComparison:
    ssim: float               # SSIM of luminance over the face box
    de_p95: float             # 95th percentile of CIEDE2000 over the face box
    changed_fraction: float   # whole frame: share of pixels with dE > CHANGED_DE
    de_mean: float            # whole frame
    region: list[int]         # face box [x0, y0, x1, y1] the first two were taken over
    ssim_min: float
    de_p95_max: float
    changed_max: float

    @property
    def passed(self) -> bool:
        return (self.ssim >= self.ssim_min and self.de_p95 <= self.de_p95_max
                and self.changed_fraction <= self.changed_max)

    def message(self) -> str:
        verdict = "pass" if self.passed else "VISUAL REGRESSION"
        return (f"golden: face SSIM(Y) {self.ssim:.4f} (>= {self.ssim_min:g}), face dE p95 "
                f"{self.de_p95:.2f} (<= {self.de_p95_max:g}), {100 * self.changed_fraction:.2f}% "
                f"of the frame dE > {CHANGED_DE:g} (<= {100 * self.changed_max:g}%): {verdict}")

    def as_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["passed"] = self.passed
        return d


def _check(a: np.ndarray, b: np.ndarray) -> None:
    for name, x in (("output", a), ("golden", b)):
        if x.ndim != 3 or x.shape[2] < 3 or x.dtype != np.uint8:
            raise ValueError(f"{name}: expected an RGB uint8 image, got {x.dtype} {x.shape}")
    if a.shape[:2] != b.shape[:2]:
        raise ValueError(f"output {a.shape[:2]} and golden {b.shape[:2]} differ in size")


def de_map(output: np.ndarray, golden: np.ndarray, blur_sigma: float = 0.0) -> np.ndarray:
    """Per-pixel CIEDE2000 between two RGB uint8 images (float32, HxW); with blur_sigma
    both are smoothed first (compression noise is not a perceptual change)."""
    _check(output, golden)
    a, b = output[..., :3], golden[..., :3]
    if blur_sigma > 0:
        a = cv2.GaussianBlur(a, (0, 0), blur_sigma)
        b = cv2.GaussianBlur(b, (0, 0), blur_sigma)
    return deltaE_ciede2000(rgb2lab(a), rgb2lab(b)).astype(np.float32)


def luma(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32))


def face_box(landmarks, shape, grow: float = 0.25) -> list[int]:
    """Bounding box of 68 landmarks grown by `grow` of its size on each side, clipped."""
    pts = np.asarray(landmarks, np.float64)[:, :2]
    (x0, y0), (x1, y1) = pts.min(0), pts.max(0)
    gx, gy = (x1 - x0) * grow, (y1 - y0) * grow
    h, w = shape[:2]
    return [int(max(0, np.floor(x0 - gx))), int(max(0, np.floor(y0 - gy))),
            int(min(w, np.ceil(x1 + gx))), int(min(h, np.ceil(y1 + gy)))]


def compare_to_golden(output: np.ndarray, golden: np.ndarray, landmarks=None,
                      thresholds: QualityThresholds = DEFAULT_THRESHOLDS) -> GoldenComparison:
    """Perceptual comparison of an output frame with its golden. `landmarks` (the
    target's 68) focus SSIM and the dE percentile on the face box, where a swap changes
    things; without them the whole frame is the box."""
    _check(output, golden)
    h, w = output.shape[:2]
    box = face_box(landmarks, output.shape) if landmarks is not None else [0, 0, w, h]
    x0, y0, x1, y1 = box
    if x1 - x0 < 16 or y1 - y0 < 16:
        box = [0, 0, w, h]
        x0, y0, x1, y1 = box
    ssim = structural_similarity(luma(golden[y0:y1, x0:x1]), luma(output[y0:y1, x0:x1]),
                                 data_range=255.0, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False)
    de = de_map(output, golden, blur_sigma=GOLDEN_BLUR)
    return GoldenComparison(ssim=float(ssim), de_p95=float(np.percentile(de[y0:y1, x0:x1], 95)),
                            changed_fraction=float((de > CHANGED_DE).mean()),
                            de_mean=float(de.mean()), region=box,
                            ssim_min=thresholds.golden_ssim_min,
                            de_p95_max=thresholds.golden_de_p95_max,
                            changed_max=thresholds.golden_changed_max)


def diff_heatmap(output: np.ndarray, golden: np.ndarray, max_de: float = HEATMAP_MAX_DE,
                 legend: bool = True) -> np.ndarray:
    """RGB uint8 heat map of the per-pixel CIEDE2000 (turbo colour map, 0 .. max_de),
    over a faint grey copy of the golden so the face stays recognisable; with a legend
    strip at the bottom. The dE map is the one the comparison uses (both frames blurred
    by GOLDEN_BLUR), so JPEG noise does not paint the whole frame."""
    de = de_map(output, golden, blur_sigma=GOLDEN_BLUR)
    v = np.clip(de / max_de, 0.0, 1.0)
    heat = cv2.applyColorMap((v * 255).astype(np.uint8), cv2.COLORMAP_TURBO)
    heat = cv2.cvtColor(heat, cv2.COLOR_BGR2RGB).astype(np.float32)
    grey = luma(golden)[..., None].repeat(3, axis=2)
    img = np.clip(0.8 * heat + 0.2 * grey, 0, 255).astype(np.uint8)
    if not legend:
        return img
    h, w = img.shape[:2]
    bar_h = max(14, h // 24)
    ramp = np.linspace(0, 255, w).astype(np.uint8)[None, :].repeat(bar_h, axis=0)
    bar = cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_TURBO), cv2.COLOR_BGR2RGB)
    scale = bar_h / 30.0
    for text, x in (("dE 0", 3), (f"dE {max_de:g}+", w - int(60 * scale * 1.6) - 3)):
        cv2.putText(bar, text, (max(0, x), bar_h - int(8 * scale) - 1), cv2.FONT_HERSHEY_SIMPLEX,
                    0.6 * scale * 1.4, (255, 255, 255), 1, cv2.LINE_AA)
    return np.vstack([img, bar])


def side_by_side(panels: list[tuple[str, np.ndarray | None]], height: int = 320) -> np.ndarray:
    """One RGB image: each (label, image) scaled to `height`, labelled, left to right.
    None images show as an empty grey tile saying "missing"."""
    tiles = []
    for label, img in panels:
        if img is None:
            tile = np.full((height, int(height * 0.8), 3), 96, np.uint8)
            cv2.putText(tile, "missing", (10, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                        (230, 230, 230), 1, cv2.LINE_AA)
        else:
            h, w = img.shape[:2]
            size = (max(1, round(w * height / h)), height)
            tile = cv2.resize(np.ascontiguousarray(img[..., :3]), size,
                              interpolation=cv2.INTER_AREA)
        cap = np.full((24, tile.shape[1], 3), 255, np.uint8)
        cv2.putText(cap, label, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (20, 20, 20), 1,
                    cv2.LINE_AA)
        tile = np.vstack([cap, tile])
        tiles.append(np.pad(tile, ((0, 0), (0, 4), (0, 0)), constant_values=255))
    h = max(t.shape[0] for t in tiles)
    tiles = [np.pad(t, ((0, h - t.shape[0]), (0, 0), (0, 0)), constant_values=255) for t in tiles]
    return np.hstack(tiles)


def golden_path(mode: str, source_name: str, target_name: str,
                root: Path | None = None) -> Path:
    """suites/golden/<mode>/<source stem>__<target stem>.jpg"""
    def stem(n: str) -> str:
        return Path(n).stem.replace("__", "_")
    return (root or GOLDEN_DIR) / mode / f"{stem(source_name)}__{stem(target_name)}.jpg"


# --- image files (the only I/O here) -----------------------------------------------------

def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as RGB uint8; raises FileNotFoundError / ValueError naming it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no such image")
    img = cv2.imread(str(p), cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"{p}: not a readable image")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def save_rgb(path: str | Path, img: np.ndarray, jpeg_quality: int = 90) -> Path:
    """Write RGB uint8 as PNG or JPEG (by suffix); creates the folder."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if p.suffix.lower() in (".jpg", ".jpeg") \
        else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    if not cv2.imwrite(str(p), cv2.cvtColor(np.ascontiguousarray(img[..., :3]), cv2.COLOR_RGB2BGR),
                       params):
        raise OSError(f"{p}: cannot write image")
    return p
