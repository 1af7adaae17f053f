"""Shared bits of SwapLab's own tests."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest
from helpers.paths import REPO

pytest_plugins = ["pytester"]

# Tests that run adb set HOME to a temp folder (never a user's adb). The build cache
# (ncnn, runner builds: ~/.cache/swaplab) must not move with it, or every such test would
# rebuild ncnn: pin it here, from the real HOME, for this process and every subprocess.
os.environ.setdefault("SWAPLAB_CACHE",
                      os.path.join(os.path.expanduser("~"), ".cache", "swaplab"))

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


@pytest.fixture
def local_only(monkeypatch):
    """Discovery asks only the local backend (never a user's adb server)."""
    monkeypatch.setenv("SWAPLAB_BACKENDS", "local")


@pytest.fixture(scope="module")
def collect_garbage_after_module():
    """pymobiledevice3's asyncio objects leave cyclic garbage behind; collecting it after
    a module keeps a later collection from landing inside an ast.parse (pytest's
    assertion rewriting of a plugin imported at session end), where CPython 3.11 raises
    "AST constructor recursion depth mismatch" (cpython gh-106905, pytest #10763)."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def runner_binary() -> Path:
    """The host build of swap_runner (built once, or taken from the build cache)."""
    from harness.runner.invoke import build_runner

    try:
        return build_runner("x86_64", progress=lambda msg: print(msg, flush=True))
    except Exception as e:  # noqa: BLE001 - a missing toolchain is reported, not hidden
        pytest.fail(f"cannot build swap_runner for this host: {e}")
