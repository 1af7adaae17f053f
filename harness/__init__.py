"""SwapLab: a pytest-driven device lab for an on-device face swap.

The pytest plugin (`harness.plugin`) discovers devices, matches each to a profile in
`device_profiles/`, parametrizes the suites over them and writes a run record and an
HTML report. See README.md.
"""

from __future__ import annotations

import os
from pathlib import Path

__version__ = "0.1.0"

#: The repository this package lives in (editable install / checkout).
REPO_ROOT = Path(__file__).resolve().parent.parent


def cache_root() -> Path:
    """Where builds and device work folders live: $SWAPLAB_CACHE or ~/.cache/swaplab."""
    env = os.environ.get("SWAPLAB_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "swaplab"
