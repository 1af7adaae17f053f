// Command line of swap_runner (runner/README.md, "CLI"): the options and their parser.
#pragma once

#include <string>
#include <vector>

struct Options
{
    std::string models, source, target, mode = "small", out, telemetry = "-", blend = "poisson";
    std::string enhance = "auto", align = "similarity", out_format = "jpg", thermal_source, dump_landmarks;
    std::string cpu_affinity;
    std::string faces = "all", smooth = "one-euro", small_faces = "full-range";  // quality (issue 18)
    std::string backend = "cpu";  // --backend (backend.h: per net cpu|vulkan|auto)
    int warmup = 5, frames = 50, threads = 1, save_every = 0, thermal_every = 10;
    double low_light = 70, thermal_limit = 70, thermal_hyst = 5;
    // camera-like pacing (camera.h; 0 = frames flat out) and the thermal fallback's ladder
    double camera_fps = 0, thermal_fps_low = -1;  // -1: half of camera_fps
    std::vector<std::string> thermal_fallback = {"mode"};
    std::vector<std::string> placement;  // --placement role=CPUS:THREADS (placement.h)
    bool blend_compare = false, version = false;
};

// Parses argv; throws RunnerError(EXIT_USAGE) naming the flag on bad usage.
Options parse_args(int argc, char** argv);

// Pins this process to a CPU list such as "4-7", "0,2" or "0-1,4".
void set_affinity(const std::string& list);
