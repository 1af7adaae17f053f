#include "telemetry.h"

#include <cstdlib>
#include <cstring>

#include <opencv2/core/version.hpp>
#include <cpu.h>       // ncnn: cpu_support_* (what its run-time dispatch sees)
#include <platform.h>  // ncnn: NCNN_VERSION_STRING, NCNN_RUNTIME_CPU, NCNN_ARM82 ...

#include "common.h"

#ifndef SWAPLAB_ABI
#define SWAPLAB_ABI "unknown"
#endif
#ifndef SWAPLAB_ISA
#define SWAPLAB_ISA ""
#endif
#ifndef SWAPLAB_PLATFORM
#define SWAPLAB_PLATFORM "linux"
#endif
#ifndef SWAPLAB_BUILD_TYPE
#define SWAPLAB_BUILD_TYPE "Release"
#endif

void TelemetryWriter::open(const std::string& path)
{
    if (path == "-" || path.empty())
    {
        f = stdout;
        own = false;
        return;
    }
    f = fopen(path.c_str(), "w");
    if (!f)
        throw RunnerError(EXIT_USAGE, "--telemetry " + path + ": cannot open for writing: " + strerror(errno));
    own = true;
}

void TelemetryWriter::write(const nlohmann::ordered_json& j)
{
    // One line per record, flushed: a killed run keeps every frame already measured.
    std::string s = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    s.push_back('\n');
    fwrite(s.data(), 1, s.size(), f);
    fflush(f);
}

void TelemetryWriter::close()
{
    if (f && own)
        fclose(f);
    f = nullptr;
}

static long status_field(const char* key)
{
    FILE* fp = fopen("/proc/self/status", "r");
    if (!fp)
        return -1;
    char line[256];
    long v = -1;
    const size_t n = strlen(key);
    while (fgets(line, sizeof(line), fp))
        if (strncmp(line, key, n) == 0)
        {
            v = strtol(line + n, nullptr, 10);
            break;
        }
    fclose(fp);
    return v;
}

long rss_kb() { return status_field("VmRSS:"); }
long peak_rss_kb() { return status_field("VmHWM:"); }

// The kernel variants ncnn's layer factory picks on this CPU: a variant is used when it was
// compiled in (platform.h) and the CPU has the feature (cpu.h), the same test ncnn makes in
// create_layer_cpu(). Without NCNN_RUNTIME_CPU the compiled-in ISA is the only path.
nlohmann::ordered_json ncnn_kernels()
{
    nlohmann::ordered_json k = nlohmann::ordered_json::array();
#if defined(__aarch64__)
    k.push_back("neon");
#if NCNN_ARM82
    if (ncnn::cpu_support_arm_asimdhp()) k.push_back("asimdhp");
#endif
#if NCNN_ARM82DOT
    if (ncnn::cpu_support_arm_asimddp()) k.push_back("asimddp");
#endif
#elif defined(__x86_64__)
    k.push_back("sse2");
#if NCNN_AVX
    if (ncnn::cpu_support_x86_avx()) k.push_back("avx");
#endif
#if NCNN_FMA
    if (ncnn::cpu_support_x86_fma()) k.push_back("fma");
#endif
#if NCNN_AVX2
    if (ncnn::cpu_support_x86_avx2()) k.push_back("avx2");
#endif
#if NCNN_AVX512
    if (ncnn::cpu_support_x86_avx512()) k.push_back("avx512");
#endif
#endif
    return k;
}

nlohmann::ordered_json build_info(int threads)
{
    nlohmann::ordered_json b;
#if defined(__clang__)
    b["compiler"] = std::string("Clang ") + __clang_version__;
#elif defined(__GNUC__)
    b["compiler"] = "GCC " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." + std::to_string(__GNUC_PATCHLEVEL__);
#else
    b["compiler"] = "unknown";
#endif
    b["ncnn_version"] = NCNN_VERSION_STRING;
    b["opencv_version"] = CV_VERSION;
    b["abi"] = SWAPLAB_ABI;
    nlohmann::ordered_json isa = nlohmann::ordered_json::array();
    std::string s = SWAPLAB_ISA;
    size_t pos = 0;
    while (pos < s.size())
    {
        size_t e = s.find(',', pos);
        if (e == std::string::npos) e = s.size();
        if (e > pos) isa.push_back(s.substr(pos, e - pos));
        pos = e + 1;
    }
    b["isa"] = isa;
    b["platform"] = SWAPLAB_PLATFORM;
    b["ncnn_runtime_cpu"] = bool(NCNN_RUNTIME_CPU);
    b["ncnn_kernels"] = ncnn_kernels();
    // models.cpp keeps ncnn in fp32 (use_fp16_* = false): the models are fp32 and the
    // landmarks must agree across builds; asimdhp kernels then run their fp32 paths.
    b["ncnn_fp16"] = false;
    b["threads"] = threads;
    const char* pol = getenv("OMP_WAIT_POLICY");
    b["omp_wait_policy"] = pol ? pol : "unset";
    b["build_type"] = SWAPLAB_BUILD_TYPE;
    return b;
}
