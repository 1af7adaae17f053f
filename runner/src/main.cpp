// swap_runner: swaps one source face into target frames along the mobile pipeline and
// reports what every stage cost (JSON lines, runner/README.md). CLI: contracts.md section 2.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include "common.h"
#include "face.h"
#include "frames.h"
#include "models.h"
#include "poisson.h"
#include "stages.h"
#include "telemetry.h"

using ojson = nlohmann::ordered_json;

namespace {

const char* kUsage =
    "usage: swap_runner --models DIR --source IMG --target PATH [--mode tiny|small|base|auto]\n"
    "  [--warmup N] [--frames N] [--threads N] [--cpu-affinity LIST] [--out DIR] [--save-every N]\n"
    "  [--out-format jpg|png] [--telemetry PATH] [--blend poisson|opencv] [--blend-compare]\n"
    "  [--enhance auto|on|off] [--low-light-threshold L] [--align similarity|affine]\n"
    "  [--thermal-source FILE] [--thermal-check-every N] [--thermal-limit-c C]\n"
    "  [--thermal-hysteresis-c C] [--dump-landmarks PATH] [--version]\n";

struct Options
{
    std::string models, source, target, mode = "small", out, telemetry = "-", blend = "poisson";
    std::string enhance = "auto", align = "similarity", out_format = "jpg", thermal_source, dump_landmarks;
    std::string cpu_affinity;
    int warmup = 5, frames = 50, threads = 1, save_every = 0, thermal_every = 10;
    double low_light = 70, thermal_limit = 70, thermal_hyst = 5;
    bool blend_compare = false, version = false;
};

RunnerError usage(const std::string& msg) { return RunnerError(EXIT_USAGE, msg); }

int parse_int(const std::string& flag, const std::string& v, int lo, int hi)
{
    char* end = nullptr;
    errno = 0;
    long x = strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || errno || x < lo || x > hi)
        throw usage(flag + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
    return (int)x;
}

double parse_num(const std::string& flag, const std::string& v)
{
    char* end = nullptr;
    double x = strtod(v.c_str(), &end);
    if (v.empty() || *end || !std::isfinite(x))
        throw usage(flag + ": expected a number, got '" + v + "'");
    return x;
}

std::string parse_choice(const std::string& flag, const std::string& v, std::initializer_list<const char*> choices)
{
    std::string all;
    for (const char* c : choices)
    {
        if (v == c)
            return v;
        all += std::string(all.empty() ? "" : "|") + c;
    }
    throw usage(flag + ": expected " + all + ", got '" + v + "'");
}

Options parse_args(int argc, char** argv)
{
    Options o;
    bool have_models = false, have_source = false, have_target = false;
    for (int i = 1; i < argc; i++)
    {
        std::string a = argv[i], v;
        if (a == "--version") { o.version = true; continue; }
        if (a == "--blend-compare") { o.blend_compare = true; continue; }
        if (a == "-h" || a == "--help")
        {
            fputs(kUsage, stdout);
            exit(0);
        }
        if (a.rfind("--", 0) != 0)
            throw usage("unexpected argument '" + a + "'");
        size_t eq = a.find('=');
        if (eq != std::string::npos)
        {
            v = a.substr(eq + 1);
            a = a.substr(0, eq);
        }
        else
        {
            if (i + 1 >= argc)
                throw usage(a + ": missing value");
            v = argv[++i];
        }
        if (a == "--models") { o.models = v; have_models = true; }
        else if (a == "--source") { o.source = v; have_source = true; }
        else if (a == "--target") { o.target = v; have_target = true; }
        else if (a == "--mode") o.mode = parse_choice(a, v, {"tiny", "small", "base", "auto"});
        else if (a == "--warmup") o.warmup = parse_int(a, v, 0, 1000000);
        else if (a == "--frames") o.frames = parse_int(a, v, 0, 100000000);
        else if (a == "--threads") o.threads = parse_int(a, v, 1, 256);
        else if (a == "--cpu-affinity") o.cpu_affinity = v;
        else if (a == "--out") o.out = v;
        else if (a == "--save-every") o.save_every = parse_int(a, v, 0, 100000000);
        else if (a == "--out-format") o.out_format = parse_choice(a, v, {"jpg", "png"});
        else if (a == "--telemetry") o.telemetry = v;
        else if (a == "--blend") o.blend = parse_choice(a, v, {"poisson", "opencv"});
        else if (a == "--enhance") o.enhance = parse_choice(a, v, {"auto", "on", "off"});
        else if (a == "--low-light-threshold") o.low_light = parse_num(a, v);
        else if (a == "--align") o.align = parse_choice(a, v, {"similarity", "affine"});
        else if (a == "--thermal-source") o.thermal_source = v;
        else if (a == "--thermal-check-every") o.thermal_every = parse_int(a, v, 1, 100000000);
        else if (a == "--thermal-limit-c") o.thermal_limit = parse_num(a, v);
        else if (a == "--thermal-hysteresis-c") o.thermal_hyst = parse_num(a, v);
        else if (a == "--dump-landmarks") o.dump_landmarks = v;
        else throw usage("unknown flag " + a);
    }
    if (o.version)
        return o;
    if (!have_models) throw usage("--models: required");
    if (!have_source) throw usage("--source: required");
    if (!have_target) throw usage("--target: required");
    if (o.save_every > 0 && o.out.empty())
        throw usage("--save-every: needs --out DIR");
    if (o.thermal_hyst < 0)
        throw usage("--thermal-hysteresis-c: must be >= 0");
    return o;
}

// "4-7" or "0,2" or "0-1,4"
void set_affinity(const std::string& list)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    size_t pos = 0;
    while (pos <= list.size())
    {
        size_t e = list.find(',', pos);
        if (e == std::string::npos) e = list.size();
        std::string part = list.substr(pos, e - pos);
        size_t dash = part.find('-');
        int lo, hi;
        try
        {
            if (dash == std::string::npos) lo = hi = parse_int("--cpu-affinity", part, 0, CPU_SETSIZE - 1);
            else
            {
                lo = parse_int("--cpu-affinity", part.substr(0, dash), 0, CPU_SETSIZE - 1);
                hi = parse_int("--cpu-affinity", part.substr(dash + 1), 0, CPU_SETSIZE - 1);
            }
        }
        catch (const RunnerError&)
        {
            throw usage("--cpu-affinity: bad CPU list '" + list + "' (expected e.g. 4-7 or 0,2)");
        }
        if (hi < lo)
            throw usage("--cpu-affinity: bad CPU range '" + part + "'");
        for (int c = lo; c <= hi; c++)
            CPU_SET(c, &set);
        pos = e + 1;
    }
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        throw usage("--cpu-affinity " + list + ": " + strerror(errno));
}

