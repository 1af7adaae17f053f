// Where a mode's nets run (CPU or GPU). The thermal fallback's GPU rung calls these.
#pragma once

struct ModeRuntime;

// Moves the mode's GPU nets to the CPU; false when nothing moved.
bool gpu_off(ModeRuntime& m);
// Moves them back to the GPU; false when nothing moved.
bool gpu_on(ModeRuntime& m);
