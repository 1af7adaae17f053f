"""Inputs the suites feed the runner: the input sets pushed to each device (`sets`) and the
test portraits with their derived variants (`portraits`)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path


def derived_key(generator: str | Path, images: Mapping[str, Path]) -> str:
    """Content key of a set derived from `images` by the module file `generator` (its
    source and every image's name and bytes): a new converter or a new image, a new folder."""
    h = hashlib.sha256(Path(generator).read_bytes())
    for name in sorted(images):
        h.update(name.encode())
        h.update(Path(images[name]).read_bytes())
    return h.hexdigest()[:16]


def build_once(out: Path, build: Callable[[Path], None]) -> Path:
    """Make the content-keyed folder `out`: `build` fills a private folder beside it, which
    is then renamed into place. Several makers at once (xdist workers, two labs sharing one
    cache) never see a half-made set; whoever renames second drops its copy. A crash leaves
    only a hidden `.<name>.*` folder, never a partial `out`."""
    out = Path(out)
    if out.is_dir():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        build(tmp)
        os.chmod(tmp, 0o755)  # mkdtemp makes 0700; the cache may be shared
        try:
            os.rename(tmp, out)
        except OSError:
            if not out.is_dir():  # not a lost race: a real error
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
