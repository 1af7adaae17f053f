#include "telemetry.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <opencv2/core/version.hpp>
#include <cpu.h>       // ncnn: cpu_support_* (what its run-time dispatch sees)
#include <platform.h>  // ncnn: NCNN_VERSION_STRING, NCNN_RUNTIME_CPU, NCNN_ARM82 ...

#include "common.h"
#include "pipeline.h"
#include "thermal.h"

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
    // NCNN_SIMPLEVK: the loader is dlopened when a net asks for Vulkan (backend.h).
    b["vulkan"] = NCNN_VULKAN ? "built" : "not built";
    b["threads"] = threads;
    const char* pol = getenv("OMP_WAIT_POLICY");
    b["omp_wait_policy"] = pol ? pol : "unset";
    b["build_type"] = SWAPLAB_BUILD_TYPE;
    if (planted_slowdown_pct() > 0)
        b["planted_slowdown_pct"] = planted_slowdown_pct();
    return b;
}

// --- the JSON lines ----------------------------------------------------------------------

using ojson = nlohmann::ordered_json;

static ojson pts_json(const std::vector<cv::Point2f>& pts)
{
    ojson a = ojson::array();
    for (const auto& p : pts)
        a.push_back({p.x, p.y});
    return a;
}

static ojson face_json(const Face& f, const Roi& roi, bool detected)
{
    ojson j;
    if (detected)
    {
        ojson kp = ojson::array();
        for (const auto& p : f.det.keypoints)
            kp.push_back({p.x, p.y});
        j["detection"] = {{"score", f.det.score},
                          {"box", {f.det.box.x, f.det.box.y, f.det.box.x + f.det.box.width, f.det.box.y + f.det.box.height}},
                          {"keypoints", kp}};
    }
    else
        j["detection"] = nullptr;
    j["roi"] = {{"cx", roi.cx}, {"cy", roi.cy}, {"width", roi.width}, {"height", roi.height}, {"rotation", roi.rotation}};
    j["presence"] = f.presence;
    j["lm68"] = pts_json(f.lm68);
    ojson mesh = ojson::array();
    for (const auto& p : f.mesh)
        mesh.push_back({p.x, p.y, p.z});
    j["mesh"] = mesh;
    return j;
}

static ojson box_json(const cv::Rect2f& b)
{
    return {b.x, b.y, b.x + b.width, b.y + b.height};
}

static ojson points_box_json(const std::vector<cv::Point2f>& pts)
{
    float x0 = 1e30f, y0 = 1e30f, x1 = -1e30f, y1 = -1e30f;
    for (const cv::Point2f& p : pts)
    {
        x0 = std::min(x0, p.x); y0 = std::min(y0, p.y);
        x1 = std::max(x1, p.x); y1 = std::max(y1, p.y);
    }
    return pts.empty() ? ojson{0, 0, 0, 0} : ojson{x0, y0, x1, y1};
}

// Schema /2: what each face of the frame got (runner/README.md, "per_face").
static void add_faces_json(ojson& rec, const FrameResult& r)
{
    rec["faces_swapped"] = r.faces_swapped;
    rec["detector"] = r.detector.empty() ? ojson(nullptr) : ojson(r.detector);
    rec["detect_tiled"] = r.detect_tiled;
    rec["light_luma"] = r.light_luma >= 0 ? ojson(r.light_luma) : ojson(nullptr);
    rec["light_region"] = r.light_region.empty() ? ojson(nullptr) : ojson(r.light_region);
    ojson faces = ojson::array();
    for (const FaceResult& f : r.per_face)
    {
        ojson j;
        // Detected: the detector's box; tracked: the box of the 68 points found.
        j["box"] = f.detected ? box_json(f.face.det.box) : points_box_json(f.face.lm68);
        j["score"] = f.detected ? ojson(f.face.det.score) : ojson(nullptr);
        j["detected"] = f.detected;
        j["selected"] = f.selected;
        j["presence"] = f.selected ? ojson(f.face.presence) : ojson(nullptr);
        j["swapped"] = f.swapped;
        j["smoothed"] = f.smoothed;
        ojson sn;
        for (int s = ST_LANDMARKS; s <= ST_BLEND; s++)
            sn[kStages[s]] = f.stage_ns[s];
        j["stage_ns"] = sn;
        if (f.swapped)
            j["color"] = {{"de_before", f.color.de_before}, {"de_after", f.color.de_after},
                          {"de_band_before", f.color.de_band_before}, {"de_band_after", f.color.de_band_after},
                          {"de_face_before", f.color.de_face_before >= 0 ? ojson(f.color.de_face_before) : ojson(nullptr)},
                          {"de_face_after", f.color.de_face_after >= 0 ? ojson(f.color.de_face_after) : ojson(nullptr)},
                          {"tone_compensated", f.color.tone_compensated}};
        // Base mode: whether the target's glasses were found and kept (occluders.h).
        j["occluder"] = f.glasses.checked ? ojson(f.glasses.found ? "glasses" : "none") : ojson(nullptr);
        j["occluder_share"] = f.glasses.checked ? ojson(f.glasses.share) : ojson(nullptr);
        j["occluder_evidence"] = f.glasses.checked ? ojson(f.glasses.bridge) : ojson(nullptr);
        faces.push_back(j);
    }
    rec["per_face"] = faces;
}

