#!/usr/bin/env python3
"""Build swap_runner (and the ncnn it links) for one ABI, cached outside the repo.

CLI:     python runner/build.py --abi x86_64|arm64-v8a [--platform linux|android]
                                                     -> prints the binary path
Library: build_runner(abi, progress=print, platform=None) -> pathlib.Path

Platforms: `android` is what phones and emulators run: fully static (aarch64/x86_64 musl
through zig's clang, runner/buildlib/zig.py; or the NDK with --toolchain ndk), ncnn with
run-time CPU dispatch, OpenCV built from its sdist (runner/buildlib/opencv.py). `linux` is
this host's glibc build (Debian's g++ and OpenCV). Default: android for arm64-v8a (the only
arm64 devices are phones), linux for x86_64.

Cache layout (root = $SWAPLAB_CACHE or ~/.cache/swaplab):
  downloads/ncnn-<ver>.tar.gz                        the sdist (runner/sdist.py), sha256 pinned
  src/ncnn-<ver>/                                     extracted sdist
  ncnn/<ver>-<abi>-<compiler>-<flagshash>/install     static ncnn (Vulkan in the host and NDK builds)
  opencv/<ver>-<abi>-<compiler>-<flagshash>/install   static OpenCV (android builds only)
  toolchain/<zigkey>-<abi>/                           zig wrapper scripts; zig/ its cache
  runner/<abi>[-android]-<sourcehash>/swap_runner     the runner; unchanged sources -> no rebuild
Every key is made of content (flags, compiler version, file bytes), never of a path, so a
fresh clone in another folder (CI's always is one) reuses the cache.
A file lock per ABI and platform (<root>/build-<abi>[-android].lock) serialises concurrent
builds (tests + harness).
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import pathlib
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time


def _sibling(name: str):
    """runner/<name>.py as a module, without putting runner/ on sys.path (where its
    build.py would shadow PyPA's `build` for the whole process)."""
    import importlib.util
    key = "swaplab_runner_" + name.replace("/", "_")
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            key, pathlib.Path(__file__).resolve().parent / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


sdist = _sibling("sdist")
zig = _sibling("buildlib/zig")
opencv = _sibling("buildlib/opencv")
ncnn_android = _sibling("buildlib/ncnn_android")
ncnn_vulkan = _sibling("buildlib/ncnn_vulkan")
ncnn_layers = _sibling("buildlib/ncnn_layers")

NCNN_VERSION = "20261020"
NCNN_PYPI_VERSION = "1.0." + NCNN_VERSION
# sha256 of ncnn-1.0.20261020.tar.gz as served by PyPI (checked after download)
NCNN_SDIST_SHA256 = "ad8cdd63e9755cfa8e23b9b6d9ce46156077d80298a89e7c3ba325ffccfca200"

RUNNER_DIR = pathlib.Path(__file__).resolve().parent
ABIS = ("x86_64", "arm64-v8a")
PLATFORMS = ("linux", "android")
TOOLCHAINS = ("zig", "ndk")
ANDROID_API = "24"  # NDK route: Android 7.0, the oldest the lab's phones run
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


def default_platform(abi: str) -> str:
    return "android" if abi == "arm64-v8a" else "linux"


def check_target(abi: str, platform: str, toolchain: str = "zig") -> None:
    if abi not in ABIS:
        raise BuildError(f"unknown abi {abi!r} (expected one of {', '.join(ABIS)})")
    if platform not in PLATFORMS:
        raise BuildError(f"unknown platform {platform!r} (expected one of {', '.join(PLATFORMS)})")
    if toolchain not in TOOLCHAINS:
        raise BuildError(f"unknown toolchain {toolchain!r} (expected one of {', '.join(TOOLCHAINS)})")
    if toolchain == "ndk" and not os.environ.get("ANDROID_NDK_HOME"):
        raise BuildError("--toolchain ndk needs ANDROID_NDK_HOME (the NDK's folder)")


def compilers(abi: str) -> tuple[str, str]:
    """Debian's compilers of the glibc (platform linux) builds."""
    if abi == "x86_64":
        return "gcc", "g++"
    if abi == "arm64-v8a":
        return "aarch64-linux-gnu-gcc", "aarch64-linux-gnu-g++"
    raise BuildError(f"unknown abi {abi!r} (expected one of {', '.join(ABIS)})")


def compiler_id(abi: str, platform: str = "linux", toolchain: str = "zig") -> str:
    if platform == "android":
        if toolchain == "ndk":
            ndk = pathlib.Path(os.environ["ANDROID_NDK_HOME"])
            props = ndk / "source.properties"
            rev = re.search(r"Pkg\.Revision\s*=\s*(\S+)", props.read_text()) if props.is_file() else None
            return f"ndk{rev.group(1) if rev else 'unknown'}-api{ANDROID_API}"
        try:
            return zig.toolchain_key(abi, zig.zig_version(zig.find_zig()))
        except zig.ZigMissing as e:
            raise BuildError(str(e)) from None
    _, cxx = compilers(abi)
    if shutil.which(cxx) is None:
        raise BuildError(f"compiler {cxx} not found (Debian: g++ / g++-aarch64-linux-gnu)")
    ver = subprocess.run([cxx, "-dumpfullversion"], capture_output=True, text=True, check=False).stdout.strip()
    return f"gcc{ver}"


def zig_toolchain(abi: str) -> pathlib.Path:
    """Folder of the zig wrapper scripts for `abi` (written once into the cache)."""
    try:
        return zig.write_wrappers(abi, cache_root())
    except zig.ZigMissing as e:
        raise BuildError(str(e)) from None


def toolchain_flags(abi: str, platform: str, toolchain: str = "zig") -> list[str]:
    """CMake flags that select the compiler. Not part of any cache key as such: they name
    folders (the key has compiler_id() and the toolchain file's content instead)."""
    if platform == "linux":
        if abi == "arm64-v8a":
            return [f"-DCMAKE_TOOLCHAIN_FILE={RUNNER_DIR / 'toolchains' / 'aarch64-linux-gnu.cmake'}"]
        return []
    if toolchain == "ndk":
        ndk = pathlib.Path(os.environ["ANDROID_NDK_HOME"])
        return [f"-DCMAKE_TOOLCHAIN_FILE={ndk / 'build' / 'cmake' / 'android.toolchain.cmake'}",
                f"-DANDROID_ABI={abi}", f"-DANDROID_PLATFORM=android-{ANDROID_API}",
                "-DANDROID_STL=c++_static"]
    return [f"-DCMAKE_TOOLCHAIN_FILE={RUNNER_DIR / 'toolchains' / 'zig-musl.cmake'}",
            f"-DSWAPLAB_ZIG_BIN={zig_toolchain(abi)}", f"-DSWAPLAB_ZIG_ARCH={zig.TARGETS[abi][1]}"]


def toolchain_key_items(abi: str, platform: str, toolchain: str = "zig") -> list:
    """What of the toolchain selection goes into a cache key: the toolchain file's content."""
    if platform == "android" and toolchain == "zig":
        f = RUNNER_DIR / "toolchains" / "zig-musl.cmake"
        return ["zig-musl.cmake", f.read_bytes()]
    if platform == "linux" and abi == "arm64-v8a":
        f = RUNNER_DIR / "toolchains" / "aarch64-linux-gnu.cmake"
        return ["aarch64-linux-gnu.cmake", f.read_bytes()]
    return [toolchain if platform == "android" else "host"]


def ncnn_flags(abi: str, platform: str = "linux", toolchain: str = "zig") -> list[str]:
    flags = list(NCNN_COMMON)
    # every build: only the layers the models use (buildlib/ncnn_layers.py)
    if platform == "android":
        if toolchain == "ndk":
            # The NDK links bionic dynamically, so ncnn can dlopen the phone's libvulkan.so
            # (its NCNN_VULKAN_LOADER path on __ANDROID__): the phone build with a GPU path.
            # zig's static musl build has no working dlopen, so it stays CPU only.
            flags = [f for f in flags if f != "-DNCNN_VULKAN=OFF"] + ncnn_vulkan.flags()
        return flags + ncnn_android.flags(abi) + ncnn_layers.flags()
    if abi == "x86_64":
        # This host's one build carries both backends (--backend cpu|vulkan|auto): Vulkan on.
        flags = ([f for f in flags if f != "-DNCNN_VULKAN=OFF"] + ncnn_vulkan.flags()
                 + ncnn_layers.flags())
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
            *ncnn_layers.flags(),
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


def extract_sdist(tarball: pathlib.Path, src: pathlib.Path, top: str,
                  skip: tuple[str, ...] = ()) -> pathlib.Path:
    """Unpack the folder `top` of `tarball` to `src`, atomically (members under a `skip`
    prefix left out)."""
    root = cache_root()
    tmp = pathlib.Path(tempfile.mkdtemp(dir=root / "downloads"))
    top = top.rstrip("/")
    try:
        with tarfile.open(tarball) as tf:
            members = [m for m in tf.getmembers()
                       if (m.name == top or m.name.startswith(top + "/"))
                       and not m.name.startswith(skip or ("\0",))]
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: refuse unsafe members
                tf.extractall(tmp, members=members, filter="data")
            else:
                tf.extractall(tmp, members=members)
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


def ncnn_install_dir(abi: str, platform: str = "linux", toolchain: str = "zig") -> pathlib.Path:
    items = cache_key_items(ncnn_flags(abi, platform, toolchain))
    if platform == "android":
        items += ["android", *toolchain_key_items(abi, platform, toolchain)]
    key = f"{NCNN_VERSION}-{abi}-{compiler_id(abi, platform, toolchain)}-{_hash(items)}"
    return cache_root() / "ncnn" / key / "install"


def _children_cpu_s() -> float:
    """CPU seconds of finished child processes (compilers included), for build logs."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _generator() -> list[str]:
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def _cmake_project(name: str, src: pathlib.Path, install: pathlib.Path, flags: list[str],
                   key_flags: list[str], progress) -> pathlib.Path:
    """Configure, build and install one CMake project into `install` (a content-keyed
    cache folder); `install/.complete` marks it done. Times go to progress()."""
    stamp = install / ".complete"
    if stamp.exists():
        return install
    build = install.parent / "build"
    if build.exists():
        shutil.rmtree(build)
    build.mkdir(parents=True)
    t0, cpu0 = time.monotonic(), _children_cpu_s()
    _run(["cmake", *_generator(), "-S", str(src), "-B", str(build),
          f"-DCMAKE_INSTALL_PREFIX={install}", *flags], None, progress, what=f"{name} configure")
    _run(["cmake", "--build", str(build), "-j", JOBS], None, progress, what=name)
    _run(["cmake", "--install", str(build)], None, progress, what=f"{name} install")
    stamp.write_text("\n".join(key_flags) + "\n")
    shutil.rmtree(build, ignore_errors=True)
    progress(f"[build] {name}: built in {time.monotonic() - t0:.0f} s "
             f"({_children_cpu_s() - cpu0:.0f} CPU s: the cost on an idle machine)")
    return install


def build_ncnn(abi: str, progress=print, platform: str = "linux",
               toolchain: str = "zig") -> pathlib.Path:
    install = ncnn_install_dir(abi, platform, toolchain)
    if (install / ".complete").exists():
        return install
    src = ncnn_source(progress)
    progress(f"[build] ncnn {NCNN_PYPI_VERSION} for {abi} {platform} "
             "(one-time, a few minutes on 2 cores)")
    flags = ncnn_flags(abi, platform, toolchain)
    problem = ncnn_layers.check_layer_list(src)
    if problem:
        raise BuildError(problem)
    tc = toolchain_flags(abi, platform, toolchain) if platform == "android" else []
    return _cmake_project(f"ncnn {abi} {platform}", src, install, [*flags, *tc], flags, progress)


def opencv_source(progress=print) -> pathlib.Path:
    """OpenCV's C++ source from the pinned opencv-python sdist (only its opencv/ folder)."""
    root = cache_root()
    src = root / "src" / f"opencv-{opencv.PYPI_VERSION}"
    if (src / "modules" / "core" / "CMakeLists.txt").exists():
        return src
    tarball = root / "downloads" / opencv.SDIST
    try:
        sdist.fetch_sdist("opencv-python", opencv.SDIST, opencv.SDIST_SHA256, tarball,
                          progress=progress)
    except sdist.FetchError as e:
        raise BuildError(str(e)) from None
    progress(f"[build] unpacking {opencv.SDIST} (OpenCV sources only)")
    return extract_sdist(tarball, src, opencv.SOURCE_PREFIX, skip=(opencv.SOURCE_PREFIX + "samples/",))


def opencv_install_dir(abi: str, toolchain: str = "zig") -> pathlib.Path:
    items = [*opencv.flags(abi), *toolchain_key_items(abi, "android", toolchain)]
    key = f"{opencv.OPENCV_VERSION}-{abi}-{compiler_id(abi, 'android', toolchain)}-{_hash(items)}"
    return cache_root() / "opencv" / key / "install"


def build_opencv(abi: str, progress=print, toolchain: str = "zig") -> pathlib.Path:
    """Static OpenCV (core, imgproc, photo) for an Android build of `abi`."""
    install = opencv_install_dir(abi, toolchain)
    if (install / ".complete").exists():
        return install
    src = opencv_source(progress)
    progress(f"[build] OpenCV {opencv.OPENCV_VERSION} ({', '.join(opencv.MODULES)}) for {abi} "
             "android (one-time, a few minutes on 2 cores)")
    flags = opencv.flags(abi)
    return _cmake_project(f"opencv {abi} android", src, install,
                          [*flags, *toolchain_flags(abi, "android", toolchain)], flags, progress)


def opencv_config_dir(install: pathlib.Path) -> pathlib.Path:
    """Folder of OpenCVConfig.cmake in a static install (lib/cmake/opencv4 on Linux)."""
    found = sorted(install.rglob("OpenCVConfig.cmake"))
    if not found:
        raise BuildError(f"no OpenCVConfig.cmake under {install}")
    return found[0].parent


def runner_sources() -> list[pathlib.Path]:
    files = [RUNNER_DIR / "CMakeLists.txt"]
    files += sorted(RUNNER_DIR.glob("src/*.cpp")) + sorted(RUNNER_DIR.glob("src/*.h"))
    files += sorted(RUNNER_DIR.glob("toolchains/*.cmake"))
    return files


def lock_path(abi: str, platform: str) -> pathlib.Path:
    return cache_root() / (f"build-{abi}.lock" if platform == "linux" else f"build-{abi}-{platform}.lock")


def build_runner(abi: str, progress=print, platform: str | None = None,
                 toolchain: str = "zig") -> pathlib.Path:
    """Build (or reuse) swap_runner for `abi` and `platform` (default: android for
    arm64-v8a, linux for x86_64); returns the binary path."""
    platform = platform or default_platform(abi)
    check_target(abi, platform, toolchain)
    root = cache_root()
    with _Lock(lock_path(abi, platform)):
        ncnn = build_ncnn(abi, progress, platform, toolchain)
        # the install folders' names are their content keys; paths would tie us to one cache
        items: list = [abi, ncnn.parent.name, compiler_id(abi, platform, toolchain)]
        cv = None
        if platform == "android":
            cv = build_opencv(abi, progress, toolchain)
            items += ["android", toolchain, cv.parent.name]
        for f in runner_sources():
            items += [f.relative_to(RUNNER_DIR).as_posix(), f.read_bytes()]
        suffix = "" if platform == "linux" else f"-{platform}"
        out_dir = root / "runner" / f"{abi}{suffix}-{_hash(items)}"
        binary = out_dir / "swap_runner"
        if binary.exists():
            return binary
        build = out_dir / "build"
        if build.exists():
            shutil.rmtree(build)
        build.mkdir(parents=True)
        progress(f"[build] swap_runner for {abi} {platform}")
        t0, cpu0 = time.monotonic(), _children_cpu_s()
        if platform == "android":
            isa = "runtime"  # ncnn picks kernels at run time; build info lists them
        else:
            isa = ";".join(x86_isa()) if abi == "x86_64" else "neon"
        cfg = ["cmake", *_generator(), "-S", str(RUNNER_DIR), "-B", str(build),
               "-DCMAKE_BUILD_TYPE=Release",
               f"-Dncnn_DIR={ncnn / 'lib' / 'cmake' / 'ncnn'}", f"-DSWAPLAB_ABI={abi}",
               f"-DSWAPLAB_PLATFORM={platform}", f"-DSWAPLAB_ISA={isa}",
               f"-DNCNN_SRC_DIR={ncnn_source(progress)}",
               *toolchain_flags(abi, platform, toolchain)]
        if cv is not None:
            cfg.append(f"-DOpenCV_DIR={opencv_config_dir(cv)}")
        _run(cfg, None, progress, what=f"runner {abi} {platform} configure")
        _run(["cmake", "--build", str(build), "-j", JOBS], None, progress,
             what=f"runner {abi} {platform}")
        # Video plugin first: the binary's presence marks a complete build.
        if (build / "libswap_video.so").exists():
            shutil.copy2(build / "libswap_video.so", out_dir / "libswap_video.so.tmp")
            os.replace(out_dir / "libswap_video.so.tmp", out_dir / "libswap_video.so")
        tmp = out_dir / "swap_runner.tmp"
        shutil.copy2(build / "swap_runner", tmp)
        os.replace(tmp, binary)
        shutil.rmtree(build, ignore_errors=True)
        progress(f"[build] swap_runner {abi} {platform}: built in {time.monotonic() - t0:.0f} s "
                 f"({_children_cpu_s() - cpu0:.0f} CPU s)")
        return binary


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--abi", default="x86_64", choices=ABIS)
    ap.add_argument("--platform", choices=PLATFORMS, default=None,
                    help="android: static phone/emulator build; linux: this host's glibc build "
                         "(default: android for arm64-v8a, linux for x86_64)")
    ap.add_argument("--toolchain", choices=TOOLCHAINS, default="zig",
                    help="android builds: zig (offline, default) or ndk ($ANDROID_NDK_HOME)")
    ap.add_argument("--ncnn-only", action="store_true", help="build (or reuse) ncnn only")
    args = ap.parse_args(argv)
    platform = args.platform or default_platform(args.abi)

    def log(m: str) -> None:  # stdout carries only the path
        print(m, file=sys.stderr, flush=True)

    try:
        check_target(args.abi, platform, args.toolchain)
        if args.ncnn_only:
            with _Lock(lock_path(args.abi, platform)):
                print(build_ncnn(args.abi, log, platform, args.toolchain))
        else:
            print(build_runner(args.abi, log, platform, args.toolchain))
    except BuildError as e:
        print(f"build.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
