// One frame through the pipeline (pipeline.h).
#include "pipeline.h"

#include <cmath>
#include <cstdlib>

#include <opencv2/imgproc.hpp>

#include "poisson.h"

namespace {

// Stage timer: lap(s) charges the time since the previous lap to stage s.
struct Laps
{
    int64_t* st;
    int64_t t;
    explicit Laps(int64_t* stage_ns) : st(stage_ns), t(now_ns()) {}
    void lap(Stage s)
    {
        const int64_t tn = now_ns();
        st[s] = tn - t;
        t = tn;
    }
};

cv::Mat enhance(const cv::Mat& frame, const FrameSettings& s, bool& enhanced)
{
    enhanced = s.enhance == "on" || (s.enhance == "auto" && mean_luma(frame) < s.low_light);
    if (!enhanced)
        return frame;
    cv::Mat work = frame.clone();
    retinex_enhance(work);
    return work;
}

// Detect on frame 0, every n-th frame, or when tracking was lost (reference.track);
// else the ROI follows the previous frame's mesh. False when no ROI.
bool locate_face(ModeRuntime& m, const cv::Mat& work, int index, const FrameState& track,
                 FrameResult& r)
{
    if (track.have_prev && index % m.cfg.detect_every_n_frames != 0)
    {
        r.roi = roi_from_mesh(track.prev_mesh);
        r.faces = 1;
        r.face.from_tracking = true;
        return true;
    }
    r.detected = true;
    std::vector<Detection> dets = m.detector.detect(work);
    r.faces = (int)dets.size();
    if (dets.empty())
        return false;
    r.face.det = dets[0];
    r.roi = roi_from_detection(dets[0]);
    return true;
}

// Feathered composite: alpha reaches 0 inside the Poisson region, so the edge of the solve
// never shows.
void feathered_composite(cv::Mat& target_roi, const cv::Mat& blended, const cv::Mat& feather)
{
    for (int y = 0; y < target_roi.rows; y++)
    {
        uint8_t* d = target_roi.ptr<uint8_t>(y);
        const uint8_t* b = blended.ptr<uint8_t>(y);
        const float* a = feather.ptr<float>(y);
        for (int x = 0; x < target_roi.cols; x++)
        {
            const float al = a[x];
            if (al <= 0.f)
                continue;
            for (int c = 0; c < 3; c++)
                d[3 * x + c] = (uint8_t)(d[3 * x + c] + al * (b[3 * x + c] - d[3 * x + c]) + 0.5f);
        }
    }
}

// Both solvers on the same inputs (not part of the stage times).
BlendCompare compare_blends(const cv::Mat& warped, const cv::Mat& dst, const cv::Mat& mask,
                            const DebugDump& debug)
{
    cv::Mat own, ref;
    const int64_t a0 = now_ns();
    poisson_blend(warped, dst, mask, own);
    const int64_t a1 = now_ns();
    opencv_blend(warped, dst, mask, ref);
    const int64_t a2 = now_ns();
    const double p = psnr(own, ref, cv::boundingRect(mask));
    debug.write("own.png", own);
    debug.write("ref.png", ref);
    debug.write("target.png", dst);
    return BlendCompare{a1 - a0, a2 - a1, std::isfinite(p) ? p : 99.0};
}

// Align, warp, color, mask, blend: the source face into `work` (copied to r.output).
void swap_face(ModeRuntime& m, const cv::Mat& work, const FrameSettings& s, Laps& laps,
               FrameResult& r)
{
    // Align: source 68 points -> target 68 points.
    cv::Mat M = estimate_transform(m.source.lm68, r.face.lm68, s.affine);
    cv::Rect box = face_roi(r.face.lm68, work.size(), 0.15f);
    laps.lap(ST_ALIGN);

    cv::Mat warped;
    warp_face(*s.source_img, M, box, warped);
    laps.lap(ST_WARP);

    r.output = work.clone();
    cv::Mat target_roi = r.output(box);
    // The face region: the target's hull where the warped source shows its own face (a
    // narrower source face would otherwise bring its background in as a strip on a cheek).
    cv::Mat hull = hull_mask(r.face.lm68, box);
    cv::bitwise_and(hull, warped_hull_mask(m.source.lm68, M, box), hull);
    r.color = color_correct(warped, target_roi, hull);
    laps.lap(ST_COLOR);

    cv::Mat person, mask, feather;
    if (m.has_seg)
        person = m.seg.run(work)(box);
    blend_mask(hull, person, mask, feather);
    laps.lap(ST_MASK);

    cv::Mat blended;
    if (s.blend == "opencv")
        opencv_blend(warped, target_roi, mask, blended);
    else
        poisson_blend(warped, target_roi, mask, blended);
    feathered_composite(target_roi, blended, feather);
    laps.lap(ST_BLEND);
    if (!s.debug.dir.empty())
    {
        s.debug.write("warped.png", warped);
        s.debug.write("mask.png", mask);
        s.debug.write("blended.png", blended);
        cv::Mat f8;
        feather.convertTo(f8, CV_8U, 255);
        s.debug.write("feather.png", f8);
    }
    if (s.blend_compare)
    {
        r.blend_compare = compare_blends(warped, work(box), mask, s.debug);
        r.has_blend_compare = true;
    }
}

} // namespace

