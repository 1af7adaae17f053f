"""Running the lab in tests: a stand-in swap_runner, pytest in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from harness.virtual_device.testing import find_adb
from helpers.paths import REPO

__all__ = ["FAKE_RUNNER_HEAD", "REPO", "run_pytest_subprocess", "write_fake_runner"]

# The start of every stand-in swap_runner: the runner's command line and --version.
FAKE_RUNNER_HEAD = r'''
import argparse, json, os, shutil, sys
p = argparse.ArgumentParser()
for a in ["--models", "--source", "--target", "--mode", "--telemetry", "--cpu-affinity",
          "--camera-fps", "--thermal-fallback", "--thermal-fps-low", "--placement",
          "--out", "--enhance", "--blend", "--backend", "--faces", "--small-faces", "--smooth"]:
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


def device_python() -> str:
    """A Python every account can run: a virtual device runs programs as `nobody`, which
    cannot enter the home folder the lab's own Python may sit in (stdlib only)."""
    return shutil.which("python3", path="/usr/bin:/bin") or sys.executable


def write_fake_runner(path: Path, body: str, python: str | None = None) -> Path:
    """An executable stand-in swap_runner at `path`: FAKE_RUNNER_HEAD, then `body` (which
    sees the parsed arguments as `a`, the build info as `build`, and ends with
    print_summary())."""
    path.write_text(f"#!{python or sys.executable}" + FAKE_RUNNER_HEAD + body)
    path.chmod(0o755)
    return path


def run_pytest_subprocess(args, cwd, timeout=900, env=None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ)
    full_env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
                          cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout,
                          check=False)


#: the real adb binaries the virtual-device tests run against: adbutils' bundled adb (36)
#: and Debian's (29, installed by scripts/bootstrap)
ADBS = {"adbutils-adb": find_adb(None)}
if shutil.which("adb"):
    ADBS["debian-adb"] = shutil.which("adb")
