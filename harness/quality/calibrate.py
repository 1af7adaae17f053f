"""Calibration of the quality thresholds: the good Python reference blend and its broken
variants (harness.quality.synthetic) over the test image variants, scored, tabulated.

    python -m harness.quality.calibrate [--json out.json] [--quick]

For each ordered pair (source = one portrait's original, target = a variant of the
other), the good blend and every defect are scored, lossless and after a JPEG round trip
at quality 90 (the runner saves JPEG frames at 90). The table shows, per score, the worst good
value and the mildest value of the defect that score exists for; a threshold belongs in
the gap. docs/quality.md ("Thresholds") records the run the defaults came from.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import cv2
import numpy as np

from harness.inputs import portraits as test_images
from harness.quality import synthetic
from harness.quality.landmarks import reference_landmarks
from harness.quality.scores import score_blend
from harness.quality.thresholds import DEFAULT_THRESHOLDS

#: target variants used (harness.inputs.portraits names without the base prefix); the tiny
#: face (IOD ~15 px), the two-face composites and the 0.2x low-light frame are left out:
#: scores are defined for one face of useful size in a lit frame.
TARGET_VARIANTS = ("", "_rot+15", "_rot-15", "_mirror", "_scale50", "_dark_gamma", "_bright",
                   "_lowcontrast", "_noise")
QUICK_VARIANTS = ("", "_rot+15", "_bright")
PERSONS = ("astronaut", "grace_hopper")
#: the runner writes its output frames as JPEG at this quality (runner/src/frames.cpp)
RUNNER_JPEG_QUALITY = 90

#: which score must flag which defect
INTENDED = {
    "no_colour_correction": ("colour",),
    "hard_mask": ("seam",),
    "shifted_5px": ("pose",),
    "wrong_scale": ("pose",),
    "background_touched": ("background_ssim", "background_psnr"),
    "no_swap": ("identity",),
}


def jpeg(img: np.ndarray, quality: int = RUNNER_JPEG_QUALITY) -> np.ndarray:
    ok, enc = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR),
                           [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encode failed")
    return cv2.cvtColor(cv2.imdecode(enc, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def cases(variants=TARGET_VARIANTS, mode: str = "small"):
    """Yield (case name, SwapInputs) for every source/target pair with faces found."""

    imgs = {name: img for name, _, _, img, _ in test_images.iter_variants()}
    for tgt_person in PERSONS:
        src_person = next(p for p in PERSONS if p != tgt_person)
        src = imgs[src_person]
        src_l = reference_landmarks(src, mode)
        for v in variants:
            tgt = imgs[tgt_person + v]
            tgt_l = reference_landmarks(tgt, mode)
            if src_l is None or tgt_l is None:
                print(f"skip {src_person}->{tgt_person}{v}: no face", file=sys.stderr)
                continue
            yield f"{src_person}->{tgt_person}{v}", synthetic.SwapInputs(src, tgt, src_l, tgt_l)


def run(variants=TARGET_VARIANTS, mode: str = "small",
        jpeg_quality: int | None = RUNNER_JPEG_QUALITY):
    rows = []
    for case, inp in cases(variants, mode):
        for defect in ("good",) + synthetic.DEFECTS:
            blend = (synthetic.good_blend(inp) if defect == "good"
                     else synthetic.broken_blend(inp, defect))
            for codec in ("png",) + (("jpeg",) if jpeg_quality else ()):
                out = blend.output if codec == "png" else jpeg(blend.output, jpeg_quality)
                out_l = reference_landmarks(out, mode, roi_image=inp.target)
                s = score_blend(inp.source, inp.target, out, inp.target_landmarks,
                                source_landmarks=inp.source_landmarks, output_landmarks=out_l)
                rows.append({"case": case, "defect": defect, "codec": codec,
                             "values": {x.name: x.value for x in s.all()},
                             "failed": sorted(s.failed_names())})
    return rows


def table(rows) -> str:
    names = ["colour", "seam", "pose", "background_ssim", "background_psnr", "identity"]
    t = DEFAULT_THRESHOLDS
    thr = {"colour": t.colour_de_max, "seam": t.seam_ratio_max, "pose": t.pose_nme_max,
           "background_ssim": t.background_ssim_min, "background_psnr": t.background_psnr_min_db,
           "identity": t.identity_margin_min}
    lower = {"colour", "seam", "pose"}
    good = [r for r in rows if r["defect"] == "good"]
    lines = [(f"{'score':17s} {'threshold':>9s} {'good worst':>10s} {'good median':>11s} "
              f"{'defect':>22s} {'defect mildest':>14s}")]
    for n in names:
        gv = [r["values"][n] for r in good if r["values"][n] is not None]
        worst = max(gv) if n in lower else min(gv)
        for d, scores in INTENDED.items():
            if n not in scores:
                continue
            dv = [r["values"][n] for r in rows if r["defect"] == d and r["values"][n] is not None]
            mild = min(dv) if n in lower else max(dv)
            lines.append(f"{n:17s} {thr[n]:9.3f} {worst:10.3f} {float(np.median(gv)):11.3f} "
                         f"{d:>22s} {mild:14.3f}")
    bad_good = [f"{r['case']} {r['codec']}: {r['failed']}" for r in good if r["failed"]]
    missed = [f"{r['case']} {r['codec']} {r['defect']}" for r in rows
              if r["defect"] in INTENDED
              and not any(x in r["failed"] for x in INTENDED[r["defect"]])]
    lines.append(f"good blends failing: {len(bad_good)} of {len(good)}")
    lines += ["  " + b for b in bad_good]
    lines.append(f"defects missed by their score: {len(missed)}")
    lines += ["  " + m for m in missed]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", help="write every row here")
    ap.add_argument("--quick", action="store_true", help="3 target variants per person")
    ap.add_argument("--mode", default="small")
    args = ap.parse_args(argv)
    t0 = time.time()
    rows = run(QUICK_VARIANTS if args.quick else TARGET_VARIANTS, args.mode)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    print(table(rows))
    print(f"({len(rows)} scored frames in {time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
