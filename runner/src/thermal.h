// The thermal fallback as the mobile pipeline does it: the runner reads a temperature sensor
// every N frames; above the limit it takes one step down a ladder whose order the profile
// sets (`--thermal-fallback fps,gpu,mode`): lower the camera frame rate, turn the GPU off,
// step the mode down (base -> small -> tiny, auto mode only); below the limit minus the
// hysteresis it takes one step back up, the last rung down first. A rung that cannot move
// (no camera clock, no net on the GPU, a fixed --mode) is passed over; the GPU rung is
// recorded once as skipped when no net runs on the GPU.
#pragma once

#include <functional>
#include <string>
#include <vector>

// Temperature in degrees C from a file such as /sys/class/thermal/thermal_zone0/temp.
// Thermal zones report millidegrees; values above 1000 are taken as such.
bool read_temp(const std::string& path, double& c);

// One switch of the mode rung (the `mode_switch` telemetry line).
struct ModeSwitch
{
    int index = 0;
    std::string from, to;
    double temp_c = 0;
    const char* reason = "";
};

// One step of the fallback: any rung; `skipped` = the rung could not move (`why`).
struct FallbackStep
{
    int index = 0;
    std::string rung, from, to, why;
    double temp_c = 0;
    const char* reason = "";
    bool skipped = false;
    ModeSwitch as_mode_switch() const { return ModeSwitch{index, from, to, temp_c, reason}; }
};

// What the fallback does to the GPU (backend.h); false = nothing moved.
struct GpuSwitch
{
    std::function<bool()> off, on;
};

// The rungs a --thermal-fallback list may name.
extern const std::vector<std::string> kFallbackRungs;

class ThermalFallback
{
public:
    // source: the sensor file ("" = none); mode: the --mode (only "auto" switches modes);
    // order: rungs from kFallbackRungs; fps / fps_low: the camera rate and the lowered one
    // (fps <= 0: no camera clock, the fps rung is passed over).
    // Throws RunnerError(EXIT_INPUT) when the sensor cannot be read at the start.
    ThermalFallback(const std::string& source, const std::string& mode, int check_every,
                    double limit_c, double hysteresis_c, std::vector<std::string> order = {"mode"},
                    double fps = 0, double fps_low = 0);

    // Before frame `index`: reads the sensor when due; the steps taken (at most one that
    // moved, after any skipped ones).
    std::vector<FallbackStep> check(int index, const GpuSwitch& gpu);

    const std::string& mode() const { return cur_; }
    double fps() const { return fps_lowered_ ? fps_low_ : fps_; }
    double temp_c() const { return temp_c_; }  // NAN when not read

private:
    bool step_down(const std::string& rung, FallbackStep& st, const GpuSwitch& gpu);
    bool step_up(const std::string& rung, FallbackStep& st, const GpuSwitch& gpu);

    std::string source_;
    bool auto_;
    int every_;
    double limit_c_, hyst_c_, temp_c_;
    std::string cur_;
    std::vector<std::string> order_;
    double fps_, fps_low_;
    bool fps_lowered_ = false, gpu_is_off_ = false, gpu_skipped_ = false;
};
