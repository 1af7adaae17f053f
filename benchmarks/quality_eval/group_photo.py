"""Faces found and swapped on the six-face group photo and the 18 px-IOD face, per mode and
`--small-faces` value (docs/quality.md, "Group photo of six").

    python benchmarks/quality_eval/group_photo.py RUNNER [--rounds 3] [--json OUT]

The frames come from build.py (`group_photo()`, `single_face()`): their pasted faces' boxes
are the truth, so a face no detector finds still counts as missed. Per configuration
(mode x `--small-faces`, `--faces all`, source grace_hopper, `--enhance off`, PNG output):
faces found (telemetry `faces`), faces swapped (harness.quality.faces on the pasted boxes:
`quality_missed_faces`), faces the reference detector (harness.modelpack.reference, the
mode's own detector in Python) finds, and the detect stage's median over the detection
frames of all rounds (min..max of the round medians). Rounds are interleaved: every round
runs each configuration once, in a shuffled order (seeded).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

import build

from harness.quality.faces import faces_swapped

MODES = ("tiny", "small", "base")
SMALL_FACES = ("full-range", "always", "tiles", "always-tiles", "off")
SOURCE = build.face_path("grace_hopper")


def run(runner: Path, target: Path, out: Path, mode: str, small_faces: str) -> list[dict]:
    out.mkdir(parents=True, exist_ok=True)
    r = subprocess.run([str(runner), "--models", str(build.REPO / "models"), "--source",
                        str(SOURCE), "--target", str(target), "--mode", mode, "--warmup", "2",
                        "--frames", "5", "--save-every", "1", "--out-format", "png",
                        "--out", str(out), "--enhance", "off", "--faces", "all",
                        "--small-faces", small_faces, "--threads", "1", "--telemetry", "-"],
                       capture_output=True, text=True, timeout=600, check=False,
                       env={"OMP_WAIT_POLICY": "PASSIVE", "PATH": "/usr/bin:/bin"})
    if r.returncode != 0:
        raise RuntimeError(f"{target.name} {mode} {small_faces}: exit {r.returncode}: "
                           f"{r.stderr[-500:]}")
    recs = [json.loads(line) for line in r.stdout.splitlines()]
    return [x for x in recs if x.get("type") == "frame" and not x["warmup"]]


def reference_count(img_bgr: np.ndarray, mode: str) -> int:
    from harness.modelpack.reference import Reference  # why: loads the models only here
    rgb = np.ascontiguousarray(img_bgr[..., ::-1])
    return len(Reference(mode).detect_faces(rgb))


def measure(runner: Path, rounds: int, seed: int = 18) -> list[dict]:
    frames = {"group": build.group_photo(), "iod18": build.single_face()}
    rows: dict[tuple, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {}
        for name, (img, _) in frames.items():
            paths[name] = Path(tmp) / f"{name}.png"
            cv2.imwrite(str(paths[name]), img)
        configs = [(f, m, s) for f in frames for m in MODES for s in SMALL_FACES]
        rng = random.Random(seed)
        for rnd in range(rounds):
            order = configs[:]
            rng.shuffle(order)
            for f, m, s in order:
                out = Path(tmp) / f"{f}_{m}_{s}_{rnd}"
                recs = run(runner, paths[f], out, m, s)
                row = rows.setdefault((f, m, s), {"frame": f, "mode": m, "small_faces": s,
                                                  "detect_round_ms": []})
                det = [r["stage_ns"]["detect"] / 1e6 for r in recs if r["detected"]]
                row["detect_round_ms"].append(statistics.median(det))
                row.setdefault("detect_ms", []).extend(det)
                if rnd == 0:
                    first = recs[0]
                    img, pasted = frames[f]
                    output = cv2.imread(str(out / f"out_{first['index']}.png"))
                    score = faces_swapped(img, output, [p.box for p in pasted], "all")
                    row.update(faces=len(pasted), found=first["faces"],
                               swapped_by_runner=first["faces_swapped"],
                               missed=int(score.value), detector=first["detector"],
                               reference_found=reference_count(img, m))
    result = []
    for key in sorted(rows, key=lambda k: (k[0], MODES.index(k[1]), SMALL_FACES.index(k[2]))):
        row = rows[key]
        r = row.pop("detect_round_ms")
        row["detect_ms_median"] = round(statistics.median(row.pop("detect_ms")), 2)
        row["detect_ms_round_range"] = [round(min(r), 2), round(max(r), 2)]
        result.append(row)
    return result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runner", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    rows = measure(a.runner, a.rounds)
    print("| frame | mode | --small-faces | found | swapped (of pasted) | reference detector finds "
          "| detect ms median [round min..max] |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        lo, hi = r["detect_ms_round_range"]
        print(f"| {r['frame']} | {r['mode']} | {r['small_faces']} | {r['found']} | "
              f"{r['faces'] - r['missed']}/{r['faces']} | {r['reference_found']} | "
              f"{r['detect_ms_median']:.1f} [{lo:.1f}..{hi:.1f}] |")
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