bool find_source_face(ModeRuntime& m, const cv::Mat& src, const std::vector<int>& lm68, Roi& roi)
{
    std::vector<Detection> dets = m.detector.detect(src);
    if (dets.empty())
        return false;
    roi = roi_from_detection(dets[0]);
    m.source.det = dets[0];
    m.mesh.run(src, roi, lm68, m.source);
    return m.source.presence >= 0.5f;
}

double planted_slowdown_pct()
{
    static const double pct = [] {
        const char* v = getenv("SWAPLAB_PLANT_SLOWDOWN_PCT");
        if (!v || !*v)
            return 0.0;
        char* end = nullptr;
        const double p = strtod(v, &end);
        if (end == v || *end != '\0' || !std::isfinite(p) || p < 0 || p > 1000)
            throw RunnerError(EXIT_USAGE, std::string("SWAPLAB_PLANT_SLOWDOWN_PCT: expected a "
                                                      "percentage from 0 to 1000, got '") + v + "'");
        return p;
    }();
    return pct;
}

// The planted slowdown: spin (CPU work, like real code) for pct% of the frame's time so far,
// counted in the blend stage.
static void plant_slowdown(int64_t t0, int64_t& blend_ns)
{
    const double pct = planted_slowdown_pct();
    if (pct <= 0)
        return;
    const int64_t start = now_ns();
    const int64_t until = start + (int64_t)((double)(start - t0) * pct / 100.0);
    while (now_ns() < until)
    {
    }
    blend_ns += now_ns() - start;
}

DebugDump::DebugDump()
{
    const char* d = getenv("SWAPLAB_DEBUG_DIR");
    dir = d ? d : "";
}

void DebugDump::write(const std::string& name, const cv::Mat& img) const
{
    if (!dir.empty())
        write_image(dir + "/" + name, img);
}

FrameResult process_frame(FrameSource& frames, ModeRuntime& m, const std::string& mode, int index,
                          const FrameSettings& s, FrameState& track)
{
    FrameResult r;
    r.index = index;
    r.mode = mode;
    r.warmup = index < s.warmup;
    const int64_t t0 = now_ns();
    Laps laps(r.stage_ns);

    cv::Mat& frame = track.frame;
    frames.next(frame, r.source_frame);
    laps.lap(ST_DECODE);

    cv::Mat work = enhance(frame, s, r.enhanced);
    laps.lap(ST_ENHANCE);

    const bool have_roi = locate_face(m, work, index, track, r);
    laps.lap(ST_DETECT);

    if (have_roi)
    {
        m.mesh.run(work, r.roi, *s.lm68_from_mesh, r.face);
        r.ok = r.face.presence >= 0.5f;
    }
    laps.lap(ST_LANDMARKS);

    if (!r.ok)
    {
        // No face: the frame passes through unchanged (not even enhanced) and is counted;
        // `enhanced` says what the output got, so false here even if detection saw the
        // enhanced frame.
        r.enhanced = false;
        track.have_prev = false;
        r.faces = 0;
        r.output = frame;
    }
    else
    {
        track.prev_mesh = r.face.mesh;
        track.have_prev = true;
        if (r.faces == 0)
            r.faces = 1;
        swap_face(m, work, s, laps, r);
        plant_slowdown(t0, r.stage_ns[ST_BLEND]);
    }
    r.stage_ns[ST_TOTAL] = now_ns() - t0;
    if (!r.ok)
        for (int st = ST_LANDMARKS + 1; st < ST_TOTAL; st++)
            r.stage_ns[st] = 0;
    return r;
}
