// One frame through the pipeline (pipeline.h).
#include "pipeline.h"

#include <cmath>
#include <cstdlib>

#include <opencv2/imgproc.hpp>

#include "faces_select.h"
#include "backend.h"
#include "poisson.h"

namespace {

// Stage timer: lap(s) adds the time since the previous lap to stage s (a stage may be
// entered twice, e.g. enhance before a retried detection).
struct Laps
{
    int64_t* st;
    int64_t t;
    explicit Laps(int64_t* stage_ns) : st(stage_ns), t(now_ns()) { take_transfer_ns(); }
    void lap(Stage s)
    {
        const int64_t tn = now_ns();
        // A net on Vulkan: its host<->device copies go to their own stage.
        const int64_t x = take_transfer_ns();
        st[s] += tn - t - x;
        st[ST_TRANSFER] += x;
        t = tn;
    }
    void restart() { t = now_ns(); }
};

// The CPU set of the net about to run ("" = back to the process's set).
void place(const FrameSettings& s, const char* role)
{
    if (s.placement)
        s.placement->enter(role);
}

cv::Mat enhanced_copy(const cv::Mat& frame)
{
    cv::Mat work = frame.clone();
    retinex_enhance(work);
    return work;
}

// A face to run the mesh on: from this frame's detector or from a previous face's mesh.
FaceResult candidate(const Roi& roi, const Detection* det, int track)
{
    FaceResult f;
    f.roi = roi;
    f.detected = det != nullptr;
    if (det)
        f.face.det = *det;
    f.face.from_tracking = !det;
    f.track = track;
    return f;
}

cv::Point2f det_centre(const Detection& d)
{
    return (d.keypoints[0] + d.keypoints[1]) * 0.5f;  // between the eyes, as FaceTrack::centre
}

// The detector of the mode; when it finds nothing, the small-face passes: the full-range
// detector on the frame, then (`--small-faces tiles`) on 2x2 overlapping tiles (each face
// ~1.7x larger in the detector's input; 4 more full-range runs). When those find nothing either they rest for the next
// kFallbackRest detection frames (an empty scene must not pay them on every frame).
constexpr int kFallbackRest = 4;

// `detector` on the 2x2 tiles of the frame (small_face_tiles), in frame pixels, not merged.
std::vector<Detection> detect_on_tiles(const FaceDetector& detector, const cv::Mat& img)
{
    std::vector<Detection> all;
    for (const cv::Rect& t : small_face_tiles(img.size(), detector.model->input.width))
        for (Detection d : detector.detect(img(t)))
        {
            d.box.x += t.x;
            d.box.y += t.y;
            for (cv::Point2f& k : d.keypoints)
                k += cv::Point2f((float)t.x, (float)t.y);
            all.push_back(std::move(d));
        }
    return all;
}

// `--small-faces always-tiles`: a group photo's back row is too small for any detector on
// the whole frame (1280x720: the full-range one finds faces from ~36 px between the eyes),
// and the passes above never run once the front row is found. Here the mode's detector,
// the full-range one on the frame and on 2x2 tiles (faces 1.7x larger in its input) run on
// every detection frame and their lists are merged: up to 6 detector runs.
std::vector<Detection> detect_everywhere(const ModeRuntime& m, const cv::Mat& img, FrameResult& r)
{
    const FaceDetector& full = m.has_fallback ? m.fallback : m.detector;
    std::vector<Detection> dets = m.detector.detect(img);
    const size_t found = dets.size();
    if (m.has_fallback)
        for (Detection& d : m.fallback.detect(img))
            dets.push_back(std::move(d));
    const size_t untiled = merge_detections(dets).size();
    for (Detection& d : detect_on_tiles(full, img))
        dets.push_back(std::move(d));
    dets = merge_detections(std::move(dets));
    if (m.has_fallback && dets.size() > found)
        r.detector += "+" + m.fallback.model->id;
    r.detect_tiled = dets.size() > untiled;
    return dets;
}

std::vector<Detection> detect_faces(const ModeRuntime& m, const cv::Mat& img, FrameState& track,
                                    FrameResult& r)
{
    r.detector = m.detector.model->id;
    if (m.tiles_always)
        return detect_everywhere(m, img, r);
    std::vector<Detection> dets = m.detector.detect(img);
    if (!dets.empty() && m.fallback_always)
    {
        // A small face beside a large one: the short-range detector found the large one,
        // so the small-face pass below never runs for it. `--small-faces always` runs the full-range detector
        // on every detection frame; a face both found (IoU > 0.3) keeps the better box.
        const size_t found = dets.size();
        for (Detection& d : m.fallback.detect(img))
            dets.push_back(std::move(d));
        dets = merge_detections(std::move(dets));
        if (dets.size() > found)
            r.detector += "+" + m.fallback.model->id;
        return dets;
    }
    if (!dets.empty() || !m.has_fallback)
        return dets;
    if (track.fallback_wait > 0)
    {
        track.fallback_wait--;
        return dets;
    }
    r.detector = m.fallback.model->id;
    dets = m.fallback.detect(img);
    if (dets.empty() && m.fallback_tiles)
    {
        dets = merge_detections(detect_on_tiles(m.fallback, img));
        r.detect_tiled = !dets.empty();
    }
    track.fallback_wait = dets.empty() ? kFallbackRest : 0;
    return dets;
}

// Faces of this frame: tracked from the previous frame's meshes (tiny mode between
// detections), else detected (frame 0, every n-th frame, or tracking lost). Each detection
// the policy asks for is matched to the previous frame's faces so its smoothing carries on.
// `work` may become the enhanced frame (auto mode: a dark frame where nothing was found is
// enhanced and searched again).
std::vector<FaceResult> locate_faces(const ModeRuntime& m, const cv::Mat& frame, cv::Mat& work,
                                     int index, const FrameSettings& s, FrameState& track,
                                     Laps& laps, FrameResult& r)
{
    std::vector<FaceResult> found;
    if (!track.tracks.empty() && index % m.cfg.detect_every_n_frames != 0)
    {
        for (int i = 0; i < (int)track.tracks.size(); i++)
        {
            found.push_back(candidate(roi_from_mesh(track.tracks[i].mesh), nullptr, i));
            found.back().selected = true;
        }
        r.faces = (int)found.size();
        return found;
    }
    r.detected = true;
    std::vector<Detection> dets = detect_faces(m, work, track, r);
    if (dets.empty() && s.enhance == "auto" && !r.enhanced && mean_luma(frame) < s.low_light)
    {
        laps.lap(ST_DETECT);
        cv::Mat dark = enhanced_copy(frame);
        laps.lap(ST_ENHANCE);
        dets = detect_faces(m, dark, track, r);
        if (!dets.empty())
        {
            work = dark;
            r.enhanced = true;
            r.light_luma = mean_luma(frame);
            r.light_region = "frame";
        }
    }
    r.faces = (int)dets.size();
    std::vector<cv::Point2f> previous;
    for (const FaceTrack& t : track.tracks)
        previous.push_back(t.centre);
    std::vector<bool> taken(previous.size(), false);
    std::vector<bool> asked(dets.size(), false);
    for (int i : select_faces(dets, s.faces))
        asked[i] = true;
    for (int i = 0; i < (int)dets.size(); i++)
    {
        int t = -1;
        if (asked[i])
        {
            const cv::Point2f d = dets[i].keypoints[1] - dets[i].keypoints[0];
            t = match_previous(previous, taken, det_centre(dets[i]), 0.5 * std::hypot(d.x, d.y));
            if (t >= 0)
                taken[t] = true;
        }
        found.push_back(candidate(roi_from_detection(dets[i]), &dets[i], t));
        found.back().selected = asked[i];
    }
    return found;
}

// Auto mode: enhance when the faces found are dark (their boxes' mean luma), not the frame
// (a dark suit or background must not trigger it, nor a bright window hide a dark face).
void decide_enhance(const cv::Mat& frame, cv::Mat& work, const std::vector<FaceResult>& faces,
                    const FrameSettings& s, FrameResult& r)
{
    if (s.enhance != "auto" || r.enhanced)
        return;
    std::vector<cv::Rect> boxes;
    for (const FaceResult& f : faces)
        if (f.selected)
        {
            const double half = 0.5 * f.roi.width / 1.5;  // the face, not the 1.5x crop
            boxes.emplace_back((int)std::floor(f.roi.cx - half), (int)std::floor(f.roi.cy - half),
                               (int)std::ceil(2 * half), (int)std::ceil(2 * half));
        }
    if (boxes.empty())
        return;
    r.light_luma = region_luma(frame, boxes);
    r.light_region = "faces";
    if (r.light_luma < s.low_light)
    {
        work = enhanced_copy(frame);
        r.enhanced = true;
    }
}

// Mesh on a face; its 68 points through the One Euro filter when it continues a previous
// face (static input: tracked crops wander by pixels, the filter holds the face still).
void face_landmarks(const ModeRuntime& m, const cv::Mat& work, const FrameSettings& s,
                    const FrameState& track, FaceResult& f)
{
    const int64_t t0 = now_ns();
    m.mesh.run(work, f.roi, *s.lm68_from_mesh, f.face);
    f.swapped = f.face.presence >= 0.5f;
    f.lm68_swap = f.face.lm68;
    if (f.swapped && s.smooth)
    {
        // A new face starts its filter here (its points pass through unchanged).
        if (f.track >= 0)
            f.filter = track.tracks[f.track].filter;
        std::vector<double> v;
        for (const cv::Point2f& p : f.face.lm68)
            v.insert(v.end(), {p.x, p.y});
        const cv::Point2f d = f.face.lm68[45] - f.face.lm68[36];
        v = one_euro_step(f.filter, v, std::hypot(d.x, d.y), s.smoothing);
        for (size_t i = 0; i < f.lm68_swap.size(); i++)
            f.lm68_swap[i] = cv::Point2f((float)v[2 * i], (float)v[2 * i + 1]);
        f.smoothed = f.track >= 0;
    }
    f.stage_ns[ST_LANDMARKS] = now_ns() - t0;
}

// The faces swapped in this frame become the tracks of the next one.
void update_tracks(std::vector<FaceResult>& faces, FrameState& track)
{
    std::vector<FaceTrack> next;
    for (FaceResult& f : faces)
    {
        if (!f.swapped)
            continue;
        FaceTrack t;
        t.filter = std::move(f.filter);
        t.mesh = f.face.mesh;
        t.centre = (f.face.lm68[36] + f.face.lm68[39] + f.face.lm68[42] + f.face.lm68[45]) * 0.25f;
        next.push_back(std::move(t));
    }
    track.tracks.swap(next);
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

// The person model sees the whole frame at 256x256: a face under kMinFaceInSegPx there is a
// blur to it (a group photo's back row, 18 px between the eyes at 1280x720: its box ~10 px)
// and its mask is >= 0.5 on about half of the face (measured 56 %), so blend_mask cut most
// of the swap away. Such a face gets the model's own run on a square crop 3x its box.
constexpr double kMinFaceInSegPx = 16.0;

cv::Mat face_person_mask(const ModeRuntime& m, const cv::Mat& work, const FrameSettings& s,
                         const cv::Mat& person, cv::Rect box)
{
    const double sx = (double)m.seg.model->input.width / work.cols;
    const double sy = (double)m.seg.model->input.height / work.rows;
    if (std::min(box.width * sx, box.height * sy) >= kMinFaceInSegPx)
        return person(box);
    const int side = 3 * std::max(box.width, box.height);
    const cv::Point c(box.x + box.width / 2, box.y + box.height / 2);
    const cv::Rect crop = cv::Rect(c.x - side / 2, c.y - side / 2, side, side) & cv::Rect(0, 0, work.cols, work.rows);
    place(s, "seg");
    cv::Mat local = m.seg.run(work(crop));
    place(s, "");
    return local(box - crop.tl());
}

// Align, warp, color, mask, blend: the source face into `out` at face `f` (its stage times
// in f.stage_ns). `person`: the person mask of the whole frame (base mode), computed once.
void swap_face(ModeRuntime& m, const cv::Mat& work, const FrameSettings& s, const cv::Mat& person,
               FaceResult& f, cv::Mat& out, FrameResult& r)
{
    Laps laps(f.stage_ns);
    // Align: source 68 points -> target 68 points.
    cv::Mat M = estimate_transform(m.source.lm68, f.lm68_swap, s.affine);
    cv::Rect box = face_roi(f.lm68_swap, work.size(), 0.15f);
    laps.lap(ST_ALIGN);

    cv::Mat warped;
    warp_face(*s.source_img, M, box, warped);
    laps.lap(ST_WARP);

    cv::Mat target_roi = out(box);
    // The face region: the target's hull where the warped source shows its own face (a
    // narrower source face would otherwise bring its background in as a strip on a cheek).
    cv::Mat hull = hull_mask(f.lm68_swap, box);
    cv::bitwise_and(hull, warped_hull_mask(m.source.lm68, M, box), hull);
    f.color = color_correct(warped, target_roi, hull, face_skin_mask(f.lm68_swap, box, hull));
    laps.lap(ST_COLOR);

    cv::Mat mask, feather;
    blend_mask(hull, person.empty() ? person : face_person_mask(m, work, s, person, box), mask, feather);
    if (m.keep_glasses)
    {
        // The target's glasses stay whole on top of the pasted face (issue 18).
        f.glasses = find_glasses(target_roi, f.lm68_swap, box, hull);
        if (f.glasses.found)
            keep_occluder(f.glasses.frame, feather);
    }
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
        if (f.glasses.found)
        {
            cv::Mat whole(out.size(), CV_8U, cv::Scalar(0));  // frame-sized: no box to carry
            f.glasses.frame.copyTo(whole(box));
            s.debug.write("glasses.png", whole);
        }
    }
    f.glasses.frame.release();
    if (s.blend_compare && !r.has_blend_compare)
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

    frames.next(track.frame, r.source_frame);
    laps.lap(ST_DECODE);

    const cv::Mat& frame = to_bgr(track.frame, track.converted);
    if (&frame != &track.frame)  // camera input; images and video arrive as BGR: 0
        laps.lap(ST_CONVERT);

    // --enhance on: the detector sees the enhanced frame; auto decides on the faces' light.
    cv::Mat work = frame;
    if (s.enhance == "on")
    {
        work = enhanced_copy(frame);
        r.enhanced = true;
    }
    laps.lap(ST_ENHANCE);

    place(s, "detect");
    std::vector<FaceResult> faces = locate_faces(m, frame, work, index, s, track, laps, r);
    place(s, "");
    laps.lap(ST_DETECT);

    decide_enhance(frame, work, faces, s, r);
    laps.lap(ST_ENHANCE);

    place(s, "landmarks");
    for (FaceResult& f : faces)
        if (f.selected)
        {
            face_landmarks(m, work, s, track, f);
            r.faces_swapped += f.swapped;
        }
    place(s, "");
    laps.lap(ST_LANDMARKS);
    r.ok = r.faces_swapped > 0;

    if (!r.ok)
    {
        // No face: the frame passes through unchanged (not even enhanced) and is counted;
        // `enhanced` says what the output got, so false here even if detection saw the
        // enhanced frame.
        r.enhanced = false;
        r.faces = 0;
        r.output = frame;
    }
    else
    {
        r.output = work.clone();
        cv::Mat person;
        if (m.has_seg)
        {
            place(s, "seg");
            person = m.seg.run(work);
            place(s, "");
        }
        laps.lap(ST_MASK);
        bool first = true;
        for (FaceResult& f : faces)
        {
            if (!f.swapped)
                continue;
            swap_face(m, work, s, person, f, r.output, r);
            for (int st = ST_ALIGN; st <= ST_BLEND; st++)
                r.stage_ns[st] += f.stage_ns[st];
            r.stage_ns[ST_TRANSFER] += f.stage_ns[ST_TRANSFER];
            if (first)
            {
                r.face = f.face;
                r.roi = f.roi;
                r.color = f.color;
                first = false;
            }
        }
        plant_slowdown(t0, r.stage_ns[ST_BLEND]);
        laps.restart();
    }
    update_tracks(faces, track);
    r.per_face = std::move(faces);
    r.stage_ns[ST_TOTAL] = now_ns() - t0;
    if (!r.ok)
        for (int st = ST_LANDMARKS + 1; st < ST_TOTAL; st++)
            r.stage_ns[st] = 0;
    return r;
}
