// The runner core behind one entry point: swap_runner's main() on Linux and Android, and
// the app wrapper on iOS (runner/ios/), call swaplab_run with a command line (runner/README.md,
// "CLI"). Telemetry goes where --telemetry says (stdout by default); errors are printed as
// "swap_runner: error: ..." to stderr and returned as the exit code (0 ok, 2 usage, 3 input,
// 4 model, 1 internal).
#pragma once

#ifdef __cplusplus
extern "C" {
#endif

int swaplab_run(int argc, char** argv);

#ifdef __cplusplus
}
#endif
