"""The cut glasses score (harness/quality/cut_glasses.py) on the runner's swaps of sources
that wear glasses (docs/quality.md, "Cut glasses").

    python benchmarks/quality_eval/cut_glasses.py [--runner PATH] [--modes small,base]
                                                  [--sheets DIR]

Sources: grace_hopper (the set's one real face with glasses) and every other face of the
set with glasses *drawn* on it (`planted.draw_glasses`: dark rings 0.24 x 0.17 IOD round
each eye, a bridge and short arms). Each source is swapped by the real runner onto every
other face without glasses (one frame, `--enhance off`), in each mode. Printed per swap: the
score, each lens's cut share, and the same output with the planted cut
(`planted.cut_source_glasses`, the hull narrowed to 0.55 across the face); `--sheets` writes
warped source | output | planted crops around the eyes as PNG, to look at and label
(LABELS below holds what was seen).
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

from harness.quality import DEFAULT_THRESHOLDS, load_rgb, planted, reference_landmarks, save_rgb
from harness.quality import face_scores as F
from harness.quality import geometry as geo
from harness.quality.cut_glasses import cut_source_glasses

REAL_GLASSES = "grace_hopper"
#: faces without glasses: targets, and sources once glasses are drawn on them
BARE = ["obama_portrait", "biden_blue_room", "obama_congress", "obama_blue_room", "astronaut"]
PLANTED_WIDTH = 0.55

#: (source, target, mode) -> what a person sees in the runner's output (runner of commit
#: 5f0cbee): "whole" (the source's lens rings below the eyes all there) or "cut" (the outer
#: side of a ring missing where the target's face ends). Sources "drawn:NAME" wear drawn glasses.
LABELS: dict[tuple[str, str, str], str] = {
    ('grace_hopper', 'obama_portrait', 'small'): 'whole',
    ('grace_hopper', 'biden_blue_room', 'small'): 'cut',
    ('grace_hopper', 'obama_congress', 'small'): 'cut',
    ('grace_hopper', 'obama_blue_room', 'small'): 'whole',
    ('grace_hopper', 'astronaut', 'small'): 'whole',
    ('drawn:obama_portrait', 'biden_blue_room', 'small'): 'whole',
    ('drawn:obama_portrait', 'obama_congress', 'small'): 'cut',
    ('drawn:obama_portrait', 'obama_blue_room', 'small'): 'whole',
    ('drawn:obama_portrait', 'astronaut', 'small'): 'whole',
    ('drawn:biden_blue_room', 'obama_portrait', 'small'): 'whole',
    ('drawn:biden_blue_room', 'obama_congress', 'small'): 'cut',
    ('drawn:biden_blue_room', 'obama_blue_room', 'small'): 'whole',
    ('drawn:biden_blue_room', 'astronaut', 'small'): 'whole',
    ('drawn:obama_congress', 'obama_portrait', 'small'): 'cut',
    ('drawn:obama_congress', 'biden_blue_room', 'small'): 'cut',
    ('drawn:obama_congress', 'obama_blue_room', 'small'): 'cut',
    ('drawn:obama_congress', 'astronaut', 'small'): 'cut',
    ('drawn:obama_blue_room', 'obama_portrait', 'small'): 'whole',
    ('drawn:obama_blue_room', 'biden_blue_room', 'small'): 'whole',
    ('drawn:obama_blue_room', 'obama_congress', 'small'): 'cut',
    ('drawn:obama_blue_room', 'astronaut', 'small'): 'whole',
    ('drawn:astronaut', 'obama_portrait', 'small'): 'whole',
    ('drawn:astronaut', 'biden_blue_room', 'small'): 'cut',
    ('drawn:astronaut', 'obama_congress', 'small'): 'cut',
    ('drawn:astronaut', 'obama_blue_room', 'small'): 'whole',
    ('grace_hopper', 'obama_portrait', 'base'): 'whole',
    ('grace_hopper', 'biden_blue_room', 'base'): 'cut',
    ('grace_hopper', 'obama_congress', 'base'): 'cut',
    ('grace_hopper', 'obama_blue_room', 'base'): 'whole',
    ('grace_hopper', 'astronaut', 'base'): 'whole',
    ('drawn:obama_portrait', 'biden_blue_room', 'base'): 'whole',
    ('drawn:obama_portrait', 'obama_congress', 'base'): 'cut',
    ('drawn:obama_portrait', 'obama_blue_room', 'base'): 'whole',
    ('drawn:obama_portrait', 'astronaut', 'base'): 'whole',
    ('drawn:biden_blue_room', 'obama_portrait', 'base'): 'whole',
    ('drawn:biden_blue_room', 'obama_congress', 'base'): 'cut',
    ('drawn:biden_blue_room', 'obama_blue_room', 'base'): 'whole',
    ('drawn:biden_blue_room', 'astronaut', 'base'): 'whole',
    ('drawn:obama_congress', 'obama_portrait', 'base'): 'whole',
    ('drawn:obama_congress', 'biden_blue_room', 'base'): 'cut',
    ('drawn:obama_congress', 'obama_blue_room', 'base'): 'cut',
    ('drawn:obama_congress', 'astronaut', 'base'): 'cut',
    ('drawn:obama_blue_room', 'obama_portrait', 'base'): 'whole',
    ('drawn:obama_blue_room', 'biden_blue_room', 'base'): 'whole',
    ('drawn:obama_blue_room', 'obama_congress', 'base'): 'cut',
    ('drawn:obama_blue_room', 'astronaut', 'base'): 'whole',
    ('drawn:astronaut', 'obama_portrait', 'base'): 'whole',
    ('drawn:astronaut', 'biden_blue_room', 'base'): 'whole',
    ('drawn:astronaut', 'obama_congress', 'base'): 'cut',
    ('drawn:astronaut', 'obama_blue_room', 'base'): 'whole',
}


def pairs() -> list[tuple[str, str]]:
    out = [(REAL_GLASSES, t) for t in BARE]
    out += [(f"drawn:{s}", t) for s in BARE for t in BARE if t != s]
    return out


def source_image(name: str, mode: str, into: Path) -> Path:
    """The source's file; a drawn-glasses source is written into `into` first."""
    if not name.startswith("drawn:"):
        return build.face_path(name)
    base = name.split(":", 1)[1]
    path = into / f"drawn_{base}_{mode}.png"
    if not path.exists():
        img = load_rgb(build.face_path(base))
        save_rgb(path, planted.draw_glasses(img, reference_landmarks(img, mode)))
    return path


