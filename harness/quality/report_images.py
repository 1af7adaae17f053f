"""Images of one scored frame for the HTML report.

`write_quality_images(run_dir, name, ...)` writes, under `<run_dir>/quality/<name>/`:

    source.jpg  target.jpg  output.jpg  golden.jpg (if any)  diff.png (if golden)
    panel.jpg   source | target | output | golden | diff, side by side

and returns a dict the report (and the record's `artifacts` / measurement `extra`) can
use directly; paths are relative to `run_dir`:

    {"name": "...", "images": {"source": "quality/<name>/source.jpg", ..., "panel": ...},
     "scores": BlendScores.as_dict() or None, "golden": GoldenComparison.as_dict() or None,
     "passed": bool}
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from harness.quality.golden import GoldenComparison, diff_heatmap, save_rgb, side_by_side
from harness.quality.scores import BlendScores

_SAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_name(name: str) -> str:
    """A file-system-safe folder name (device serials and test ids are untrusted text)."""
    s = re.sub(r"\.{2,}", "_", _SAFE.sub("_", name)).strip("._")
    return s[:120] or "frame"


def write_quality_images(run_dir: str | Path, name: str, *, source: np.ndarray,
                         target: np.ndarray, output: np.ndarray,
                         golden: np.ndarray | None = None,
                         scores: BlendScores | None = None,
                         comparison: GoldenComparison | None = None,
                         panel_height: int = 320) -> dict:
    run_dir = Path(run_dir)
    folder_rel = Path("quality") / safe_name(name)
    folder = run_dir / folder_rel
    images: dict[str, str] = {}

    def put(key: str, img: np.ndarray, suffix: str) -> None:
        rel = folder_rel / f"{key}{suffix}"
        save_rgb(run_dir / rel, img)
        images[key] = rel.as_posix()

    put("source", source, ".jpg")
    put("target", target, ".jpg")
    put("output", output, ".jpg")
    diff = None
    if golden is not None:
        put("golden", golden, ".jpg")
        if golden.shape[:2] == output.shape[:2]:
            diff = diff_heatmap(output, golden)
            put("diff", diff, ".png")
    panel = side_by_side([("source", source), ("target", target), ("output", output),
                          ("golden", golden), ("diff vs golden (dE)", diff)],
                         height=panel_height)
    put("panel", panel, ".jpg")
    folder.mkdir(parents=True, exist_ok=True)
    passed = (scores.passed if scores is not None else True) and \
        (comparison.passed if comparison is not None else True)
    return {"name": name, "images": images,
            "scores": scores.as_dict() if scores is not None else None,
            "golden": comparison.as_dict() if comparison is not None else None,
            "passed": passed}


def write_ab_quality_images(run_dir: str | Path, name: str, *, target: np.ndarray,
                            baseline: np.ndarray, candidate: np.ndarray,
                            failing: dict[str, list[str]],
                            panel_height: int = 320) -> dict[str, str]:
    """The two builds' outputs of one input side by side (suites/test_ab.py): target.jpg,
    baseline.jpg, candidate.jpg and panel.jpg under `<run_dir>/quality/<name>/`, each
    output's tile captioned with the scores it fails (`failing[arm]`, score names).
    Returns role -> path relative to `run_dir`."""
    run_dir = Path(run_dir)
    folder_rel = Path("quality") / safe_name(name)
    images: dict[str, str] = {}
    tiles = [("target", target)]
    for role, img in (("target", target), ("baseline", baseline), ("candidate", candidate)):
        rel = folder_rel / f"{role}.jpg"
        save_rgb(run_dir / rel, img)
        images[role] = rel.as_posix()
        if role != "target":
            fails = failing.get(role) or []
            tiles.append((f"{role}: " + (f"fails {', '.join(fails)}" if fails else "passes"),
                          img))
    rel = folder_rel / "panel.jpg"
    save_rgb(run_dir / rel, side_by_side(tiles, height=panel_height))
    images["panel"] = rel.as_posix()
    return images
