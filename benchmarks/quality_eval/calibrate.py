"""Per-score tables for docs/quality.md: the face scores on the runner's swaps of the
evaluation set and on the defects planted in them.

    python benchmarks/quality_eval/calibrate.py [--runner PATH] [--cut-glasses]

Scores the recorded runner swaps of build.PAIRS (or, with --runner, fresh ones of that
build: small mode, --enhance off, one frame) and each planted defect, and prints one markdown table per score:
good median / worst, the defect's mildest value, the threshold, and the misses.
`--cut-glasses` prints the cut glasses score's tables instead (its sources wear glasses, the
set's pairs mostly do not: cut_glasses.py beside this file, which runs the runner).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import build

from harness.quality import (
    DEFAULT_THRESHOLDS,
    load_rgb,
    planted,
    reference_landmarks,
)
from harness.quality import face_scores as F

#: score -> (threshold key, planted defects it must flag)
SCORES = {
    "face_colour": ("face_colour_de_max", ["colour_shift"]),
    "brows": ("doubled_brows_max", ["doubled_brows"]),
    "target_structure": ("target_structure_max", ["half_erased_glasses", "no_swap"]),
    "leak": ("leak_ratio_max", ["leak_strip"]),
    "pose_points": ("pose_points_nme_max", ["shifted_5px", "shifted_3px", "scaled_0.9",
                                            "rotated_4deg"]),
}


def swap_case(runner: Path | None, source: str, target: str, tmp: Path) -> dict:
    """One pair: the recorded swap (runner None) or a fresh one by `runner`."""
    src, tgt = load_rgb(build.face_path(source)), load_rgb(build.face_path(target))
    if runner is None:
        out = load_rgb(build.swap_path(source, target))
    else:
        out = load_rgb(build.run_runner(runner, build.face_path(source),
                                        build.face_path(target), tmp / f"{source}__{target}")[0])
    sl, tl = reference_landmarks(src), reference_landmarks(tgt)
    return {"source": src, "target": tgt, "output": out, "sl": sl, "tl": tl,
            "expected": F.expected_landmarks(sl, tl),
            "warped": F.warp_source(src, sl, tl, tgt.shape)}


def variants(c: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (target, output): the good swap and each planted defect."""
    tgt, out, tl = c["target"], c["output"], c["tl"]
    g_tgt, g_out = planted.half_erased_glasses(out, tgt, tl)
    return {"good": (tgt, out),
            "colour_shift": (tgt, planted.colour_shift(out, tl)),
            "doubled_brows": (tgt, planted.doubled_brows(out, tgt, tl)),
            "half_erased_glasses": (g_tgt, g_out),
            "leak_strip": (tgt, planted.leak_strip(out, c["source"], tl)),
            "shifted_5px": (tgt, planted.shifted(out, tl, 5.0)),
            "shifted_3px": (tgt, planted.shifted(out, tl, 0.0, 3.0)),
            "scaled_0.9": (tgt, planted.scaled(out, tl, 0.9)),
            "rotated_4deg": (tgt, planted.rotated(out, tl, 4.0)),
            "no_swap": (tgt, tgt.copy())}


def face_scores(c: dict, tgt: np.ndarray, out: np.ndarray) -> dict[str, float]:
    tl, ex = c["tl"], c["expected"]
    return {"face_colour": F.face_interior_colour(out, tgt, tl).value,
            "brows": F.doubled_brows(out, tgt, c["warped"], tl, ex).value,
            "target_structure": F.target_structure(out, tgt, c["warped"], tl, ex).value,
            "leak": F.background_leak(out, tgt, tl, ex).value,
            "pose_points": F.transferable_pose(out, c["warped"], ex).value}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runner", type=Path)
    ap.add_argument("--cut-glasses", action="store_true")
    a = ap.parse_args(argv)
    if a.cut_glasses:
        import cut_glasses  # the benchmark beside this file; only for this table

        return cut_glasses.main(["--runner", str(a.runner)] if a.runner else [])
    runner = a.runner        # None: the recorded swaps
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for s, t in build.PAIRS:
            c = swap_case(runner, s, t, Path(tmp))
            for name, (tgt, out) in variants(c).items():
                label = ", ".join(build.LABELS[s, t]) or "good"
                rows.append((f"{s}->{t}", label, name, face_scores(c, tgt, out)))
    print("| pair | runner swap | " + " | ".join(SCORES) + " |")
    print("|---|---|" + "---|" * len(SCORES))
    for pair, label, name, sc in rows:
        if name == "good":
            print(f"| {pair} | {label} | " + " | ".join(f"{sc[k]:.3f}" for k in SCORES) + " |")
    print()
    for score, (key, defects) in SCORES.items():
        thr = getattr(DEFAULT_THRESHOLDS, key)
        good = [sc[score] for _, label, n, sc in rows if n == "good" and label == "good"]
        print(f"### {score} (threshold {thr:g})")
        print(f"good runner swaps: median {np.median(good):.3f}, worst {max(good):.3f}, "
              f"fail {sum(v > thr for v in good)}/{len(good)}")
        for d in defects:
            vals = [sc[score] for _, label, n, sc in rows if n == d and label == "good"]
            print(f"{d}: mildest {min(vals):.3f}, median {np.median(vals):.3f}, "
                  f"missed {sum(v <= thr for v in vals)}/{len(vals)}")
        bad = [(p, label, sc[score]) for p, label, n, sc in rows if n == "good" and label != "good"]
        for p, label, v in bad:
            print(f"runner swap judged bad ({label}) {p}: {v:.3f} "
                  f"{'FAIL' if v > thr else 'pass'}")
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
