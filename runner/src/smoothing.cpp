// One Euro filter (smoothing.h).
#include "smoothing.h"

#include <algorithm>
#include <cmath>

double one_euro_alpha(double cutoff_hz, double rate_hz)
{
    const double kPi = 3.14159265358979323846;
    const double tau = 1.0 / (2 * kPi * cutoff_hz);
    const double te = 1.0 / rate_hz;
    return 1.0 / (1.0 + tau / te);
}

std::vector<double> one_euro_step(OneEuroState& s, const std::vector<double>& values, double scale,
                                  const OneEuroParams& p)
{
    const double inv_scale = 1.0 / std::max(scale, 1e-6);
    const size_t n = values.size();
    if (!s.initialised || s.x.size() != n)
    {
        s.initialised = true;
        s.x = values;
        s.dx.assign(n, 0.0);
        return values;
    }
    const double a_d = one_euro_alpha(p.d_cutoff, p.rate_hz);
    std::vector<double> out(n);
    // One cutoff per point (x and y share it): the speed is the point's, not one axis's,
    // so a diagonal move is followed like a horizontal one.
    for (size_t i = 0; i + 1 < n; i += 2)
    {
        double speed2 = 0;
        for (size_t j = i; j < i + 2; j++)
        {
            const double raw_dx = (values[j] - s.x[j]) * p.rate_hz;
            s.dx[j] += a_d * (raw_dx - s.dx[j]);
            speed2 += s.dx[j] * s.dx[j];
        }
        const double speed = std::sqrt(speed2) * inv_scale;  // eye distances per second
        const double a = one_euro_alpha(p.min_cutoff + p.beta * speed, p.rate_hz);
        for (size_t j = i; j < i + 2; j++)
        {
            s.x[j] += a * (values[j] - s.x[j]);
            out[j] = s.x[j];
        }
    }
    if (n % 2)
        out[n - 1] = s.x[n - 1] = values[n - 1];
    return out;
}
