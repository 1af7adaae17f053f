"""The offline Android route: zig's clang + musl from the `ziglang` wheel (PyPI).

No Android NDK can be had from a package registry. zig ships clang, lld, libc++ and musl
for every target, so `-target aarch64-linux-musl -static` gives an ELF that needs nothing a
phone lacks: no program interpreter, no NEEDED entries. Android's kernel runs it from
/data/local/tmp like any static binary (bionic is not needed by a program that does not
link it).

CMake wants one executable per tool, so build.py writes small wrapper scripts (cc, c++, ar,
ranlib, objcopy) from the templates below into the build cache and points
toolchains/zig-musl.cmake at them.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import pathlib
import subprocess

#: the ziglang wheel build.py expects (pyproject.toml pins the same version)
ZIG_VERSION = "0.14.1"

#: device ABI -> zig target triple and CMake's CMAKE_SYSTEM_PROCESSOR
TARGETS = {
    "arm64-v8a": ("aarch64-linux-musl", "aarch64"),
    "x86_64": ("x86_64-linux-musl", "x86_64"),
}

# zig reads -march=X as a CPU *name* ("unknown CPU: 'armv8.2'"), while ncnn and OpenCV pass
# GCC-style -march=armv8.2-a+fp16+dotprod for their ARMv8.2 kernels. The wrapper rewrites
# those to zig's -mcpu=generic+v8_2a+fullfp16+dotprod (same features, zig's names).
_CC = r"""#!/bin/sh
# zig @TOOL@ for @TRIPLE@ (written by runner/build.py; see runner/buildlib/zig.py)
export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-@ZIGCACHE@}"
export ZIG_LOCAL_CACHE_DIR="${ZIG_LOCAL_CACHE_DIR:-@ZIGCACHE@}"
n=$#
while [ "$n" -gt 0 ]; do
  a=$1; shift; n=$((n - 1))
  case $a in
    -march=armv*) a=$(printf '%s\n' "$a" | sed -E -e 's/^-march=armv8-a/-mcpu=generic/' \
        -e 's/^-march=armv([89])\.([0-9])-a/-mcpu=generic+v\1_\2a/' \
        -e 's/\+fp16(\+|$)/+fullfp16\1/') ;;
  esac
  set -- "$@" "$a"
done
exec "@ZIG@" @TOOL@ -target @TRIPLE@ "$@"
"""

_TOOL = r"""#!/bin/sh
# zig @TOOL@ (written by runner/build.py; see runner/buildlib/zig.py)
export ZIG_GLOBAL_CACHE_DIR="${ZIG_GLOBAL_CACHE_DIR:-@ZIGCACHE@}"
exec "@ZIG@" @TOOL@ "$@"
"""

WRAPPERS = {"cc": (_CC, "cc"), "c++": (_CC, "c++"), "ar": (_TOOL, "ar"),
            "ranlib": (_TOOL, "ranlib"), "objcopy": (_TOOL, "objcopy")}


class ZigMissing(RuntimeError):
    pass


def find_zig() -> pathlib.Path:
    """The zig binary of the `ziglang` wheel installed in this Python."""
    spec = importlib.util.find_spec("ziglang")
    if spec is None or not spec.submodule_search_locations:
        raise ZigMissing(f"the Android builds need the ziglang wheel (pip install "
                         f"ziglang=={ZIG_VERSION}; scripts/bootstrap installs it into .venv)")
    zig = pathlib.Path(next(iter(spec.submodule_search_locations))) / "zig"
    if not zig.is_file():
        raise ZigMissing(f"ziglang is installed but has no zig binary at {zig}")
    return zig


def zig_version(zig: pathlib.Path) -> str:
    r = subprocess.run([str(zig), "version"], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise ZigMissing(f"{zig} version failed: {r.stderr.strip()}")
    return r.stdout.strip()


def wrapper_texts(abi: str, zig: pathlib.Path, zig_cache: pathlib.Path) -> dict[str, str]:
    triple = TARGETS[abi][0]
    return {name: text.replace("@TOOL@", tool).replace("@TRIPLE@", triple)
            .replace("@ZIG@", str(zig)).replace("@ZIGCACHE@", str(zig_cache))
            for name, (text, tool) in WRAPPERS.items()}


def toolchain_key(abi: str, version: str) -> str:
    """Content key of the toolchain: zig's version, the target and the wrapper templates
    (paths left out, so every checkout and cache location shares builds)."""
    h = hashlib.sha256()
    for part in (version, TARGETS[abi][0], _CC, _TOOL):
        h.update(part.encode() + b"\0")
    return f"zig{version}-{h.hexdigest()[:8]}"


def write_wrappers(abi: str, cache: pathlib.Path) -> pathlib.Path:
    """`cache`/toolchain/<key>-<abi>/ holding cc, c++, ar, ranlib for `abi` (written once,
    atomically; zig's own cache goes to `cache`/zig)."""
    zig = find_zig()
    folder = cache / "toolchain" / f"{toolchain_key(abi, zig_version(zig))}-{abi}"
    texts = wrapper_texts(abi, zig, cache / "zig")
    if all((folder / n).is_file() and (folder / n).read_text() == t for n, t in texts.items()):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        tmp = folder / f".{name}.{os.getpid()}"
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, folder / name)
    return folder
