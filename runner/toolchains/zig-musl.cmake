# Static Linux/musl builds with zig's clang (the offline Android route, runner/buildlib/zig.py).
# runner/build.py passes SWAPLAB_ZIG_BIN (folder of its cc/c++/ar/ranlib wrappers) and
# SWAPLAB_ZIG_ARCH (aarch64 | x86_64).
set(CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SWAPLAB_ZIG_BIN SWAPLAB_ZIG_ARCH)
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${SWAPLAB_ZIG_ARCH})
set(CMAKE_C_COMPILER ${SWAPLAB_ZIG_BIN}/cc)
set(CMAKE_CXX_COMPILER ${SWAPLAB_ZIG_BIN}/c++)
set(CMAKE_AR ${SWAPLAB_ZIG_BIN}/ar CACHE FILEPATH "zig ar")
set(CMAKE_RANLIB ${SWAPLAB_ZIG_BIN}/ranlib CACHE FILEPATH "zig ranlib")
# Fully static executables: no program interpreter, no NEEDED (a phone has no glibc).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
# Never pick up this host's (glibc, x86_64) headers or libraries: only the prefixes we pass
# (static ncnn, static OpenCV) through <pkg>_DIR / CMAKE_PREFIX_PATH.
set(CMAKE_FIND_ROOT_PATH ${SWAPLAB_ZIG_BIN})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
if(SWAPLAB_ZIG_ARCH STREQUAL "aarch64")
    set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64-static;-cpu;max)
endif()
