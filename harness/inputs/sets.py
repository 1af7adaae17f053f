"""The images the suites feed the runner, pushed to each device once per session.

Input sets (each lands in `inputs/<set>/` on the device):
  source        the face to swap in: grace_hopper.jpg
  frames        the target frames: astronaut.png (the runner loops over them)
  camera        the same frames as NV21 camera buffers (harness.inputs.camera), for
                profiles with `[run] input = "camera"`
  video         the same frames as a Motion-JPEG AVI (harness.inputs.video), for
                `[run] input = "video"`
  lowlight      x0.2 brightness + noise     } variants of both portraits, made by
  dark_gamma    gamma 2.2                   } harness.inputs.portraits.derive_variants
  dark_extreme  x0.1 brightness then gamma 2.0 (mean luma < 1): without the Retinex pass
                the detector finds nothing here
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from harness.inputs import build_once, camera, derived_key, portraits, video

SOURCE_NAMES = ("grace_hopper.jpg", "source.jpg", "source.png")
TARGET_NAMES = ("astronaut.png", "target.png", "target.jpg")
#: low-light input sets: name -> test_images variant suffix (None: made here by `darken`)
LOW_LIGHT_SETS: dict[str, str | None] = {
    "lowlight": "lowlight",
    "dark_gamma": "dark_gamma",
    "dark_extreme": None,
}
#: (brightness scale, gamma) for `darken`: the sets without a portraits variant
_DARKEN = {"lowlight": (0.2, 1.0), "dark_gamma": (1.0, 2.2), "dark_extreme": (0.1, 2.0)}


def _pick(folder: Path, names: tuple[str, ...], exclude: set[Path]) -> Path:
    for n in names:
        if (folder / n).is_file():
            return folder / n
    imgs = sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in (".jpg", ".jpeg", ".png") and p not in exclude)
    if not imgs:
        raise FileNotFoundError(f"no test images in {folder}")
    return imgs[0]


def darken(image, scale: float, gamma: float):
    """Darken an 8-bit image: brightness scale, then gamma on [0, 1] (> 1 darkens)."""
    x = image.astype(np.float32) / 255.0
    y = np.clip(scale * x, 0.0, 1.0) ** gamma
    return np.clip(y * 255.0 + 0.5, 0, 255).astype(np.uint8)


def lab_inputs(models_dir: Path, cache: Path,
               progress: Callable[[str], None] = print) -> dict[str, dict[str, Path]]:
    images_dir = Path(models_dir) / "test_images"
    if not images_dir.is_dir():
        raise FileNotFoundError(f"model pack test images not found: {images_dir}")
    source = _pick(images_dir, SOURCE_NAMES, set())
    target = _pick(images_dir, TARGET_NAMES, {source})
    sets: dict[str, dict[str, Path]] = {"source": {source.name: source},
                                        "frames": {target.name: target}}
    bases = [target, source]
    # derived from both portraits and their variants (portraits.py) by this module
    key = derived_key(__file__, {**{p.name: p for p in bases},
                                 "portraits.py": Path(portraits.__file__)})
    out = Path(cache) / f"low-light-{key}"

    def build(folder: Path) -> None:
        progress(f"[swaplab] generating low-light input images in {out}")
        variants = portraits.derive_variants(folder / "variants")
        for set_name, suffix in LOW_LIGHT_SETS.items():
            (folder / set_name).mkdir()
            for base in bases:
                dest = folder / set_name / f"{base.stem}_{set_name}.png"
                v = variants.get(f"{base.stem}_{suffix}") if suffix else None
                if v is not None:
                    img = cv2.imread(str(v.path), cv2.IMREAD_COLOR)
                else:
                    img = cv2.imread(str(base), cv2.IMREAD_COLOR)
                    if img is None:
                        raise FileNotFoundError(f"cannot read test image {base}")
                    img = darken(img, *_DARKEN[set_name])
                if not cv2.imwrite(str(dest), img):
                    raise OSError(f"cannot write {dest}")

    build_once(out, build)
    for set_name in LOW_LIGHT_SETS:
        sets[set_name] = {p.name: p for p in sorted((out / set_name).glob("*.png"))}
    sets["camera"] = camera.camera_frames(sets["frames"], cache)
    sets["video"] = video.video_clip(sets["frames"], cache)
    return sets


#: the lab's two portraits swapped both ways (quality suite, A/B quality)
DIRECTIONS = ("forward", "reverse")


def quality_pair(inputs: dict[str, dict[str, Path]], remote: dict[str, str], direction: str
                 ) -> tuple[tuple[str, Path, str], tuple[str, Path, str]]:
    """((name, local path, device path) of the source, the same of the target): the lab's
    source face onto its target frame ("forward"), or the target's face onto the source
    portrait ("reverse"). `remote` is the prepared runner's input folders on the device."""
    if not inputs["source"] or not inputs["frames"]:
        raise FileNotFoundError("lab inputs: no source or no target image")
    src_name = min(inputs["source"])
    tgt_name = min(inputs["frames"])
    src = (src_name, Path(inputs["source"][src_name]), remote["source"])
    tgt = (tgt_name, Path(inputs["frames"][tgt_name]), remote["frames"])
    if direction == "reverse":
        return (tgt[0], tgt[1], f"{remote['frames']}/{tgt_name}"), src
    return src, tgt
