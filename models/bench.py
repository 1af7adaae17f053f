#!/usr/bin/env python3
"""Benchmark and accuracy report for the SwapLab model pack (prints Markdown).

    python models/bench.py [--runs 50] [--threads 1] [--json out.json]

Cost: per-model ncnn inference time (Python binding, `--threads` threads, median and
p90 of `--runs` runs after 5 warm-up runs, input preparation excluded) and, per mode,
the model time per frame (detector amortised over detect_every_n_frames).
Accuracy (on harness/test_images variants):
  * ncnn vs LiteRT (ai-edge-litert) max |difference| per model on the real test images;
  * face detection rate per mode;
  * 68-point NME of each mode against the base mode (fp32 mesh), normalised by the
    outer-eye-corner distance (points 36-45), and tiny's tracking against small;
  * fp16 vs fp32 mesh difference in pixels.
The results are copied into models/README.md by hand; they are measured, never asserted.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

from harness.inputs.portraits import _rotate, base_image, derive_variants
from harness.modelpack import reference as R
from harness.modelpack.pack import load_pack


def time_model(pack, model_id, runs, threads):
    import ncnn

    cfg = pack.model(model_id)
    net = pack.load_net(model_id, num_threads=threads)
    h, w = cfg["input"]["height"], cfg["input"]["width"]
    x = np.random.default_rng(0).uniform(-1, 1, (3, h, w)).astype(np.float32)
    mat = ncnn.Mat(x)
    ts = []
    for i in range(runs + 5):
        t0 = time.perf_counter()
        ex = net.create_extractor()
        ex.input(cfg["input"]["blob"], mat)
        for blob in cfg["outputs"].values():
            ex.extract(blob)
        dt = (time.perf_counter() - t0) * 1000
        if i >= 5:
            ts.append(dt)
    ts.sort()
    return {"median_ms": statistics.median(ts), "p90_ms": ts[int(0.9 * (len(ts) - 1))],
            "min_ms": ts[0]}


def litert_agreement(pack):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent / "tests"))
    from test_models import _tflite_source

    res = {}
    for mid, cfg in pack.models.items():
        src = _tflite_source(pack, mid)
        if src is None:
            continue
        worst = {}
        for name in ("astronaut", "grace_hopper"):
            img, *_ = R.letterbox(base_image(name), cfg["input"]["width"])
            chw = R._to_mat_input(img, cfg["input"])
            it = Interpreter(model_path=str(src))
            it.allocate_tensors()
            it.set_tensor(it.get_input_details()[0]["index"], chw.transpose(1, 2, 0)[None].copy())
            it.invoke()
            refs = [it.get_tensor(o["index"]) for o in it.get_output_details()]
            out = R.run_net(pack.load_net(mid), cfg["input"], cfg["outputs"], chw)
            for ref, (role, got) in zip(refs, out.items()):
                e = float(np.abs(ref.reshape(got.shape) - got).max())
                worst[role] = max(worst.get(role, 0.0), e)
        res[mid] = worst
    return res


def mediapipe_mesh(img):
    """468 x,y from MediaPipe's own FaceMesh graph (mediapipe==0.10.21), or None."""
    try:
        import mediapipe as mp
    except ImportError:
        return None
    h, w = img.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, max_num_faces=1,
                                         refine_landmarks=False) as fm:
        r = fm.process(img)
    if not r.multi_face_landmarks:
        return None
    return np.array([[p.x * w, p.y * h] for p in r.multi_face_landmarks[0].landmark])


