// Command line of swap_runner (runner/README.md, "CLI"): the options and their parser.
#pragma once

#include <string>

struct Options
{
    std::string models, source, target, mode = "small", out, telemetry = "-", blend = "poisson";
    std::string enhance = "auto", align = "similarity", out_format = "jpg", thermal_source, dump_landmarks;
    std::string cpu_affinity;
    std::string backend = "cpu";  // --backend (backend.h: per net cpu|vulkan|auto)
    int warmup = 5, frames = 50, threads = 1, save_every = 0, thermal_every = 10;
    double low_light = 70, thermal_limit = 70, thermal_hyst = 5;
    bool blend_compare = false, version = false;
};

// Parses argv; throws RunnerError(EXIT_USAGE) naming the flag on bad usage.
Options parse_args(int argc, char** argv);

// Pins this process to a CPU list such as "4-7", "0,2" or "0-1,4".
void set_affinity(const std::string& list);
