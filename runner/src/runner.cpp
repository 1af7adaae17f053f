// swap_runner's core: swaps one source face into target frames along the mobile pipeline and
// reports what every stage cost (JSON lines, runner/README.md). One function per step of a
// run; the frame itself is pipeline.cpp, the JSON telemetry.cpp.
#include "swaplab.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include <opencv2/core.hpp>

#include "backend.h"
#include "camera.h"
#include "common.h"
#include "frames.h"
#include "models.h"
#include "options.h"
#include "pipeline.h"
#include "placement.h"
#include "telemetry.h"
#include "thermal.h"

namespace {

using ModeMap = std::map<std::string, ModeRuntime>;

// A source face with fewer pixels than this between its outer eye corners (iBUG 36, 45) is
// refused: warped up to a target face it lands misplaced (docs/quality.md, "Too small a
// source face": Grace Hopper scaled to 224 px wide, 55 px, passes every score; to 160 px, 40 px,
// and smaller fail the pose points).
constexpr double kMinSourceEyeDistancePx = 40.0;

// Inputs first (cheap checks, clear errors before any model work).
void open_inputs(const Options& o, cv::Mat& source_img, FrameSource& frames)
{
    if (!read_image(o.source, source_img))
        throw RunnerError(EXIT_INPUT, "--source " + o.source + ": cannot read image (missing, corrupt or unsupported)");
    frames.open(o.target);
    if (!o.out.empty())
    {
        mkdir(o.out.c_str(), 0755);
        struct stat st;
        if (stat(o.out.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw RunnerError(EXIT_USAGE, "--out " + o.out + ": cannot create folder");
    }
}

// Models: auto mode may visit every mode, so load them all up front (no hiccup at a switch).
ModeMap load_modes(const Options& o, ModelPack& pack, const Placement& placement, TelemetryWriter& tw)
{
    pack.load_manifest(o.models);
    std::vector<std::string> names = o.mode == "auto" ? std::vector<std::string>{"tiny", "small", "base"}
                                                      : std::vector<std::string>{o.mode};
    // Small faces: the base mode's (full-range) detector, run when a mode's finds nothing.
    const std::string full_range = pack.modes.count("base") ? pack.modes.at("base").detector : "";
    std::vector<std::string> extra;
    if (o.small_faces != "off" && !full_range.empty())
        extra.push_back(full_range);
    // CPU or Vulkan per net (backend.h); when a net asked for more than the CPU default, one
    // "backend" line per net says where it runs and why (a default run's lines stay frames).
    const BackendRequest req = parse_backend(o.backend);
    for (nlohmann::ordered_json& rec : choose_backends(pack, names, req, extra))
    {
        rec["schema"] = kSchema;
        if (req.any_gpu())
            tw.write(rec);
    }
    placement.configure(pack);
    pack.load_nets(names, placement.threads(), extra);
    ModeMap modes;
    for (const std::string& mn : names)
    {
        ModeRuntime& m = modes[mn];
        m.cfg = pack.modes.at(mn);
        m.detector.init(&pack.get(m.cfg.detector));
        m.mesh.model = &pack.get(m.cfg.landmarks);
        if (!m.cfg.segmentation.empty())
        {
            m.seg.model = &pack.get(m.cfg.segmentation);
            m.has_seg = true;
            m.keep_glasses = true;  // the occlusion-aware mode: person mask and glasses
        }
        m.tiles_always = o.small_faces == "always-tiles";
        if (!extra.empty() && m.cfg.detector != full_range)
        {
            m.fallback.init(&pack.get(full_range));
            m.fallback_tiles = o.small_faces == "tiles";
            m.fallback_always = o.small_faces == "always";
            m.has_fallback = true;
        }
    }
    return modes;
}

void find_source_faces(const Options& o, ModeMap& modes, const cv::Mat& source_img,
                       const ModelPack& pack, FILE* dump)
{
    for (auto& [mn, m] : modes)
    {
        Roi roi;
        if (!find_source_face(m, source_img, pack.lm68_from_mesh, roi))
            throw RunnerError(EXIT_INPUT, "--source " + o.source + ": no face found in the source image");
        const cv::Point2f d = m.source.lm68[45] - m.source.lm68[36];
        const double eyes_px = std::hypot(d.x, d.y);
        if (eyes_px < kMinSourceEyeDistancePx)
        {
            char msg[160];
            snprintf(msg, sizeof msg, ": source face too small (%.0f px between the outer eye corners, "
                     "minimum %.0f px)", eyes_px, kMinSourceEyeDistancePx);
            throw RunnerError(EXIT_INPUT, "--source " + o.source + msg);
        }
        if (dump)
            fprintf(dump, "%s\n", source_landmarks_json(mn, m.source, roi).dump().c_str());
    }
}

FrameSettings frame_settings(const Options& o, const ModelPack& pack, const cv::Mat& source_img)
{
    FrameSettings s;
    s.warmup = o.warmup;
    s.enhance = o.enhance;
    s.low_light = o.low_light;
    s.affine = o.align == "affine";
    s.blend = o.blend;
    s.blend_compare = o.blend_compare;
    s.lm68_from_mesh = &pack.lm68_from_mesh;
    s.source_img = &source_img;
    s.faces = o.faces;
    s.smooth = o.smooth == "one-euro";
    return s;
}

void save_output(const Options& o, const FrameResult& r)
{
    if (o.save_every <= 0 || r.index % o.save_every != 0)
        return;
    std::string p = o.out + "/out_" + std::to_string(r.index) + "." + o.out_format;
    if (!write_image(p, r.output))
        throw RunnerError(EXIT_USAGE, "--out " + p + ": cannot write image");
}

// The thermal fallback before a frame: every step in the telemetry, the new mode / frame
// rate / GPU state in force from this frame on.
void apply_fallback(int index, ModeMap& modes, ThermalFallback& thermal, FrameClock& clock,
                    TelemetryWriter& tw, FrameState& state, RunSummary& sum)
{
    GpuSwitch gpu{[&] {
                      bool moved = false;
                      for (auto& [mn, m] : modes)
                          moved = gpu_off(m) || moved;
                      return moved;
                  },
                  [&] {
                      bool moved = false;
                      for (auto& [mn, m] : modes)
                          moved = gpu_on(m) || moved;
                      return moved;
                  }};
    for (const FallbackStep& st : thermal.check(index, gpu))
    {
        if (st.rung == "mode")
        {
            tw.write(mode_switch_json(st.as_mode_switch()));
            sum.mode_switches++;
            state.reset();  // the new mode starts with a fresh detection
        }
        else
            tw.write(fallback_switch_json(st));
        sum.fallback_switches++;
    }
    if (clock.running() && thermal.fps() != clock.fps())
        clock.set_fps(thermal.fps());
}

// The frame loop: warm-up + measured frames, each at the camera's rate (when paced), the
// thermal fallback before each.
void run_frames(const Options& o, ModeMap& modes, FrameSource& frames, const FrameSettings& fs,
                ThermalFallback& thermal, TelemetryWriter& tw, FILE* dump, RunSummary& sum)
{
    FrameState state;
    FrameClock clock(o.camera_fps);
    for (int index = 0; index < o.warmup + o.frames; index++)
    {
        apply_fallback(index, modes, thermal, clock, tw, state, sum);
        const FrameClock::Tick tick = clock.next();
        FrameResult r = process_frame(frames, modes.at(thermal.mode()), thermal.mode(), index, fs, state);
        r.camera = tick;
        if (!r.ok)
        {
            sum.frames_without_face_total++;
            if (!r.warmup)
                sum.frames_without_face++;
        }
        sum.frames_dropped_total += tick.dropped;
        if (!r.warmup)
            sum.frames_dropped += tick.dropped;
        if (index == 0)
            sum.first_frame_ms = r.stage_ns[ST_TOTAL] / 1e6;
        tw.write(frame_json(r, rss_kb(), thermal.temp_c()));
        if (dump)
            fprintf(dump, "%s\n", frame_landmarks_json(r).dump().c_str());
        save_output(o, r);
    }
}

int run(int argc, char** argv)
{
    const int64_t t_start = now_ns();
    Options o = parse_args(argc, argv);
    if (o.version)
    {
        printf("%s\n", build_info(o.threads).dump().c_str());
        return 0;
    }
    if (!o.cpu_affinity.empty())
        set_affinity(o.cpu_affinity);
    Placement placement(o.threads, o.placement);  // threads clamped to the CPUs we have
    cv::setNumThreads(placement.threads());

    cv::Mat source_img;
    FrameSource frames;
    open_inputs(o, source_img, frames);
    ThermalFallback thermal(o.thermal_source, o.mode, o.thermal_every, o.thermal_limit, o.thermal_hyst,
                            o.thermal_fallback, o.camera_fps, o.thermal_fps_low);
    TelemetryWriter tw;
    tw.open(o.telemetry);
    FILE* dump = nullptr;
    if (!o.dump_landmarks.empty() && !(dump = fopen(o.dump_landmarks.c_str(), "w")))
        throw RunnerError(EXIT_USAGE, "--dump-landmarks " + o.dump_landmarks + ": cannot open for writing");

    RunSummary sum;
    const int64_t t_load = now_ns();
    VulkanSession vulkan;  // declared before the nets: the GPU instance outlives them
    ModelPack pack;
    ModeMap modes = load_modes(o, pack, placement, tw);
    sum.model_load_ms = (now_ns() - t_load) / 1e6;
    const int64_t t_src = now_ns();
    find_source_faces(o, modes, source_img, pack, dump);
    sum.source_ms = (now_ns() - t_src) / 1e6;

    FrameSettings fs = frame_settings(o, pack, source_img);
    fs.placement = &placement;
    run_frames(o, modes, frames, fs, thermal, tw, dump, sum);

    sum.mode = o.mode;
    sum.blend = o.blend;
    sum.threads = placement.threads();
    sum.frames = o.frames;
    sum.warmup_frames = o.warmup;
    sum.final_mode = thermal.mode();
    sum.faces_policy = o.faces;
    sum.smoothing = o.smooth;
    for (const auto& [mn, m] : modes)
        if (m.has_fallback)
            sum.detector_fallback = m.fallback.model->id;
    sum.camera_fps = o.camera_fps;
    sum.wall_ms = (now_ns() - t_start) / 1e6;
    nlohmann::ordered_json summary = summary_json(sum);
    summary["placement"] = placement.describe();
    summary.update(backend_summary(pack));
    tw.write(summary);
    tw.close();
    if (dump)
        fclose(dump);
    return 0;
}

std::string one_line(std::string s)
{
    for (char& c : s)
        if (c == '\n' || c == '\r')
            c = ' ';
    return s;
}

} // namespace

int swaplab_run(int argc, char** argv)
{
    // libgomp reads OMP_WAIT_POLICY once, when it is loaded (before main). Its default
    // spin-wait collapses on shared CPUs (10 ms -> 800 ms seen), so when the caller did not
    // choose, re-exec ourselves with PASSIVE. Under qemu-user (no binfmt) exec fails; then we
    // carry on and report the policy as "unset". (No /proc on iOS: the exec fails there too.)
    if (!getenv("OMP_WAIT_POLICY") && !getenv("SWAPLAB_NO_REEXEC"))
    {
        setenv("OMP_WAIT_POLICY", "PASSIVE", 1);
        setenv("SWAPLAB_NO_REEXEC", "1", 1);
        execv("/proc/self/exe", argv);
        unsetenv("OMP_WAIT_POLICY");
    }
    try
    {
        return run(argc, argv);
    }
    catch (const RunnerError& e)
    {
        fprintf(stderr, "swap_runner: error: %s\n", one_line(e.what()).c_str());
        return e.code;
    }
    catch (const cv::Exception& e)
    {
        fprintf(stderr, "swap_runner: error: internal OpenCV error: %s\n", one_line(e.what()).c_str());
        return 1;
    }
    catch (const std::exception& e)
    {
        fprintf(stderr, "swap_runner: error: internal error: %s\n", one_line(e.what()).c_str());
        return 1;
    }
}
