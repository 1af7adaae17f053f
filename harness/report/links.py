"""Artifact paths from a run record, which is untrusted (a record on disk can be edited or
crafted): a path becomes a file to read or a link in the report only when it is a plain
relative path to a regular file inside the run folder. Never absolute, never "..", never
through a symlink out of the folder, never a URL: a link is percent-encoded, so
"javascript:alert(1)" could at most name a file called that, never run."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from urllib.parse import quote

__all__ = ["artifact_file", "artifact_href"]


def artifact_file(run_dir: Path | str, rel: object) -> Path | None:
    """The artifact's file inside `run_dir`, or None when `rel` is anything else."""
    if not isinstance(rel, str) or not rel or "\\" in rel or any(ord(c) < 0x20 for c in rel):
        return None
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts:
        return None
    root = Path(run_dir).resolve()
    full = (root / p).resolve()
    if not full.is_relative_to(root) or not full.is_file():
        return None
    return full


def artifact_href(run_dir: Path | str, rel: object) -> str | None:
    """A relative link to the artifact (percent-encoded, so never a scheme), or None."""
    if artifact_file(run_dir, rel) is None:
        return None
    return quote(str(rel), safe="/")