// Temperature in degrees C from a file such as /sys/class/thermal/thermal_zone0/temp.
// Thermal zones report millidegrees; values above 1000 are taken as such.
bool read_temp(const std::string& path, double& c)
{
    FILE* f = fopen(path.c_str(), "r");
    if (!f)
        return false;
    double v;
    int n = fscanf(f, "%lf", &v);
    fclose(f);
    if (n != 1 || !std::isfinite(v))
        return false;
    c = std::fabs(v) >= 1000 ? v / 1000.0 : v;
    return true;
}

struct ModeRuntime
{
    ModeConfig cfg;
    FaceDetector detector;
    FaceMesh mesh;
    PersonSegmenter seg;
    bool has_seg = false;
    Face source;  // source face found by this mode's models
};

ojson pts_json(const std::vector<cv::Point2f>& pts)
{
    ojson a = ojson::array();
    for (const auto& p : pts)
        a.push_back({p.x, p.y});
    return a;
}

ojson face_json(const Face& f, const Roi& roi, bool detected)
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

// Runs detection + mesh on the source image with one mode's models.
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
    cv::setNumThreads(o.threads);

    // Inputs first (cheap checks, clear errors before any model work).
    cv::Mat source_img;
    if (!read_image(o.source, source_img))
        throw RunnerError(EXIT_INPUT, "--source " + o.source + ": cannot read image (missing, corrupt or unsupported)");
    FrameSource frames;
    frames.open(o.target);
    if (!o.out.empty())
    {
        mkdir(o.out.c_str(), 0755);
        struct stat st;
        if (stat(o.out.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
            throw RunnerError(EXIT_USAGE, "--out " + o.out + ": cannot create folder");
    }
    double temp_c = NAN;
    if (!o.thermal_source.empty() && !read_temp(o.thermal_source, temp_c))
        throw RunnerError(EXIT_INPUT, "--thermal-source " + o.thermal_source + ": cannot read a temperature");
    TelemetryWriter tw;
    tw.open(o.telemetry);
    FILE* dump = nullptr;
    if (!o.dump_landmarks.empty() && !(dump = fopen(o.dump_landmarks.c_str(), "w")))
        throw RunnerError(EXIT_USAGE, "--dump-landmarks " + o.dump_landmarks + ": cannot open for writing");

    // Models: auto mode may visit every mode, so load them all up front (no hiccup at a switch).
    const int64_t t_load = now_ns();
    ModelPack pack;
    pack.load_manifest(o.models);
    std::vector<std::string> mode_names = o.mode == "auto" ? std::vector<std::string>{"tiny", "small", "base"}
                                                           : std::vector<std::string>{o.mode};
    pack.load_nets(mode_names, o.threads);
    std::map<std::string, ModeRuntime> modes;
    for (const std::string& mn : mode_names)
    {
        ModeRuntime& m = modes[mn];
        m.cfg = pack.modes.at(mn);
        m.detector.init(&pack.get(m.cfg.detector));
        m.mesh.model = &pack.get(m.cfg.landmarks);
        if (!m.cfg.segmentation.empty())
        {
            m.seg.model = &pack.get(m.cfg.segmentation);
            m.has_seg = true;
        }
    }
    const double model_load_ms = (now_ns() - t_load) / 1e6;

    const int64_t t_src = now_ns();
    for (auto& [mn, m] : modes)
    {
        Roi roi;
        if (!find_source_face(m, source_img, pack.lm68_from_mesh, roi))
            throw RunnerError(EXIT_INPUT, "--source " + o.source + ": no face found in the source image");
        if (dump)
        {
            ojson j = {{"type", "source"}, {"mode", mn}};
            j.update(face_json(m.source, roi, true));
            fprintf(dump, "%s\n", j.dump().c_str());
        }
    }
    const double source_ms = (now_ns() - t_src) / 1e6;

    const std::vector<std::string> ladder = {"tiny", "small", "base"};
    std::string cur = o.mode == "auto" ? "base" : o.mode;
    const bool affine = o.align == "affine";
    const int total_frames = o.warmup + o.frames;
    int frames_without_face = 0, mode_switches = 0, measured_without_face = 0;
    double first_frame_ms = 0;
    bool have_prev = false;
    std::vector<cv::Point3f> prev_mesh;
    cv::Mat frame, output;

    for (int index = 0; index < total_frames; index++)
    {
        // Thermal fallback (auto): one step per check, hysteresis on the way back up.
        if (!o.thermal_source.empty() && index % o.thermal_every == 0)
        {
            double t;
            temp_c = read_temp(o.thermal_source, t) ? t : NAN;
            if (o.mode == "auto" && std::isfinite(temp_c))
            {
                int pos = (int)(std::find(ladder.begin(), ladder.end(), cur) - ladder.begin());
                int to = pos;
                const char* reason = nullptr;
                if (temp_c > o.thermal_limit && pos > 0) { to = pos - 1; reason = "above_limit"; }
                else if (temp_c < o.thermal_limit - o.thermal_hyst && pos < 2) { to = pos + 1; reason = "below_limit_minus_hysteresis"; }
                if (to != pos)
                {
                    ojson sw = {{"type", "mode_switch"}, {"schema", kSchema}, {"index", index}, {"from", cur},
                                {"to", ladder[to]}, {"temp_c", temp_c}, {"reason", reason}};
                    tw.write(sw);
                    cur = ladder[to];
                    mode_switches++;
                    have_prev = false;  // the new mode starts with a fresh detection
                }
            }
        }
        ModeRuntime& m = modes.at(cur);
        int64_t st[ST_COUNT] = {0};
        const int64_t t0 = now_ns();
        int64_t t = t0, tn;
        auto lap = [&](Stage s) { tn = now_ns(); st[s] = tn - t; t = tn; };

        int source_frame = 0;
        frames.next(frame, source_frame);
        lap(ST_DECODE);

        bool enhanced = o.enhance == "on" || (o.enhance == "auto" && mean_luma(frame) < o.low_light);
        cv::Mat work = frame;
        if (enhanced)
        {
            work = frame.clone();
            retinex_enhance(work);
        }
        lap(ST_ENHANCE);

        // Detect on frame 0, every n-th frame, or when tracking was lost (reference.track).
        Face face;
        Roi roi;
        bool have_roi = false, detected = false;
        int faces = 0;
        if (!have_prev || index % m.cfg.detect_every_n_frames == 0)
        {
            detected = true;
            std::vector<Detection> dets = m.detector.detect(work);
            faces = (int)dets.size();
            if (!dets.empty())
            {
                face.det = dets[0];
                roi = roi_from_detection(dets[0]);
                have_roi = true;
            }
        }
        else
        {
            roi = roi_from_mesh(prev_mesh);
            have_roi = true;
            faces = 1;
            face.from_tracking = true;
        }
        lap(ST_DETECT);

        bool ok = false;
        if (have_roi)
        {
            m.mesh.run(work, roi, pack.lm68_from_mesh, face);
            ok = face.presence >= 0.5f;
        }
        lap(ST_LANDMARKS);

        ojson rec;
        rec["type"] = "frame";
        rec["schema"] = kSchema;
        rec["index"] = index;
        rec["warmup"] = index < o.warmup;
        rec["source_frame"] = source_frame;
        rec["mode"] = cur;
        rec["enhanced"] = enhanced;
        rec["detected"] = detected;
        ColorResult cr;
        if (!ok)
        {
            // No face: the frame passes through unchanged (not even enhanced) and is counted.
            have_prev = false;
            faces = 0;
            frames_without_face++;
            if (index >= o.warmup)
                measured_without_face++;
            output = frame;
            st[ST_LANDMARKS] += 0;
        }
        else
        {
            prev_mesh = face.mesh;
            have_prev = true;
            if (faces == 0)
                faces = 1;
            // Align: source 68 points -> target 68 points.
            cv::Mat M = estimate_transform(m.source.lm68, face.lm68, affine);
            cv::Rect box = face_roi(face.lm68, work.size(), 0.15f);
            lap(ST_ALIGN);

            cv::Mat warped;
            warp_face(source_img, M, box, warped);
            lap(ST_WARP);

            output = work.clone();
            cv::Mat target_roi = output(box);
            cv::Mat hull = hull_mask(face.lm68, box);
            cr = color_correct(warped, target_roi, hull);
            lap(ST_COLOR);

            cv::Mat person, mask, feather;
            if (m.has_seg)
                person = m.seg.run(work)(box);
            blend_mask(hull, person, mask, feather);
            lap(ST_MASK);

            cv::Mat blended;
            if (o.blend == "opencv")
                opencv_blend(warped, target_roi, mask, blended);
            else
                poisson_blend(warped, target_roi, mask, blended);
            // Feathered composite: alpha reaches 0 inside the Poisson region, so the edge of the
            // solve never shows.
            for (int y = 0; y < box.height; y++)
            {
                uint8_t* d = target_roi.ptr<uint8_t>(y);
                const uint8_t* b = blended.ptr<uint8_t>(y);
                const float* a = feather.ptr<float>(y);
                for (int x = 0; x < box.width; x++)
                {
                    const float al = a[x];
                    if (al <= 0.f)
                        continue;
                    for (int c = 0; c < 3; c++)
                        d[3 * x + c] = (uint8_t)(d[3 * x + c] + al * (b[3 * x + c] - d[3 * x + c]) + 0.5f);
                }
            }
            lap(ST_BLEND);
            if (getenv("SWAPLAB_DEBUG_DIR"))
            {
                std::string d = getenv("SWAPLAB_DEBUG_DIR");
                write_image(d + "/warped.png", warped);
                write_image(d + "/mask.png", mask);
                write_image(d + "/blended.png", blended);
                cv::Mat f8;
                feather.convertTo(f8, CV_8U, 255);
                write_image(d + "/feather.png", f8);
            }

            if (o.blend_compare)
            {
                // Both solvers on the same inputs (not part of the stage times).
                cv::Mat own, ref;
                const cv::Mat dst = work(box);
                int64_t a0 = now_ns();
                poisson_blend(warped, dst, mask, own);
                int64_t a1 = now_ns();
                opencv_blend(warped, dst, mask, ref);
                int64_t a2 = now_ns();
                double p = psnr(own, ref, cv::boundingRect(mask));
                if (getenv("SWAPLAB_DEBUG_DIR"))
                {
                    std::string d = getenv("SWAPLAB_DEBUG_DIR");
                    write_image(d + "/own.png", own);
                    write_image(d + "/ref.png", ref);
                    write_image(d + "/target.png", dst);
                }
                rec["blend_compare"] = {{"own_ns", a1 - a0}, {"opencv_ns", a2 - a1},
                                        {"psnr_db", std::isfinite(p) ? p : 99.0}};
                t = now_ns();
            }
        }
        st[ST_TOTAL] = now_ns() - t0;
        if (index == 0)
            first_frame_ms = st[ST_TOTAL] / 1e6;

        rec["faces"] = faces;
        ojson sn;
        for (int s = 0; s < ST_COUNT; s++)
            sn[kStages[s]] = ok || s <= ST_LANDMARKS || s == ST_TOTAL ? st[s] : 0;
        rec["stage_ns"] = sn;
        if (ok)
        {
            rec["de_before"] = cr.de_before;
            rec["de_after"] = cr.de_after;
            rec["tone_compensated"] = cr.tone_compensated;
        }
        else
        {
            rec["de_before"] = nullptr;
            rec["de_after"] = nullptr;
            rec["tone_compensated"] = nullptr;
        }
        long rss = rss_kb();
        rec["rss_kb"] = rss >= 0 ? ojson(rss) : ojson(nullptr);
        rec["temp_c"] = std::isfinite(temp_c) ? ojson(temp_c) : ojson(nullptr);
        tw.write(rec);

        if (dump)
        {
            ojson j = {{"type", "frame"}, {"index", index}, {"source_frame", source_frame}, {"mode", cur}, {"faces", faces}};
            if (ok)
                j.update(face_json(face, roi, detected));
            fprintf(dump, "%s\n", j.dump().c_str());
        }
        if (o.save_every > 0 && index % o.save_every == 0)
        {
            std::string p = o.out + "/out_" + std::to_string(index) + "." + o.out_format;
            if (!write_image(p, output))
                throw RunnerError(EXIT_USAGE, "--out " + p + ": cannot write image");
        }
    }

    long peak = peak_rss_kb();
    ojson sum;
    sum["type"] = "summary";
    sum["schema"] = kSchema;
    sum["build"] = build_info(o.threads);
    sum["mode"] = o.mode;
    sum["blend"] = o.blend;
    sum["model_load_ms"] = model_load_ms;
    sum["source_ms"] = source_ms;
    sum["first_frame_ms"] = first_frame_ms;
    sum["peak_rss_kb"] = peak >= 0 ? ojson(peak) : ojson(nullptr);
    sum["frames"] = o.frames;
    sum["warmup_frames"] = o.warmup;
    sum["frames_without_face"] = measured_without_face;
    sum["frames_without_face_total"] = frames_without_face;
    sum["mode_switches"] = mode_switches;
    sum["final_mode"] = cur;
    sum["wall_ms"] = (now_ns() - t_start) / 1e6;
    tw.write(sum);
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

int main(int argc, char** argv)
{
    // libgomp reads OMP_WAIT_POLICY once, when it is loaded (before main). Its default
    // spin-wait collapses on shared CPUs (10 ms -> 800 ms seen), so when the caller did not
    // choose, re-exec ourselves with PASSIVE. Under qemu-user (no binfmt) exec fails; then we
    // carry on and report the policy as "unset".
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