def eyes_crop(img: np.ndarray, tl, width: int = 300) -> np.ndarray:
    import cv2  # only for the sheets

    iod = geo.inter_ocular(tl)
    c = np.asarray(tl)[36:48].mean(0)
    x0, x1 = max(0, int(c[0] - 0.9 * iod)), int(c[0] + 0.9 * iod)
    y0, y1 = max(0, int(c[1] - 0.4 * iod)), int(c[1] + 0.6 * iod)
    crop = np.ascontiguousarray(img[y0:y1, x0:x1])
    return cv2.resize(crop, (width, round(width * crop.shape[0] / crop.shape[1])),
                      interpolation=cv2.INTER_CUBIC)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runner", type=Path)
    ap.add_argument("--modes", default="small,base")
    ap.add_argument("--sheets", type=Path)
    a = ap.parse_args(argv)
    runner = a.runner
    if runner is None:
        from harness.runner.invoke import build_runner  # builds on first use

        runner = build_runner("x86_64", progress=lambda msg: None)
    thr = DEFAULT_THRESHOLDS.cut_glasses_max
    print(f"| source | target | mode | seen | value (lenses) | planted cut (width {PLANTED_WIDTH}) |")
    print("|---|---|---|---|---|---|")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for mode in a.modes.split(","):
            for s, t in pairs():
                src_path = source_image(s, mode, tmp)
                src, tgt = load_rgb(src_path), load_rgb(build.face_path(t))
                out = load_rgb(build.run_runner(runner, src_path, build.face_path(t),
                                                tmp / f"{s.replace(':', '_')}__{t}__{mode}",
                                                mode=mode)[0])
                sl, tl = reference_landmarks(src, mode), reference_landmarks(tgt, mode)
                warped = F.warp_source(src, sl, tl, tgt.shape)
                r = cut_source_glasses(out, src, sl, tl, warped)
                cut = planted.cut_source_glasses(out, tgt, tl, PLANTED_WIDTH)
                p = cut_source_glasses(cut, src, sl, tl, warped)
                seen = LABELS.get((s, t, mode), "?")

                def fmt(x):
                    if x["value"] is None:
                        return f"n/a ({x['reason']})"
                    lenses = ", ".join("-" if v is None else f"{v:.2f}" for v in x["lens_cut"])
                    return f"{x['value']:.3f} ({lenses}){' FAIL' if x['value'] > thr else ''}"

                print(f"| {s} | {t} | {mode} | {seen} | {fmt(r)} | {fmt(p)} |", flush=True)
                rows.append((s, mode, seen, r["value"], p["value"]))
                if a.sheets:
                    a.sheets.mkdir(parents=True, exist_ok=True)
                    sheet = np.hstack([eyes_crop(x, tl) for x in (warped, out, cut)])
                    save_rgb(a.sheets / f"{s.replace(':', '_')}__{t}__{mode}.png", sheet)
    print()
    print("| sources | mode | whole: median / worst (fail) | cut: mildest / median (missed) "
          "| planted on whole: mildest / median (missed) |")
    print("|---|---|---|---|---|")
    for kind in ("real", "drawn"):
        for mode in a.modes.split(","):
            sel = [x for x in rows if x[1] == mode and x[0].startswith("drawn") == (kind == "drawn")]
            whole = [x[3] for x in sel if x[2] == "whole" and x[3] is not None]
            cut = [x[3] for x in sel if x[2] == "cut" and x[3] is not None]
            plant = [x[4] for x in sel if x[2] == "whole" and x[4] is not None]

            def stats(v, worst, bad):
                if not v:
                    return "-"
                return (f"{np.median(v):.3f} / {worst(v):.3f} ({sum(bad(x) for x in v)}/{len(v)})"
                        if worst is max else
                        f"{min(v):.3f} / {np.median(v):.3f} ({sum(bad(x) for x in v)}/{len(v)})")

            print(f"| {kind} | {mode} | {stats(whole, max, lambda x: x > thr)} | "
                  f"{stats(cut, min, lambda x: x <= thr)} | {stats(plant, min, lambda x: x <= thr)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
