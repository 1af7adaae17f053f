#include "run_contract.h"

namespace swaplab_ios {

namespace {
const char* const kRunDirFlag = "--swaplab-run-dir";
const char* const kDefaultRunDir = "swaplab-run";

bool safe_relative(const std::string& p) {
    if (p.empty() || p[0] == '/') return false;
    size_t start = 0;
    while (start <= p.size()) {
        size_t end = p.find('/', start);
        if (end == std::string::npos) end = p.size();
        if (p.compare(start, end - start, "..") == 0 && end - start == 2) return false;
        start = end + 1;
    }
    return true;
}
}  // namespace

LaunchArgs parse_launch_args(const std::vector<std::string>& args) {
    LaunchArgs out;
    out.run_dir = kDefaultRunDir;
    size_t i = 0;
    if (!args.empty() && args[0] == kRunDirFlag) {
        if (args.size() < 2) {
            out.error = "--swaplab-run-dir needs a folder";
            return out;
        }
        out.run_dir = args[1];
        i = 2;
    }
    if (!safe_relative(out.run_dir)) {
        out.error = "--swaplab-run-dir must be a relative path inside Documents: " + out.run_dir;
        return out;
    }
    out.runner_args.push_back("swap_runner");
    for (; i < args.size(); ++i) out.runner_args.push_back(args[i]);
    return out;
}

const char* thermal_state_name(int state) {
    switch (state) {
        case 0: return "nominal";
        case 1: return "fair";
        case 2: return "serious";
        case 3: return "critical";
        default: return "unknown";
    }
}

std::string exit_status_json(int exit_code, int state_start, int state_max, int state_end) {
    return std::string("{\"exit_code\": ") + std::to_string(exit_code) +
           ", \"thermal_state_start\": \"" + thermal_state_name(state_start) +
           "\", \"thermal_state_max\": \"" + thermal_state_name(state_max) +
           "\", \"thermal_state_end\": \"" + thermal_state_name(state_end) + "\"}";
}

}  // namespace swaplab_ios
