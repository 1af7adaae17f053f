"""What a run record keeps about the environment: host, git, python, model hashes."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

from harness.modelpack.pack import sha256_file


def _git(repo: Path, *args: str) -> str | None:
    try:
        r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                           timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def git_info(repo: Path) -> dict:
    commit = _git(repo, "rev-parse", "HEAD")
    branch = _git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    status = _git(repo, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "branch": branch,
            "dirty": None if status is None else bool(status)}


def host_info() -> dict:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    os_name = platform.platform()
    try:
        with open("/etc/os-release", encoding="utf-8") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    os_name = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {"hostname": socket.gethostname(), "os": os_name, "kernel": platform.release(),
            "cpu": cpu, "cores": os.cpu_count(), "machine": platform.machine()}


def model_hashes(models_dir: Path) -> dict[str, str]:
    """sha256 of the manifest and every .param/.bin in the model folder."""
    out: dict[str, str] = {}
    if not models_dir.is_dir():
        return out
    for p in sorted(models_dir.iterdir()):
        if p.is_file() and (p.suffix in (".param", ".bin") or p.name == "manifest.json"):
            out[p.name] = sha256_file(p)
    return out


def collect(repo: Path, models_dir: Path) -> dict:
    return {"host": host_info(), "git": git_info(repo),
            "python": platform.python_version(), "executable": sys.executable,
            "models": model_hashes(models_dir), "runner_builds": {}}
