#include "telemetry.h"

#include <cstdlib>
#include <cstring>

#include <opencv2/core/version.hpp>
#include <platform.h>  // ncnn: NCNN_VERSION_STRING

#include "common.h"

#ifndef SWAPLAB_ABI
#define SWAPLAB_ABI "unknown"
#endif
#ifndef SWAPLAB_ISA
#define SWAPLAB_ISA ""
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
    b["threads"] = threads;
    const char* pol = getenv("OMP_WAIT_POLICY");
    b["omp_wait_policy"] = pol ? pol : "unset";
    b["build_type"] = SWAPLAB_BUILD_TYPE;
    return b;
}
