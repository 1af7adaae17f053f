// Auto mode's thermal fallback: the runner reads a temperature sensor every N frames and
// steps down the model ladder (base -> small -> tiny) when it is above the limit, one step
// back up when it is below the limit minus the hysteresis.
#pragma once

#include <string>

// Temperature in degrees C from a file such as /sys/class/thermal/thermal_zone0/temp.
// Thermal zones report millidegrees; values above 1000 are taken as such.
bool read_temp(const std::string& path, double& c);

struct ModeSwitch
{
    int index = 0;
    std::string from, to;
    double temp_c = 0;
    const char* reason = "";
};

class ThermalFallback
{
public:
    // source: the sensor file ("" = none); mode: the --mode (only "auto" switches).
    // Throws RunnerError(EXIT_INPUT) when the sensor cannot be read at the start.
    ThermalFallback(const std::string& source, const std::string& mode, int check_every,
                    double limit_c, double hysteresis_c);

    // Before frame `index`: reads the sensor when due; true (and `sw` filled) when the
    // mode changes.
    bool check(int index, ModeSwitch& sw);

    const std::string& mode() const { return cur_; }
    double temp_c() const { return temp_c_; }  // NAN when not read

private:
    std::string source_;
    bool auto_;
    int every_;
    double limit_c_, hyst_c_, temp_c_;
    std::string cur_;
};
