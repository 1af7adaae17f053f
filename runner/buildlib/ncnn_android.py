"""ncnn's options for the Android builds (on top of build.py's NCNN_COMMON).

Phones: one binary for every core the lab meets, so ncnn picks kernels at run time
(NCNN_RUNTIME_CPU; cpu.h: cpu_support_arm_asimdhp/asimddp, cpu_support_x86_avx/fma ...;
the runner's build info lists what it picked). simpleomp: ncnn's own OpenMP runtime on
pthreads, so no shared libgomp/libomp is needed on the device.
"""
from __future__ import annotations

COMMON = ["-DNCNN_RUNTIME_CPU=ON", "-DNCNN_SIMPLEOMP=ON", "-DNCNN_SIMPLEOCV=OFF"]

PER_ABI = {
    # ARMv8.2 fp16 and dotprod kernels (Cortex-A55/A76/A78: Snapdragon 6 Gen 1 and most
    # phones since 2019). fp16fml/bf16/i8mm/SVE would double ncnn's build time for kernels
    # the lab's models (fp32) do not use.
    "arm64-v8a": ["-DNCNN_ARM82=ON", "-DNCNN_ARM82DOT=ON", "-DNCNN_ARM82FP16FML=OFF",
                  "-DNCNN_ARM84BF16=OFF", "-DNCNN_ARM84I8MM=OFF", "-DNCNN_ARM86SVE=OFF"],
    # x86_64 emulators run on the developer's CPU: SSE2 base, AVX and FMA/AVX2 kernels
    # picked at run time; AVX512/VNNI variants left out (build time).
    "x86_64": ["-DNCNN_AVX=ON", "-DNCNN_FMA=ON", "-DNCNN_F16C=ON", "-DNCNN_AVX2=ON",
               "-DNCNN_AVX512=OFF", "-DNCNN_AVXVNNI=OFF", "-DNCNN_AVXVNNIINT8=OFF",
               "-DNCNN_AVXVNNIINT16=OFF", "-DNCNN_AVXNECONVERT=OFF",
               "-DNCNN_XOP=OFF", "-DNCNN_FMA4=OFF"],
}


def flags(abi: str) -> list[str]:
    return [*COMMON, *PER_ABI[abi]]
