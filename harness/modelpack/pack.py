"""SwapLab model pack: load and verify models/manifest.json, open ncnn nets.

Every failure raises `ModelPackError` with one message that names the file at fault
(missing, unreadable, hash mismatch, or rejected by ncnn).

    pack = load_pack()                    # models/ of this repo, hashes verified
    net = pack.load_net("face_landmark_fp16", num_threads=1)
    pack.mode("small")["detector"]        # -> "face_detection_short_range"
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import pathlib
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[2]
MODELS_DIR = REPO / "models"
MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
KINDS = ("face_detector", "face_mesh", "person_segmentation")
ROLES = {"face_detector": ("regressors", "scores"),
         "face_mesh": ("landmarks", "face_flag"),
         "person_segmentation": ("mask",)}
MODE_NAMES = ("tiny", "small", "base")


class ModelPackError(Exception):
    """A model pack problem; the message names the file."""


def sha256_file(path: pathlib.Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclasses.dataclass
class ModelPack:
    root: pathlib.Path
    manifest: dict[str, Any]

    @property
    def models(self) -> dict[str, dict]:
        return self.manifest["models"]

    @property
    def modes(self) -> dict[str, dict]:
        return self.manifest["modes"]

    @property
    def landmarks68(self) -> list[int]:
        return self.manifest["landmarks68_from_mesh"]

    def model(self, model_id: str) -> dict:
        return self._lookup(self.models, "model", model_id)

    def mode(self, name: str) -> dict:
        return self._lookup(self.modes, "mode", name)

    def _lookup(self, table: dict, what: str, key: str) -> dict:
        try:
            return table[key]
        except KeyError:
            raise ModelPackError(f"{self.root / MANIFEST}: no {what} {key!r} "
                                 f"(have {', '.join(table)})") from None

    def files(self) -> dict[str, str]:
        """{file name: sha256} of every model file (for run records / device sync)."""
        out = {}
        for m in self.models.values():
            out.update(m["sha256"])
        return out

    def paths(self) -> list[pathlib.Path]:
        return [self.root / MANIFEST] + [self.root / f for f in self.files()]

    def verify(self, model_ids=None) -> None:
        """Check that every file exists and has the manifest's sha256."""
        for mid in model_ids or self.models:
            for fname, want in self.model(mid)["sha256"].items():
                verify_file(self.root / fname, want)

    def load_net(self, model_id: str, num_threads: int = 1, verify: bool = True, opt=None):
        """An `ncnn.Net` with param + bin loaded (return codes checked)."""
        import ncnn  # lazy: only loading a net needs ncnn's native library

        m = self.model(model_id)
        param, binf = self.root / m["param"], self.root / m["bin"]
        if verify:
            for f in (param, binf):
                verify_file(f, m["sha256"][f.name])
        net = ncnn.Net()
        net.opt.num_threads = num_threads
        if opt:
            for k, v in opt.items():
                setattr(net.opt, k, v)
        for f, fn in ((param, net.load_param), (binf, net.load_model)):
            if not f.is_file():
                raise ModelPackError(f"{f}: model file missing")
            rc = fn(str(f))
            if rc != 0:
                raise ModelPackError(f"{f}: ncnn could not load it ({fn.__name__} returned {rc})")
        return net


def verify_file(path: pathlib.Path, sha256: str) -> None:
    if not path.exists():
        raise ModelPackError(f"{path}: model file missing")
    if not path.is_file():
        raise ModelPackError(f"{path}: not a regular file")
    try:
        got = sha256_file(path)
    except OSError as e:
        raise ModelPackError(f"{path}: unreadable ({e.strerror})") from None
    if got != sha256:
        raise ModelPackError(
            f"{path}: sha256 mismatch (corrupt or modified model file): "
            f"got {got}, manifest says {sha256}")


def _validate(manifest: Any, where: pathlib.Path) -> None:
    def bad(msg):
        raise ModelPackError(f"{where}: {msg}")

    if not isinstance(manifest, dict):
        bad("top level must be a JSON object")
    if manifest.get("schema_version") != SCHEMA_VERSION:
        bad(f"schema_version must be {SCHEMA_VERSION}, got {manifest.get('schema_version')!r}")
    models = manifest.get("models")
    if not isinstance(models, dict) or not models:
        bad("'models' must be a non-empty object")
    for mid, m in models.items():
        for key in ("kind", "param", "bin", "sha256", "weights", "input", "outputs",
                    "provenance", "license"):
            if key not in m:
                bad(f"model {mid!r}: missing {key!r}")
        if m["kind"] not in KINDS:
            bad(f"model {mid!r}: unknown kind {m['kind']!r}")
        if set(m["sha256"]) != {m["param"], m["bin"]}:
            bad(f"model {mid!r}: sha256 must list exactly {m['param']} and {m['bin']}")
        for role in ROLES[m["kind"]]:
            if role not in m["outputs"]:
                bad(f"model {mid!r}: outputs lack role {role!r}")
        if m["kind"] == "face_detector" and "detector" not in m:
            bad(f"model {mid!r}: face_detector needs a 'detector' section")
    modes = manifest.get("modes")
    if not isinstance(modes, dict):
        bad("'modes' must be an object")
    for name in MODE_NAMES:
        if name not in modes:
            bad(f"mode {name!r} missing")
    for name, mode in modes.items():
        for slot in ("detector", "landmarks", "segmentation"):
            ref = mode.get(slot)
            if ref is None and slot == "segmentation":
                continue
            if ref not in models:
                bad(f"mode {name!r}: {slot} refers to unknown model {ref!r}")
        if int(mode.get("detect_every_n_frames", 0)) < 1:
            bad(f"mode {name!r}: detect_every_n_frames must be >= 1")
    lm = manifest.get("landmarks68_from_mesh")
    if not (isinstance(lm, list) and len(lm) == 68 and all(0 <= i < 468 for i in lm)):
        bad("landmarks68_from_mesh must list 68 indices in 0..467")


def load_pack(root: str | pathlib.Path | None = None, verify: bool = True) -> ModelPack:
    """Read and validate `<root>/manifest.json`; with verify, check every file's sha256."""
    root = pathlib.Path(root) if root is not None else MODELS_DIR
    mpath = root / MANIFEST
    if not mpath.is_file():
        raise ModelPackError(f"{mpath}: manifest missing")
    try:
        manifest = json.loads(mpath.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ModelPackError(f"{mpath}: not valid JSON ({e})") from None
    try:
        _validate(manifest, mpath)
    except (TypeError, KeyError, AttributeError, ValueError, IndexError) as e:
        # a value of the wrong shape deep inside (a model that is a list, a mode that is a
        # string...): still an error that names the file
        raise ModelPackError(f"{mpath}: invalid manifest ({type(e).__name__}: {e})") from None
    pack = ModelPack(root, manifest)
    if verify:
        pack.verify()
    return pack
