// One frame through the pipeline, one function per stage: decode, enhance, detect (or track),
// landmarks, align, warp, color, mask, blend. process_frame() returns what the frame cost
// and found; telemetry.cpp turns that into the JSON line.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "common.h"
#include "face.h"
#include "frames.h"
#include "models.h"
#include "stages.h"
#include "telemetry.h"

// The models of one mode and the source face they found.
struct ModeRuntime
{
    ModeConfig cfg;
    FaceDetector detector;
    FaceMesh mesh;
    PersonSegmenter seg;
    bool has_seg = false;
    Face source;  // source face found by this mode's models
};

// Runs detection + mesh on the source image with one mode's models.
bool find_source_face(ModeRuntime& m, const cv::Mat& src, const std::vector<int>& lm68, Roi& roi);

// Calibration hook (benchmarks/host_calibration.py): $SWAPLAB_PLANT_SLOWDOWN_PCT (read once;
// unset = 0) makes every swapped frame that much slower, spent in the blend stage, so that a
// known regression of the runner can be planted. The build info reports it when set.
double planted_slowdown_pct();

// Intermediate images written to $SWAPLAB_DEBUG_DIR (read once, at start) when it is set.
struct DebugDump
{
    std::string dir;
    DebugDump();
    void write(const std::string& name, const cv::Mat& img) const;
};

// What every frame is processed with (from the options, fixed for the run).
struct FrameSettings
{
    int warmup = 0;
    std::string enhance = "auto";  // auto | on | off
    double low_light = 70;
    bool affine = false;
    std::string blend = "poisson";  // poisson | opencv
    bool blend_compare = false;
    const std::vector<int>* lm68_from_mesh = nullptr;
    const cv::Mat* source_img = nullptr;
    DebugDump debug;
};

// What one frame hands the next: the previous mesh (tracking gives the next ROI) and the
// decode buffer (reused, as a camera pipeline would).
struct FrameState
{
    bool have_prev = false;
    std::vector<cv::Point3f> prev_mesh;
    cv::Mat frame;
};

struct BlendCompare
{
    int64_t own_ns = 0, opencv_ns = 0;
    double psnr_db = 0;
};

struct FrameResult
{
    int index = 0, source_frame = 0, faces = 0;
    std::string mode;
    bool warmup = false, enhanced = false, detected = false, ok = false;
    int64_t stage_ns[ST_COUNT] = {0};  // stages after landmarks are 0 when !ok
    ColorResult color;
    bool has_blend_compare = false;
    BlendCompare blend_compare;
    Face face;
    Roi roi;
    cv::Mat output;  // the swapped frame (the input frame unchanged when no face)
};

FrameResult process_frame(FrameSource& frames, ModeRuntime& m, const std::string& mode, int index,
                          const FrameSettings& s, FrameState& track);
