"""Writing files that readers may open at any moment, and naming files after untrusted text.

One atomic write for every file SwapLab rewrites while others may read it (the run record,
the report, trace.json, the time-series artifacts): a temporary file in the same folder,
fsync, os.replace, fsync of the folder. A reader sees the old or the new complete file,
never half of one, and a crash loses at most the write in flight.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["atomic_write_json", "atomic_write_text", "slug"]


def atomic_write_text(path: Path | str, text: str) -> Path:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the report is read by people
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    return path


def atomic_write_json(path: Path | str, data: Any, **dumps: Any) -> Path:
    """Strict JSON (no NaN), indent 1 unless `dumps` says otherwise, newline at the end."""
    dumps.setdefault("indent", 1)
    return atomic_write_text(path, json.dumps(data, allow_nan=False, **dumps) + "\n")


def slug(text: str, max_len: int = 80, empty: str = "_") -> str:
    """A file name from untrusted text: runs of anything but [A-Za-z0-9_.-] become one
    underscore, no leading / trailing underscore, at most max_len characters."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:max_len] or empty
