"""Shared bits of SwapLab's own tests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]

# Tests that run adb set HOME to a temp folder (never a user's adb). The build cache
# (ncnn, runner builds: ~/.cache/swaplab) must not move with it, or every such test would
# rebuild ncnn: pin it here, from the real HOME, for this process and every subprocess.
os.environ.setdefault("SWAPLAB_CACHE",
                      os.path.join(os.path.expanduser("~"), ".cache", "swaplab"))

HOST_PROFILE_FAST = """
name = "host"
marker = "host"
description = "this host, few frames (SwapLab tests)"
platform = "linux"
[match]
kind = ["local"]
[targets]
latency_p95_ms = {latency_target}
memory_peak_mb = 4096.0
[run]
threads = 1
warmup_frames = 1
measured_frames = 3
cold_start_runs = 1
timeout_s = 300
"""


@pytest.fixture
def fast_profiles(tmp_path) -> Path:
    """A profile folder with a quick host profile plus the repo's phone profiles."""
    d = tmp_path / "profiles"
    d.mkdir()
    for p in (REPO / "device_profiles").glob("*.toml"):
        if p.name != "host.toml":
            (d / p.name).write_text(p.read_text())
    (d / "host.toml").write_text(HOST_PROFILE_FAST.format(latency_target=60000.0))
    return d


def run_pytest_subprocess(args, cwd, timeout=900, env=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
                          check=False)


@pytest.fixture
def local_only(monkeypatch):
    """Discovery asks only the local backend (never a user's adb server)."""
    monkeypatch.setenv("SWAPLAB_BACKENDS", "local")
