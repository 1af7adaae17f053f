// Landmark smoothing across frames: the One Euro filter (Casiez, Roussel, Vogel, CHI 2012),
// a low-pass whose cutoff rises with speed, so a still face stops jittering and a moving one
// is followed with little lag. Pure: no I/O, no OpenCV, one state per tracked face.
#pragma once

#include <vector>

// Parameters (runner/README.md "Landmark smoothing"). Speeds are divided by `scale` (the
// face's eye distance, px), so the speed term means the same for a 40 px and
// a 300 px face; frames are samples at `rate_hz` (runner input has no clock of its own).
struct OneEuroParams
{
    double rate_hz = 30.0;    // frames per second the samples stand for
    double min_cutoff = 0.2;  // Hz: cutoff of a still face (lower = steadier, more lag)
    double beta = 4.0;        // cutoff rise per unit of speed (eye distances per second)
    double d_cutoff = 1.0;    // Hz: cutoff of the speed estimate
};

struct OneEuroState
{
    bool initialised = false;
    std::vector<double> x;   // last filtered values (px)
    std::vector<double> dx;  // last filtered speed per value (px per second)
};

// Smoothing factor of an exponential low-pass with cutoff `cutoff_hz` at `rate_hz`.
double one_euro_alpha(double cutoff_hz, double rate_hz);

// One step: `values` (x0, y0, x1, y1, ... in px) in, filtered values out (same length).
// `scale` > 0 (px). The first call, or a call with a different length, passes the values
// through and (re)starts the state.
std::vector<double> one_euro_step(OneEuroState& state, const std::vector<double>& values,
                                  double scale, const OneEuroParams& p);