def nme(a, b):
    iod = np.linalg.norm(b[36] - b[45])
    return float(np.linalg.norm(a - b, axis=1).mean() / iod)


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=pathlib.Path)
    args = ap.parse_args(argv)

    import ncnn

    pack = load_pack()
    out = {"host": {"machine": platform.machine(), "processor": platform.processor(),
                    "python": platform.python_version(), "ncnn": ncnn.__version__},
           "threads": args.threads, "runs": args.runs, "models": {}, "modes": {}}
    print(f"# SwapLab model pack benchmark ({platform.machine()}, ncnn {ncnn.__version__}, "
          f"{args.threads} thread(s), {args.runs} runs)\n")
    print("| model | weights | input | .bin size | min ms | median ms | p90 ms |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for mid, cfg in pack.models.items():
        t = time_model(pack, mid, args.runs, args.threads)
        out["models"][mid] = t
        size = cfg["size_bytes"][cfg["bin"]] if "size_bytes" in cfg else 0
        print(f"| {mid} | {cfg['weights']} | {cfg['input']['width']}x{cfg['input']['height']} "
              f"| {size / 1e6:.2f} MB | {t['min_ms']:.2f} | {t['median_ms']:.2f} | {t['p90_ms']:.2f} |")

    print("\n| mode | detector | mesh | segmentation | detect every | model ms / frame |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, m in pack.modes.items():
        n = m["detect_every_n_frames"]
        cost = out["models"][m["detector"]]["median_ms"] / n + out["models"][m["landmarks"]]["median_ms"]
        if m.get("segmentation"):
            cost += out["models"][m["segmentation"]]["median_ms"]
        out["modes"][name] = {"model_ms_per_frame": cost}
        print(f"| {name} | {m['detector']} | {m['landmarks']} | {m.get('segmentation') or '-'} "
              f"| {n} | {cost:.2f} |")

    agree = litert_agreement(pack)
    if agree:
        out["litert_max_abs_diff"] = agree
        print("\nncnn vs LiteRT, max |difference| on the two test images (letterboxed input):\n")
        print("| model | output | max abs diff |")
        print("| --- | --- | --- |")
        for mid, roles in agree.items():
            for role, e in roles.items():
                print(f"| {mid} | {role} | {e:.2e} |")

    with tempfile.TemporaryDirectory() as tmp:
        variants = derive_variants(tmp)
        refs = {m: R.Reference(m, pack) for m in ("tiny", "small", "base")}
        mesh32 = R.Reference("small", pack, landmarks="face_landmark_fp32")
        rows, fp_diff, mp_rows = {}, [], {}
        base_pts = {}
        for name, v in variants.items():
            img = v.load()
            for mode in ("small", "base"):
                dets = refs[mode].detect_faces(img)
                r = rows.setdefault(mode, {"faces": 0, "found": 0, "pts": {}})
                r["faces"] += len(v.faces)
                r["found"] += sum(
                    any(d.center[0] > f[0] and d.center[0] < f[2] and d.center[1] > f[1]
                        and d.center[1] < f[3] for d in dets) for f in v.faces)
                if dets and v.kind != "multi_face":
                    r["pts"][name] = refs[mode].face_landmarks(img, dets[0])[1]
                    mp_pts = mediapipe_mesh(img) if mode == "small" else mp_rows.get(name)
                    if mode == "small":
                        mp_rows[name] = mp_pts
                    if mp_pts is not None:
                        r.setdefault("mp", []).append(
                            nme(r["pts"][name], mp_pts[pack.landmarks68]))
                    if mode == "small":
                        m16 = refs["small"].face_landmarks(img, dets[0])[0]
                        m32 = mesh32.face_landmarks(img, dets[0])[0]
                        fp_diff.append(float(np.abs(m16[:, :2] - m32[:, :2]).max()))
            base_pts = rows["base"]["pts"]
        print("\nDetection on the derived test images (a face counts as found when a box "
              "centre falls inside it):\n")
        print("| mode | faces | found | 68-pt NME vs base (fp32), mean | max "
              "| 68-pt NME vs MediaPipe graph, mean | max |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        for mode, r in rows.items():
            common = [n for n in r["pts"] if n in base_pts]
            errs = [nme(r["pts"][n], base_pts[n]) for n in common]
            out["modes"].setdefault(mode, {}).update(
                {"faces": r["faces"], "found": r["found"],
                 "nme_vs_base_mean": float(np.mean(errs)), "nme_vs_base_max": float(np.max(errs))})
            mpe = r.get("mp") or [float("nan")]
            out["modes"][mode].update({"nme_vs_mediapipe_mean": float(np.mean(mpe)),
                                       "nme_vs_mediapipe_max": float(np.max(mpe)),
                                       "nme_vs_mediapipe_images": len(r.get("mp", []))})
            print(f"| {mode} (detect every frame) | {r['faces']} | {r['found']} | "
                  f"{np.mean(errs):.4f} | {np.max(errs):.4f} | {np.mean(mpe):.4f} "
                  f"| {np.max(mpe):.4f} |")

        # tiny: a 30-frame sequence with head roll 0..20 deg and a slow drift
        base = base_image("grace_hopper")
        frames = []
        for i in range(30):
            f, _ = _rotate(base, 20.0 * i / 29)
            m = np.float32([[1, 0, 2.0 * i], [0, 1, 1.0 * i]])
            import cv2

            frames.append(cv2.warpAffine(f, m, (f.shape[1], f.shape[0])))
        t_pts = [t[2] for t in refs["tiny"].track(frames)]
        s_pts = [t[2] for t in refs["small"].track(frames)]
        tr = [nme(a, b) for a, b in zip(t_pts, s_pts) if a is not None and b is not None]
        out["modes"]["tiny"].update({"tracking_nme_vs_small_mean": float(np.mean(tr)),
                                     "tracking_nme_vs_small_max": float(np.max(tr)),
                                     "tracking_frames": len(tr)})
        out["fp16_vs_fp32_mesh_max_px"] = float(max(fp_diff))
        print(f"\ntiny (detect every {pack.mode('tiny')['detect_every_n_frames']}th frame, "
              f"mesh tracking between) vs small on a 30-frame roll+drift sequence: "
              f"NME mean {np.mean(tr):.4f}, max {np.max(tr):.4f} ({len(tr)} frames)")
        print(f"fp16 vs fp32 mesh weights: max point difference {max(fp_diff):.4f} px "
              f"over {len(fp_diff)} images")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
