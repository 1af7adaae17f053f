"""Inputs the suites feed the runner: the input sets pushed to each device (`sets`) and the
test portraits with their derived variants (`portraits`)."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path


def derived_key(generator: str | Path, images: Mapping[str, Path]) -> str:
    """Content key of a set derived from `images` by the module file `generator` (its
    source and every image's name and bytes): a new converter or a new image, a new folder."""
    h = hashlib.sha256(Path(generator).read_bytes())
    for name in sorted(images):
        h.update(name.encode())
        h.update(Path(images[name]).read_bytes())
    return h.hexdigest()[:16]
