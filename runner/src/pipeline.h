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
#include "occluders.h"
#include "smoothing.h"
#include "placement.h"
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
    bool keep_glasses = false;  // base mode: the target's glasses stay on top (occluders.h)
    // Full-range detector run when this mode's short-range one finds nothing on a frame
    // (small and distant faces; `--small-faces full-range`).
    FaceDetector fallback;
    bool has_fallback = false;
    bool fallback_tiles = false;  // then also on 2x2 tiles (`--small-faces tiles`)
    bool fallback_always = false; // also when the mode's detector found faces (`--small-faces always`)
    // `--small-faces always-tiles` (group photos): on every detection frame the full-range
    // detector on the frame and on 2x2 tiles beside the mode's (base mode too: its own
    // detector is the full-range one).
    bool tiles_always = false;
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
    std::string faces = "all";  // all | largest | best (faces_select.h)
    bool smooth = true;         // One Euro filter on the 68 points of a continuing face
    OneEuroParams smoothing;
    DebugDump debug;
    Placement* placement = nullptr;  // per-net CPU sets (placement.h); null = none
};

// A face followed from one frame to the next: its mesh (the next ROI on tracked frames), its
// centre (to match the next frame's detections) and its landmark filter.
struct FaceTrack
{
    std::vector<cv::Point3f> mesh;
    cv::Point2f centre;
    double eye_px = 0;
    OneEuroState filter;
};

// What one frame hands the next: the faces it swapped (tracking gives the next ROIs), the
// decode buffer and the YUV -> BGR buffer (reused, as a camera pipeline would).
struct FrameState
{
    std::vector<FaceTrack> tracks;  // faces swapped in the previous frame
    int fallback_wait = 0;  // detection frames to skip the small-face passes (none found)
    cv::Mat frame;
    cv::Mat converted;
    void reset() { tracks.clear(); }  // the next frame starts with a fresh detection
};

struct BlendCompare
{
    int64_t own_ns = 0, opencv_ns = 0;
    double psnr_db = 0;
};

// One face of a frame: found (detected or tracked), maybe selected, maybe swapped.
struct FaceResult
{
    Face face;
    Roi roi;
    bool detected = false;   // from this frame's detector (else tracked from the previous mesh)
    bool selected = false;   // asked for by --faces
    bool swapped = false;    // mesh presence >= 0.5 and pasted
    bool smoothed = false;   // lm68_swap went through the One Euro filter
    int track = -1;          // index of the previous frame's face it continues, -1 = new
    std::vector<cv::Point2f> lm68_swap;  // the 68 points align and mask use (smoothed)
    OneEuroState filter;                 // the landmark filter after this frame
    ColorResult color;
    GlassesResult glasses;  // base mode: the target's glasses kept out of the composite
    int64_t stage_ns[ST_COUNT] = {0};  // landmarks .. blend of this face
};

struct FrameResult
{
    int index = 0, source_frame = 0, faces = 0, faces_swapped = 0;
    FrameClock::Tick camera;  // camera-like pacing (camera.h); camera_frame -1 without a clock
    std::string mode;
    bool warmup = false, enhanced = false, detected = false, ok = false;
    std::string detector;      // model that found the faces ("" on tracked frames)
    bool detect_tiled = false; // found by the fallback on 2x2 tiles of the frame
    double light_luma = -1;    // luma the auto enhance decision used (< 0: no decision)
    std::string light_region;  // "faces" or "frame"
    int64_t stage_ns[ST_COUNT] = {0};  // sums over faces; stages after landmarks are 0 when !ok
    ColorResult color;  // the first swapped face's
    bool has_blend_compare = false;
    BlendCompare blend_compare;
    Face face;  // the first swapped face (landmark dump)
    Roi roi;
    std::vector<FaceResult> per_face;  // every face found, selected or not
    cv::Mat output;  // the swapped frame (the input frame unchanged when no face)
};

FrameResult process_frame(FrameSource& frames, ModeRuntime& m, const std::string& mode, int index,
                          const FrameSettings& s, FrameState& track);
