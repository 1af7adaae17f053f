"""Static OpenCV for the Android builds, from the opencv-python sdist (PyPI).

The sdist carries OpenCV's whole C++ source under `opencv-python-<ver>/opencv/`. Only
the modules swap_runner links are built (runner/src: core, imgproc, photo; images are
decoded with stb_image, video is a plugin that phone builds lack), with every optional
dependency off: no codecs, no IPP/ITT/OpenCL/OpenMP/TBB/Eigen/LAPACK, no apps or tests.
That keeps a cold build to a few minutes on 2 cores.

4.6.0 is the version of Debian 12's libopencv (the host build), so both builds run the
same resize/warpAffine/seamlessClone code and differ only by compiler and ISA.
"""
from __future__ import annotations

OPENCV_VERSION = "4.6.0"
PYPI_VERSION = "4.6.0.66"
SDIST = f"opencv-python-{PYPI_VERSION}.tar.gz"
#: sha256 of opencv-python-4.6.0.66.tar.gz as served by the index (checked after download)
SDIST_SHA256 = "c5bfae41ad4031e66bb10ec4a0a2ffd3e514d092652781e8b1ac98d1b59f1158"
#: the folder inside the sdist that holds OpenCV's CMake project
SOURCE_PREFIX = f"opencv-python-{PYPI_VERSION}/opencv/"

MODULES = ("core", "imgproc", "photo")

COMMON = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DBUILD_SHARED_LIBS=OFF",
    f"-DBUILD_LIST={','.join(MODULES)}",
    "-DBUILD_opencv_apps=OFF", "-DBUILD_TESTS=OFF", "-DBUILD_PERF_TESTS=OFF",
    "-DBUILD_EXAMPLES=OFF", "-DBUILD_DOCS=OFF", "-DBUILD_JAVA=OFF", "-DBUILD_ANDROID_PROJECTS=OFF",
    "-DBUILD_opencv_python2=OFF", "-DBUILD_opencv_python3=OFF", "-DBUILD_FAT_JAVA_LIB=OFF",
    "-DOPENCV_GENERATE_PKGCONFIG=OFF", "-DOPENCV_FORCE_3RDPARTY_BUILD=OFF",
    "-DBUILD_ZLIB=ON",  # core's persistence needs zlib; its own copy, never the host's
    "-DWITH_IPP=OFF", "-DWITH_ITT=OFF", "-DWITH_OPENCL=OFF", "-DWITH_OPENMP=OFF",
    "-DWITH_TBB=OFF", "-DWITH_EIGEN=OFF", "-DWITH_LAPACK=OFF", "-DWITH_CUDA=OFF",
    "-DWITH_VA=OFF", "-DWITH_VA_INTEL=OFF", "-DWITH_PROTOBUF=OFF", "-DWITH_ADE=OFF",
    "-DWITH_JPEG=OFF", "-DWITH_PNG=OFF", "-DWITH_TIFF=OFF", "-DWITH_WEBP=OFF",
    "-DWITH_OPENJPEG=OFF", "-DWITH_JASPER=OFF", "-DWITH_OPENEXR=OFF", "-DWITH_IMGCODEC_HDR=OFF",
    "-DWITH_FFMPEG=OFF", "-DWITH_GSTREAMER=OFF", "-DWITH_V4L=OFF", "-DWITH_1394=OFF",
    "-DWITH_GTK=OFF", "-DWITH_QT=OFF", "-DWITH_VTK=OFF", "-DWITH_QUIRC=OFF",
    "-DWITH_CAROTENE=OFF",  # NVIDIA's ARM HAL: a second code path the host build lacks
    "-DWITH_PTHREADS_PF=ON",  # cv::parallel_for_ on plain pthreads
    "-DCV_TRACE=OFF", "-DENABLE_PRECOMPILED_HEADERS=OFF",
]


def flags(abi: str) -> list[str]:
    """OpenCV's CMake options for one ABI (toolchain flags come from build.py)."""
    if abi == "arm64-v8a":
        # NEON baseline; the FP16 dispatch only covers a few conversions, not worth its build.
        isa = ["-DCPU_BASELINE=NEON", "-DCPU_DISPATCH="]
    elif abi == "x86_64":
        # SSE3 baseline as the x86_64 Android ABI guarantees (SSSE3, SSE4.1/4.2 on every
        # x86_64 Android device); AVX2 kernels chosen at run time, as Debian's build does.
        isa = ["-DCPU_BASELINE=SSE3", "-DCPU_DISPATCH=SSE4_1;AVX;AVX2"]
    else:
        raise ValueError(f"unknown abi {abi!r}")
    return [*COMMON, *isa]
