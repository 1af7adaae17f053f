"""Landmark smoothing on the evaluation set: tiny mode on a static image, with the runner's
One Euro filter and without (`--smooth off`), scored by the temporal scores.

    python benchmarks/quality_eval/smoothing.py RUNNER [--frames 10]

Per pair: `quality_jitter_px` (largest distance of the pose points' offset from its median,
px) and `quality_flicker_ratio` (worst pair of frames), output landmarks from the reference
mesh on the target's crop. Prints Markdown (docs/quality.md). Not a test.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import build as evalset

from harness.quality import geometry as geo
from harness.quality import load_rgb, reference_landmarks
from harness.quality.temporal import flicker, landmark_jitter

PAIRS = [p for p, seen in evalset.LABELS.items() if not seen]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runner", type=Path)
    ap.add_argument("--frames", type=int, default=10)
    args = ap.parse_args(argv)
    print("| pair | jitter px, off | jitter px, one-euro | flicker, off | flicker, one-euro |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for s, t in PAIRS:
            tgt = load_rgb(evalset.face_path(t))
            tl = reference_landmarks(tgt)
            face = geo.mask_from_landmarks(tl, tgt.shape)
            cells = {}
            for smooth in ("off", "one-euro"):
                out = Path(tmp) / f"{s}-{t}-{smooth}"
                frames = [load_rgb(p) for p in evalset.run_runner(
                    args.runner, evalset.face_path(s), evalset.face_path(t), out, mode="tiny",
                    frames=args.frames, extra=("--smooth", smooth))]
                ol = [reference_landmarks(f, roi_image=tgt) for f in frames]
                cells[smooth] = (landmark_jitter(ol, [tl] * len(frames)).value,
                                 flicker(frames, [tgt] * len(frames), face).value)
            print(f"| {s}->{t} | {cells['off'][0]:.2f} | {cells['one-euro'][0]:.2f} | "
                  f"{cells['off'][1]:.3f} | {cells['one-euro'][1]:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
