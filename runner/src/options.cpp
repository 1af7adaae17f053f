// Command line of swap_runner: parsing and validation, one clear error per bad flag.
#include "options.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include <sched.h>

#include "backend.h"
#include "common.h"
#include "placement.h"
#include "thermal.h"

namespace {

const char* const kUsage =
    "usage: swap_runner --models DIR --source IMG --target PATH [--mode tiny|small|base|auto]\n"
    "  [--warmup N] [--frames N] [--threads N] [--cpu-affinity LIST] [--out DIR] [--save-every N]\n"
    "  [--out-format jpg|png] [--telemetry PATH] [--blend poisson|opencv] [--blend-compare]\n"
    "  [--enhance auto|on|off] [--low-light-threshold L] [--align similarity|affine]\n"
    "  [--thermal-source FILE] [--thermal-check-every N] [--thermal-limit-c C]\n"
    "  [--thermal-hysteresis-c C] [--dump-landmarks PATH] [--version]\n"
    "  [--faces all|largest|best] [--smooth one-euro|off] [--small-faces full-range|tiles|always|always-tiles|off]\n"
    "  [--camera-fps F] [--thermal-fallback fps,gpu,mode] [--thermal-fps-low F]\n"
    "  [--placement detect|landmarks|seg=CPUS:THREADS ...]\n"

    "  [--backend cpu|vulkan|auto | --backend detect=B,landmarks=B,seg=B]\n";

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

double parse_fps(const std::string& flag, const std::string& v)
{
    const double x = parse_num(flag, v);
    if (x < 0 || x > 1000)
        throw usage(flag + ": expected frames per second in [0, 1000], got '" + v + "'");
    return x;
}

// "fps,gpu,mode": each rung of kFallbackRungs at most once.
std::vector<std::string> parse_rungs(const std::string& flag, const std::string& v)
{
    std::vector<std::string> rungs;
    size_t pos = 0;
    while (pos <= v.size())
    {
        size_t e = v.find(',', pos);
        if (e == std::string::npos) e = v.size();
        const std::string r = v.substr(pos, e - pos);
        if (std::find(kFallbackRungs.begin(), kFallbackRungs.end(), r) == kFallbackRungs.end())
            throw usage(flag + ": expected a list of fps, gpu, mode, got '" + v + "'");
        if (std::find(rungs.begin(), rungs.end(), r) != rungs.end())
            throw usage(flag + ": '" + r + "' named twice in '" + v + "'");
        rungs.push_back(r);
        pos = e + 1;
    }
    return rungs;
}

} // namespace

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
        else if (a == "--faces") o.faces = parse_choice(a, v, {"all", "largest", "best"});
        else if (a == "--smooth") o.smooth = parse_choice(a, v, {"one-euro", "off"});
        else if (a == "--small-faces") o.small_faces = parse_choice(a, v, {"full-range", "tiles", "always", "always-tiles", "off"});
        else if (a == "--camera-fps") o.camera_fps = parse_fps(a, v);
        else if (a == "--thermal-fps-low") o.thermal_fps_low = parse_fps(a, v);
        else if (a == "--thermal-fallback") o.thermal_fallback = parse_rungs(a, v);
        else if (a == "--placement") o.placement.push_back(v);
        else if (a == "--backend") { parse_backend(v); o.backend = v; }
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
    if (o.thermal_fps_low < 0)
        o.thermal_fps_low = o.camera_fps / 2;
    return o;
}

// "4-7" or "0,2" or "0-1,4" (the list syntax is placement.cpp's, as for --placement)
void set_affinity(const std::string& list)
{
    cpu_set_t set;
    parse_cpu_list("--cpu-affinity", list, set);
    if (sched_setaffinity(0, sizeof(set), &set) != 0)
        throw usage("--cpu-affinity " + list + ": " + strerror(errno));
}
