"""nox sessions for SwapLab.

  nox -s tests    SwapLab's own tests (pytest tests)
  nox -s lab      the lab on the default devices (pytest suites); ends with the report path
  nox -s lint     ruff
  nox -s runner   build swap_runner for this host (runner/build.py)
  nox -s models   rebuild the model pack from pinned packages and check it byte for byte
"""

from __future__ import annotations

import platform

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True
PYTHON = "3.11"

# pinned toolchain of the model pack (see models/rebuild.py TOOLCHAIN)
MODEL_TOOLCHAIN = ["torch==2.13.0", "tflite==2.18.0", "numpy"]
PNNX = "pnnx==20261020"


def _install_swaplab(session: nox.Session) -> None:
    session.install("-e", ".[test]")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    _install_swaplab(session)
    session.run("pytest", "tests", *session.posargs, env={"OMP_WAIT_POLICY": "PASSIVE"})


@nox.session(python=PYTHON)
def lab(session: nox.Session) -> None:
    _install_swaplab(session)
    session.run("pytest", "suites", *session.posargs, env={"OMP_WAIT_POLICY": "PASSIVE"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.5")
    session.run("ruff", "check", "harness", "suites", "tests", "conftest.py", "noxfile.py",
                *session.posargs)


@nox.session(python=PYTHON)
def runner(session: nox.Session) -> None:
    abi = session.posargs[0] if session.posargs else (
        "arm64-v8a" if platform.machine() in ("aarch64", "arm64") else "x86_64")
    session.run("python", "runner/build.py", "--abi", abi)


@nox.session(python=PYTHON)
def models(session: nox.Session) -> None:
    session.install(*MODEL_TOOLCHAIN)
    session.install("--no-deps", PNNX)
    session.run("python", "models/rebuild.py", "--check", *session.posargs)
