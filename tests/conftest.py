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

# The start of every stand-in swap_runner: the runner's command line and --version.
FAKE_RUNNER_HEAD = r'''
import argparse, json, os, shutil, sys
p = argparse.ArgumentParser()
for a in ["--models", "--source", "--target", "--mode", "--telemetry", "--cpu-affinity",
          "--out", "--enhance", "--blend"]:
    p.add_argument(a)
p.add_argument("--warmup", type=int, default=5)
p.add_argument("--frames", type=int, default=50)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--save-every", type=int, default=0)
p.add_argument("--version", action="store_true")
a = p.parse_args()
build = {"compiler": "fake", "abi": "x86_64", "threads": a.threads, "build_type": "Release"}
if a.version:
    print(json.dumps(build)); sys.exit(0)


def print_summary():
    print(json.dumps({"type": "summary", "schema": "swaplab.telemetry/1", "build": build,
                      "mode": a.mode, "blend": "poisson", "model_load_ms": 12.5,
                      "first_frame_ms": 40.0, "peak_rss_kb": 51200, "frames": a.frames,
                      "warmup_frames": a.warmup, "frames_without_face": 0,
                      "mode_switches": 0, "wall_ms": 100.0}))
'''


def write_fake_runner(path: Path, body: str) -> Path:
    """An executable stand-in swap_runner at `path`: FAKE_RUNNER_HEAD, then `body` (which
    sees the parsed arguments as `a`, the build info as `build`, and ends with
    print_summary())."""
    path.write_text(f"#!{sys.executable}" + FAKE_RUNNER_HEAD + body)
    path.chmod(0o755)
    return path


# A virtual Snapdragon 6 Gen 1 phone (harness.virtual_device) for the Android tests.
VIRTUAL_SD6_PROFILE = """
name = "snapdragon6"
marker = "snapdragon6"
description = "virtual test phone"
platform = "android"
[match]
soc_model = ["SM6450"]
board_platform = ["parrot"]
[virtual]
abi = "x86_64"
[virtual.properties]
"ro.soc.model" = "SM6450"
"ro.board.platform" = "parrot"
"ro.product.model" = "SwapLab Virtual SD6"
"ro.debuggable" = "1"
"""


@pytest.fixture(scope="module")
def sd6_profile(tmp_path_factory) -> str:
    """Path of a profile file for a virtual Snapdragon 6 phone (VIRTUAL_SD6_PROFILE)."""
    p = tmp_path_factory.mktemp("profiles") / "snapdragon6.toml"
    p.write_text(VIRTUAL_SD6_PROFILE)
    return str(p)


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
