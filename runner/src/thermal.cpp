// Auto mode's thermal fallback (thermal.h).
#include "thermal.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

#include "common.h"

namespace {
const std::vector<std::string> kLadder = {"tiny", "small", "base"};
}

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
                                 int check_every, double limit_c, double hysteresis_c)
    : source_(source), auto_(mode == "auto"), every_(check_every), limit_c_(limit_c),
      hyst_c_(hysteresis_c), temp_c_(NAN), cur_(mode == "auto" ? "base" : mode)
{
    if (!source_.empty() && !read_temp(source_, temp_c_))
        throw RunnerError(EXIT_INPUT, "--thermal-source " + source_ + ": cannot read a temperature");
}

bool ThermalFallback::check(int index, ModeSwitch& sw)
{
    if (source_.empty() || index % every_ != 0)
        return false;
    double t;
    temp_c_ = read_temp(source_, t) ? t : NAN;
    if (!auto_ || !std::isfinite(temp_c_))
        return false;
    const int pos = (int)(std::find(kLadder.begin(), kLadder.end(), cur_) - kLadder.begin());
    int to = pos;
    const char* reason = nullptr;
    if (temp_c_ > limit_c_ && pos > 0)
    {
        to = pos - 1;
        reason = "above_limit";
    }
    else if (temp_c_ < limit_c_ - hyst_c_ && pos < 2)
    {
        to = pos + 1;
        reason = "below_limit_minus_hysteresis";
    }
    if (to == pos)
        return false;
    sw = ModeSwitch{index, cur_, kLadder[to], temp_c_, reason};
    cur_ = kLadder[to];
    return true;
}
