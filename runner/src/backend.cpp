// CPU-only build: no net runs on the GPU, so the fallback's GPU rung never moves (it is
// recorded as skipped). The Vulkan backend replaces this file.
#include "backend.h"

bool gpu_off(ModeRuntime&) { return false; }
bool gpu_on(ModeRuntime&) { return false; }
