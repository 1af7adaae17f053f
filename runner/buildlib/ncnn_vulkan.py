"""ncnn's options for the builds with the Vulkan backend (on top of build.py's NCNN_COMMON):
the x86_64 host build, and the Android build through the NDK (`--toolchain ndk`, bionic,
which can dlopen the phone's libvulkan.so; zig's static musl builds cannot).

One host build serves both backends: `--backend cpu` runs the same binary with
`opt.use_vulkan_compute = false`. NCNN_SIMPLEVK: ncnn dlopens the Vulkan loader
(libvulkan.so.1) itself at run time, so the binary starts on a machine without Vulkan and
reports "no Vulkan" instead of failing to load. glslang (shaders are compiled to SPIR-V at
run time) is the copy in ncnn's sdist. Like every ncnn build, it has only the layers the
models use (buildlib/ncnn_layers.py), so only their shaders.
"""
from __future__ import annotations


def flags() -> list[str]:
    return ["-DNCNN_VULKAN=ON", "-DNCNN_SIMPLEVK=ON", "-DNCNN_SYSTEM_GLSLANG=OFF"]
