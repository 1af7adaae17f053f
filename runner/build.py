#!/usr/bin/env python3
"""Build swap_runner (and the ncnn it links) for one ABI, cached outside the repo.

CLI:     python runner/build.py --abi x86_64|arm64-v8a   -> prints the binary path
Library: build_runner(abi, progress=print) -> pathlib.Path

Cache layout (root = $SWAPLAB_CACHE or ~/.cache/swaplab):
  downloads/ncnn-<ver>.tar.gz                        the sdist (runner/sdist.py), sha256 pinned
  src/ncnn-<ver>/                                     extracted sdist
  ncnn/<ver>-<abi>-<compiler>-<flagshash>/install     static ncnn, Vulkan off
  runner/<abi>-<sourcehash>/swap_runner               the runner; unchanged sources -> no rebuild
Every key is made of content (flags, compiler version, file bytes), never of a path, so a
fresh clone in another folder (CI's always is one) reuses the cache.
A file lock per ABI (<root>/build-<abi>.lock) serialises concurrent builds (tests + harness).
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import pathlib
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile



def _sibling(name: str):
    """runner/<name>.py as a module, without putting runner/ on sys.path (where its
    build.py would shadow PyPA's `build` for the whole process)."""
    import importlib.util  # noqa: PLC0415
    key = f"swaplab_runner_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            key, pathlib.Path(__file__).resolve().parent / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


sdist = _sibling("sdist")

NCNN_VERSION = "20261020"
NCNN_PYPI_VERSION = "1.0." + NCNN_VERSION
# sha256 of ncnn-1.0.20261020.tar.gz as served by PyPI (checked after download)
NCNN_SDIST_SHA256 = "ad8cdd63e9755cfa8e23b9b6d9ce46156077d80298a89e7c3ba325ffccfca200"

RUNNER_DIR = pathlib.Path(__file__).resolve().parent
ABIS = ("x86_64", "arm64-v8a")
JOBS = "2"  # the CI machine has 2 shared cores

# Options common to every ncnn build: static, CPU only, no tools/tests (the sdist lacks them).
NCNN_COMMON = [
    "-DCMAKE_BUILD_TYPE=Release",
    f"-DNCNN_VERSION={NCNN_VERSION}",  # the sdist would stamp today's date otherwise
    "-DNCNN_SHARED_LIB=OFF",
    "-DNCNN_VULKAN=OFF",
    "-DNCNN_BUILD_TOOLS=OFF",
    "-DNCNN_BUILD_BENCHMARK=OFF",
    "-DNCNN_BUILD_EXAMPLES=OFF",
    "-DNCNN_BUILD_TESTS=OFF",
    "-DNCNN_PYTHON=OFF",
    "-DNCNN_OPENMP=ON",
    "-DNCNN_INSTALL_SDK=ON",
]


class BuildError(RuntimeError):
    pass


def cache_root() -> pathlib.Path:
    root = os.environ.get("SWAPLAB_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "swaplab")
    p = pathlib.Path(root)
    p.mkdir(parents=True, exist_ok=True)
    return p


def _cpu_flags() -> set[str]:
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    m = re.search(r"^flags\s*:\s*(.*)$", text, re.MULTILINE)
    return set(m.group(1).split()) if m else set()


def x86_isa() -> list[str]:
    """ISA level for the x86_64 build. The CI machine kind is fixed: AVX2+FMA+F16C when this
    host has them (fast ~4 min build, NCNN_RUNTIME_CPU=OFF), otherwise the portable SSE2 path."""
    f = _cpu_flags()
    if {"avx2", "fma", "f16c"} <= f:
        return ["sse2", "sse4.1", "avx", "avx2", "fma", "f16c"]
    return ["sse2"]


def compilers(abi: str) -> tuple[str, str]:
    if abi == "x86_64":
        return "gcc", "g++"
    if abi == "arm64-v8a":
        return "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++"
    raise BuildError(f"unknown abi {abi!r} (expected one of {', '.join(ABIS)})")


def compiler_id(abi: str) -> str:
    _, cxx = compilers(abi)
    if shutil.which(cxx) is None:
        raise BuildError(f"compiler {cxx} not found (Debian: g++ / g++-aarch64-linux-gnu)")
    ver = subprocess.run([cxx, "-dumpfullversion"], capture_output=True, text=True, check=False).stdout.strip()
    return f"gcc{ver}"


def ncnn_flags(abi: str) -> list[str]:
    flags = list(NCNN_COMMON)
    if abi == "x86_64":
        isa = x86_isa()
        avx2 = "avx2" in isa
        flags += [
            "-DNCNN_RUNTIME_CPU=OFF",
            f"-DNCNN_AVX={'ON' if avx2 else 'OFF'}",
            f"-DNCNN_AVX2={'ON' if avx2 else 'OFF'}",
            f"-DNCNN_FMA={'ON' if avx2 else 'OFF'}",
            f"-DNCNN_F16C={'ON' if avx2 else 'OFF'}",
            "-DNCNN_AVX512=OFF", "-DNCNN_AVXVNNI=OFF", "-DNCNN_AVXVNNIINT8=OFF",
            "-DNCNN_AVXVNNIINT16=OFF", "-DNCNN_AVXNECONVERT=OFF",
            "-DNCNN_XOP=OFF", "-DNCNN_FMA4=OFF",
        ]
    elif abi == "arm64-v8a":
        # Plain ARMv8.0 NEON: runs on every arm64 phone and under qemu -cpu cortex-a72.
        # (A phone build would rather use NCNN_RUNTIME_CPU=ON to get the fp16/dotprod kernels.)
        flags += [
            f"-DCMAKE_TOOLCHAIN_FILE={RUNNER_DIR / 'toolchains' / 'aarch64-linux-gnu.cmake'}",
            "-DNCNN_RUNTIME_CPU=OFF",
            "-DNCNN_ARM82=OFF", "-DNCNN_ARM82DOT=OFF", "-DNCNN_ARM82FP16FML=OFF",
            "-DNCNN_ARM84BF16=OFF", "-DNCNN_ARM84I8MM=OFF", "-DNCNN_ARM86SVE=OFF",
        ]
    else:
        raise BuildError(f"unknown abi {abi!r}")
    return flags


def _hash(items) -> str:
    h = hashlib.sha256()
    for it in items:
        h.update(it if isinstance(it, bytes) else str(it).encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def _run(cmd: list[str], cwd: pathlib.Path | None, progress, env=None, what="build") -> None:
    """Run a build step under nice, streaming cmake's percentage lines to progress()."""
    progress(f"[build] $ {' '.join(cmd)}")
    proc = subprocess.Popen(["nice", "-n", "10", *cmd], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    tail: list[str] = []
    last_pct = -1
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        tail.append(line)
        del tail[:-40]
        m = re.match(r"^\[\s*(\d+)%\]", line) or re.match(r"^\[(\d+)/(\d+)\]", line)
        if m:
            pct = int(m.group(1)) if m.lastindex == 1 else int(100 * int(m.group(1)) / int(m.group(2)))
            if pct // 5 != last_pct // 5:
                last_pct = pct
                progress(f"[build] {what}: {pct}%")
    if proc.wait() != 0:
        raise BuildError(f"{what} failed ({' '.join(cmd[:2])} ...):\n" + "\n".join(tail))


class _Lock:
    def __init__(self, path: pathlib.Path):
        self.path = path

    def __enter__(self):
        self.f = open(self.path, "w")
        fcntl.flock(self.f, fcntl.LOCK_EX)  # blocks (no spinning) until the other build ends
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def extract_sdist(tarball: pathlib.Path, src: pathlib.Path, top: str) -> pathlib.Path:
    """Unpack `tarball` (its top folder `top`) to `src`, atomically."""
    root = cache_root()
    tmp = pathlib.Path(tempfile.mkdtemp(dir=root / "downloads"))
    try:
        with tarfile.open(tarball) as tf:
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse unsafe members
                tf.extractall(tmp, filter="data")
            else:
                tf.extractall(tmp)
        src.parent.mkdir(parents=True, exist_ok=True)
        if src.exists():
            shutil.rmtree(src)
        (tmp / top).rename(src)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return src


def ncnn_source(progress=print) -> pathlib.Path:
    """ncnn's C++ source: the pinned PyPI sdist, fetched through the index API (sdist.py)."""
    root = cache_root()
    name = f"ncnn-{NCNN_PYPI_VERSION}"
    src = root / "src" / name
    if (src / "src" / "net.cpp").exists():
        return src
    tarball = root / "downloads" / f"{name}.tar.gz"
    try:
        sdist.fetch_sdist("ncnn", tarball.name, NCNN_SDIST_SHA256, tarball, progress=progress)
    except sdist.FetchError as e:
        raise BuildError(str(e)) from None
    return extract_sdist(tarball, src, name)


def cache_key_items(flags: list[str]) -> list:
    """The flags as cache-key items: a flag naming a file of this checkout (a toolchain
    file) counts by the file's content, not by its path."""
    items: list = []
    for f in flags:
        name, sep, value = f.partition("=")
        path = pathlib.Path(value) if sep else None
        if path is not None and path.is_absolute() and path.is_file() \
                and RUNNER_DIR in path.parents:
            items += [name, path.relative_to(RUNNER_DIR).as_posix(), path.read_bytes()]
        else:
            items.append(f)
    return items


def ncnn_install_dir(abi: str) -> pathlib.Path:
    flags = ncnn_flags(abi)
    key = f"{NCNN_VERSION}-{abi}-{compiler_id(abi)}-{_hash(cache_key_items(flags))}"
    return cache_root() / "ncnn" / key / "install"


def build_ncnn(abi: str, progress=print) -> pathlib.Path:
    install = ncnn_install_dir(abi)
    stamp = install / ".complete"
    if stamp.exists():
        return install
    src = ncnn_source(progress)
    build = install.parent / "build"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    progress(f"[build] ncnn {NCNN_PYPI_VERSION} for {abi} (one-time, a few minutes on 2 cores)")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(["cmake", *gen, "-S", str(src), "-B", str(build), f"-DCMAKE_INSTALL_PREFIX={install}",
          *ncnn_flags(abi)], None, progress, what=f"ncnn {abi} configure")
    _run(["cmake", "--build", str(build), "-j", JOBS], None, progress, what=f"ncnn {abi}")
    _run(["cmake", "--install", str(build)], None, progress, what=f"ncnn {abi} install")
    stamp.write_text("\n".join(ncnn_flags(abi)) + "\n")
    shutil.rmtree(build, ignore_errors=True)
    return install


def runner_sources() -> list[pathlib.Path]:
    files = [RUNNER_DIR / "CMakeLists.txt"]
    files += sorted(RUNNER_DIR.glob("src/*.cpp")) + sorted(RUNNER_DIR.glob("src/*.h"))
    files += sorted(RUNNER_DIR.glob("toolchains/*.cmake"))
    return files


def build_runner(abi: str, progress=print) -> pathlib.Path:
    """Build (or reuse) swap_runner for `abi`; returns the binary path."""
    if abi not in ABIS:
        raise BuildError(f"unknown abi {abi!r} (expected one of {', '.join(ABIS)})")
    root = cache_root()
    with _Lock(root / f"build-{abi}.lock"):
        ncnn = build_ncnn(abi, progress)
        # the ncnn folder's name is its own content key; its path would tie us to one cache
        items: list = [abi, ncnn.parent.name, compiler_id(abi)]
        for f in runner_sources():
            items += [f.relative_to(RUNNER_DIR).as_posix(), f.read_bytes()]
        out_dir = root / "runner" / f"{abi}-{_hash(items)}"
        binary = out_dir / "swap_runner"
        if binary.exists():
            return binary
        build = out_dir / "build"
        if build.exists():
            shutil.rmtree(build)
        build.mkdir(parents=True)
        progress(f"[build] swap_runner for {abi}")
        cfg = ["cmake", "-S", str(RUNNER_DIR), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
               f"-Dncnn_DIR={ncnn / 'lib' / 'cmake' / 'ncnn'}", f"-DSWAPLAB_ABI={abi}",
               f"-DSWAPLAB_ISA={';'.join(x86_isa()) if abi == 'x86_64' else 'neon'}"]
        if shutil.which("ninja"):
            cfg[1:1] = ["-G", "Ninja"]
        cfg.append(f"-DNCNN_SRC_DIR={ncnn_source(progress)}")
        if abi == "arm64-v8a":
            cfg.append(f"-DCMAKE_TOOLCHAIN_FILE={RUNNER_DIR / 'toolchains' / 'aarch64-linux-gnu.cmake'}")
        _run(cfg, None, progress, what=f"runner {abi} configure")
        _run(["cmake", "--build", str(build), "-j", JOBS], None, progress, what=f"runner {abi}")
        # Video plugin first: the binary's presence marks a complete build.
        if (build / "libswap_video.so").exists():
            shutil.copy2(build / "libswap_video.so", out_dir / "libswap_video.so.tmp")
            os.replace(out_dir / "libswap_video.so.tmp", out_dir / "libswap_video.so")
        tmp = out_dir / "swap_runner.tmp"
        shutil.copy2(build / "swap_runner", tmp)
        os.replace(tmp, binary)
        shutil.rmtree(build, ignore_errors=True)
        return binary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--abi", default="x86_64", choices=ABIS)
    ap.add_argument("--ncnn-only", action="store_true", help="build (or reuse) ncnn only")
    args = ap.parse_args(argv)
    def log(m: str) -> None:  # stdout carries only the path
        print(m, file=sys.stderr, flush=True)

    try:
        if args.ncnn_only:
            with _Lock(cache_root() / f"build-{args.abi}.lock"):
                print(build_ncnn(args.abi, log))
        else:
            print(build_runner(args.abi, log))
    except BuildError as e:
        print(f"build.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
