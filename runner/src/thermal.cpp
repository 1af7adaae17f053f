// The thermal fallback (thermal.h).
#include "thermal.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common.h"

namespace {
const std::vector<std::string> kLadder = {"tiny", "small", "base"};

std::string fps_text(double fps)
{
    char b[32];
    snprintf(b, sizeof b, "%g", fps);
    return b;
}
} // namespace

const std::vector<std::string> kFallbackRungs = {"fps", "gpu", "mode"};

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

ThermalFallback::ThermalFallback(const std::string& source, const std::string& mode,
                                 int check_every, double limit_c, double hysteresis_c,
                                 std::vector<std::string> order, double fps, double fps_low)
    : source_(source), auto_(mode == "auto"), every_(check_every), limit_c_(limit_c),
      hyst_c_(hysteresis_c), temp_c_(NAN), cur_(mode == "auto" ? "base" : mode),
      order_(std::move(order)), fps_(fps), fps_low_(fps_low)
{
    if (!source_.empty() && !read_temp(source_, temp_c_))
        throw RunnerError(EXIT_INPUT, "--thermal-source " + source_ + ": cannot read a temperature");
}

bool ThermalFallback::step_down(const std::string& rung, FallbackStep& st, const GpuSwitch& gpu)
{
    st.rung = rung;
    if (rung == "fps")
    {
        if (fps_ <= 0 || fps_low_ <= 0 || fps_low_ >= fps_ || fps_lowered_)
            return false;
        st.from = fps_text(fps_);
        st.to = fps_text(fps_low_);
        fps_lowered_ = true;
        return true;
    }
    if (rung == "gpu")
    {
        if (gpu_is_off_ || gpu_skipped_)
            return false;
        if (!gpu.off || !gpu.off())
        {
            gpu_skipped_ = true;  // passed over from now on, recorded once
            st.from = st.to = "cpu";
            st.skipped = true;
            st.why = "no net runs on the GPU";
            return true;
        }
        st.from = "gpu";
        st.to = "cpu";
        gpu_is_off_ = true;
        return true;
    }
    const int pos = (int)(std::find(kLadder.begin(), kLadder.end(), cur_) - kLadder.begin());
    if (!auto_ || pos <= 0 || pos >= (int)kLadder.size())
        return false;
    st.from = cur_;
    st.to = cur_ = kLadder[pos - 1];
    return true;
}

bool ThermalFallback::step_up(const std::string& rung, FallbackStep& st, const GpuSwitch& gpu)
{
    st.rung = rung;
    if (rung == "fps")
    {
        if (!fps_lowered_)
            return false;
        st.from = fps_text(fps_low_);
        st.to = fps_text(fps_);
        fps_lowered_ = false;
        return true;
    }
    if (rung == "gpu")
    {
        if (!gpu_is_off_)
            return false;
        gpu_is_off_ = false;
        st.from = "cpu";
        st.to = gpu.on && gpu.on() ? "gpu" : "cpu";
        st.skipped = st.to == "cpu";
        if (st.skipped)
            st.why = "the GPU did not come back";
        return true;
    }
    const int pos = (int)(std::find(kLadder.begin(), kLadder.end(), cur_) - kLadder.begin());
    if (!auto_ || pos >= (int)kLadder.size() - 1)
        return false;
    st.from = cur_;
    st.to = cur_ = kLadder[pos + 1];
    return true;
}

std::vector<FallbackStep> ThermalFallback::check(int index, const GpuSwitch& gpu)
{
    std::vector<FallbackStep> steps;
    if (source_.empty() || index % every_ != 0)
        return steps;
    double t;
    temp_c_ = read_temp(source_, t) ? t : NAN;
    if (!std::isfinite(temp_c_))
        return steps;
    const bool down = temp_c_ > limit_c_, up = temp_c_ < limit_c_ - hyst_c_;
    if (!down && !up)
        return steps;
    std::vector<std::string> rungs = order_;
    if (up)  // back up in reverse order: the last rung stepped down comes back first
        std::reverse(rungs.begin(), rungs.end());
    for (const std::string& rung : rungs)
    {
        FallbackStep st;
        st.index = index;
        st.temp_c = temp_c_;
        st.reason = down ? "above_limit" : "below_limit_minus_hysteresis";
        if (!(down ? step_down(rung, st, gpu) : step_up(rung, st, gpu)))
            continue;
        steps.push_back(st);
        if (!st.skipped)
            break;
    }
    return steps;
}
