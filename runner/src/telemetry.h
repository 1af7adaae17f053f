// Telemetry: JSON lines, schema "swaplab.telemetry/2" (runner/README.md), plus process facts.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

#include <nlohmann/json.hpp>

// /2 adds fields only (per_face, faces_swapped, detector, light_luma, backend lines, the
// summary's backend/vulkan, ...): a reader of /1 that ignores unknown fields reads /2.
static const char* const kSchema = "swaplab.telemetry/2";
// `convert` (YUV -> BGR of camera input; 0 for images and video) came after schema 1's first
// stages; readers treat a missing stage as 0 (runner/README.md).
// transfer (schema 2): host<->device copies of the nets on Vulkan (backend.h), taken out of
// the stage that ran the net; inside `total`, listed after it so the pipeline order stays.
static const char* const kStages[] = {"decode", "convert", "enhance", "detect", "landmarks", "align",
                                      "warp",   "color",   "mask",    "blend",  "total",   "transfer"};
enum Stage { ST_DECODE, ST_CONVERT, ST_ENHANCE, ST_DETECT, ST_LANDMARKS, ST_ALIGN, ST_WARP, ST_COLOR, ST_MASK, ST_BLEND, ST_TOTAL, ST_TRANSFER, ST_COUNT };

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

// --- the JSON lines (runner/README.md): one function per record type -------------------
struct FrameResult;
struct ModeSwitch;
struct FallbackStep;
struct Face;
struct Roi;

// {"type": "frame", ...}: what the frame cost per stage and found; rss_kb / temp_c < 0 or
// NAN: null.
nlohmann::ordered_json frame_json(const FrameResult& r, long rss_kb, double temp_c);

// {"type": "mode_switch", ...}: the thermal fallback changed the mode before this frame.
nlohmann::ordered_json mode_switch_json(const ModeSwitch& sw);

// {"type": "fallback_switch", ...}: the thermal fallback moved (or skipped) its fps or gpu
// rung before this frame.
nlohmann::ordered_json fallback_switch_json(const FallbackStep& st);

struct RunSummary
{
    std::string mode, blend, final_mode;
    int threads = 1, frames = 0, warmup_frames = 0, mode_switches = 0;
    int frames_without_face = 0, frames_without_face_total = 0;
    int frames_dropped = 0, frames_dropped_total = 0, fallback_switches = 0;  // camera pacing
    double camera_fps = 0;
    double model_load_ms = 0, source_ms = 0, first_frame_ms = 0, wall_ms = 0;
    std::string faces_policy, smoothing, detector_fallback;  // --faces, --smooth, model id or ""
};

// {"type": "summary", ...}: the last line (build info, load and first-frame times, peak RSS).
nlohmann::ordered_json summary_json(const RunSummary& s);

// --dump-landmarks lines: the source face of a mode, and a frame's face (if any).
nlohmann::ordered_json source_landmarks_json(const std::string& mode, const Face& f, const Roi& roi);
nlohmann::ordered_json frame_landmarks_json(const FrameResult& r);
