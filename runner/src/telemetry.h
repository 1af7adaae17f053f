// Telemetry: JSON lines, schema "swaplab.telemetry/1" (runner/README.md), plus process facts.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

static const char* const kSchema = "swaplab.telemetry/1";
static const char* const kStages[] = {"decode", "enhance", "detect", "landmarks", "align",
                                      "warp",   "color",   "mask",   "blend",     "total"};
enum Stage { ST_DECODE, ST_ENHANCE, ST_DETECT, ST_LANDMARKS, ST_ALIGN, ST_WARP, ST_COLOR, ST_MASK, ST_BLEND, ST_TOTAL, ST_COUNT };

struct TelemetryWriter
{
    FILE* f = nullptr;
    bool own = false;
    void open(const std::string& path);  // "-" = stdout; throws RunnerError(EXIT_USAGE)
    void write(const nlohmann::ordered_json& j);
    void close();
};

// Kernel-reported resident set (VmRSS) and its peak (VmHWM), kB; -1 when unavailable.
long rss_kb();
long peak_rss_kb();

// {"compiler", "ncnn_version", "opencv_version", "abi", "isa", "platform", "ncnn_runtime_cpu",
//  "ncnn_kernels", "ncnn_fp16", "threads", "omp_wait_policy", "build_type"}
nlohmann::ordered_json build_info(int threads);
