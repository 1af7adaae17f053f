"""Test images: base files present with attribution, variants deterministic."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from harness.inputs import portraits as ti

EXPECTED = {"astronaut", "astronaut_rot+15", "astronaut_rot-15", "astronaut_rot+30",
            "astronaut_mirror", "astronaut_scale50", "astronaut_small_face",
            "astronaut_dark_gamma", "astronaut_bright", "astronaut_lowcontrast",
            "astronaut_lowlight", "astronaut_noise", "grace_hopper", "grace_hopper_lowlight",
            "duo", "duo_mirror"}


def test_base_images_and_attribution():
    a = ti.base_image("astronaut")
    g = ti.base_image("grace_hopper")
    assert a.shape == (512, 512, 3) and g.shape == (600, 512, 3)
    text = (ti.IMAGES_DIR / "ATTRIBUTION.md").read_text()
    for f in ti.BASE_FILES.values():
        assert f in text


def _digests(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_variants_deterministic_and_documented(tmp_path):
    v1 = ti.derive_variants(tmp_path / "a")
    ti.derive_variants(tmp_path / "b")
    assert EXPECTED <= set(v1)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    for name, v in v1.items():
        assert v.path.is_file() and v.faces and v.description
        if v.base != "composite" and v.kind != "original":
            assert "B_" + name[len(v.base) + 1:] in ti.__doc__, name
        else:
            assert name in ti.__doc__, name
        img = v.load()
        h, w = img.shape[:2]
        for f in v.faces:
            assert 0 <= f[0] < f[2] <= w and 0 <= f[1] < f[3] <= h, (name, f)


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    return ti.derive_variants(tmp_path_factory.mktemp("v"))


def test_low_light_is_dark(variants):
    v = variants
    for n in ("astronaut_lowlight", "grace_hopper_lowlight"):
        luma = v[n].load().astype(np.float64) @ [0.299, 0.587, 0.114]
        assert luma.mean() < 40
    assert v["astronaut_mirror"].load()[:, ::-1].tolist() == v["astronaut"].load().tolist()