ojson frame_json(const FrameResult& r, long rss_kb, double temp_c)
{
    ojson rec;
    rec["type"] = "frame";
    rec["schema"] = kSchema;
    rec["index"] = r.index;
    rec["warmup"] = r.warmup;
    rec["source_frame"] = r.source_frame;
    rec["mode"] = r.mode;
    rec["enhanced"] = r.enhanced;
    rec["detected"] = r.detected;
    if (r.has_blend_compare)
        rec["blend_compare"] = {{"own_ns", r.blend_compare.own_ns}, {"opencv_ns", r.blend_compare.opencv_ns},
                                {"psnr_db", r.blend_compare.psnr_db}};
    rec["faces"] = r.faces;
    ojson sn;
    for (int s = 0; s < ST_COUNT; s++)
        sn[kStages[s]] = r.stage_ns[s];
    rec["stage_ns"] = sn;
    rec["de_before"] = r.ok ? ojson(r.color.de_before) : ojson(nullptr);
    rec["de_after"] = r.ok ? ojson(r.color.de_after) : ojson(nullptr);
    rec["tone_compensated"] = r.ok ? ojson(r.color.tone_compensated) : ojson(nullptr);
    rec["rss_kb"] = rss_kb >= 0 ? ojson(rss_kb) : ojson(nullptr);
    rec["temp_c"] = std::isfinite(temp_c) ? ojson(temp_c) : ojson(nullptr);
    add_faces_json(rec, r);
    if (r.camera.camera_frame >= 0)
    {
        rec["camera_frame"] = r.camera.camera_frame;
        rec["dropped"] = r.camera.dropped;
        rec["wait_ns"] = r.camera.wait_ns;
        rec["camera_fps"] = r.camera.fps;
    }
    return rec;
}

ojson mode_switch_json(const ModeSwitch& sw)
{
    return {{"type", "mode_switch"}, {"schema", kSchema}, {"index", sw.index}, {"from", sw.from},
            {"to", sw.to}, {"temp_c", sw.temp_c}, {"reason", sw.reason}};
}

ojson fallback_switch_json(const FallbackStep& st)
{
    ojson j = {{"type", "fallback_switch"}, {"schema", kSchema}, {"index", st.index}, {"rung", st.rung},
               {"from", st.from}, {"to", st.to}, {"temp_c", st.temp_c}, {"reason", st.reason},
               {"skipped", st.skipped}};
    if (st.skipped)
        j["why"] = st.why;
    return j;
}

ojson summary_json(const RunSummary& s)
{
    const long peak = peak_rss_kb();
    return {{"type", "summary"}, {"schema", kSchema}, {"build", build_info(s.threads)},
            {"mode", s.mode}, {"blend", s.blend}, {"model_load_ms", s.model_load_ms},
            {"source_ms", s.source_ms}, {"first_frame_ms", s.first_frame_ms},
            {"peak_rss_kb", peak >= 0 ? ojson(peak) : ojson(nullptr)}, {"frames", s.frames},
            {"warmup_frames", s.warmup_frames}, {"frames_without_face", s.frames_without_face},
            {"frames_without_face_total", s.frames_without_face_total},
            {"mode_switches", s.mode_switches}, {"final_mode", s.final_mode},
            {"camera_fps", s.camera_fps}, {"frames_dropped", s.frames_dropped},
            {"frames_dropped_total", s.frames_dropped_total},
            {"fallback_switches", s.fallback_switches}, {"wall_ms", s.wall_ms},
            {"faces_policy", s.faces_policy}, {"smoothing", s.smoothing},
            {"detector_fallback", s.detector_fallback.empty() ? ojson(nullptr) : ojson(s.detector_fallback)}};
}

ojson source_landmarks_json(const std::string& mode, const Face& f, const Roi& roi)
{
    ojson j = {{"type", "source"}, {"mode", mode}};
    j.update(face_json(f, roi, true));
    return j;
}

ojson frame_landmarks_json(const FrameResult& r)
{
    ojson j = {{"type", "frame"}, {"index", r.index}, {"source_frame", r.source_frame},
               {"mode", r.mode}, {"faces", r.faces}};
    if (r.ok)
        j.update(face_json(r.face, r.roi, r.detected));
    return j;
}
