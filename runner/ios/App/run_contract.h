// The app contract of the SwapLab runner app (runner/ios/README.md), as plain C++ so it is
// compiled and tested on Linux too (tests/test_ios_app_spec.py).
#pragma once

#include <string>
#include <vector>

namespace swaplab_ios {

//! "--swaplab-run-dir DIR" when it leads the launch arguments, else "swaplab-run".
struct LaunchArgs {
    std::string run_dir;                 // relative to Documents/
    std::vector<std::string> runner_args;  // argv for swaplab_run, argv[0] = "swap_runner"
    std::string error;                   // non-empty: the arguments are unusable
};

LaunchArgs parse_launch_args(const std::vector<std::string>& args);

//! ProcessInfo.thermalState (0 nominal .. 3 critical) as its name.
const char* thermal_state_name(int state);

//! DIR/exit_status.json: the program's exit code and the thermal states of the run.
std::string exit_status_json(int exit_code, int state_start, int state_max, int state_end);

}  // namespace swaplab_ios
