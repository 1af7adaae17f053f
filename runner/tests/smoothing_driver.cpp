// Test driver for the One Euro filter (runner/src/smoothing.cpp), built by
// tests/test_smoothing.py: argv = rate_hz min_cutoff beta d_cutoff; each stdin line is
// "scale v0 v1 ...", each stdout line the filtered values.
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>

#include "smoothing.h"

int main(int argc, char** argv)
{
    OneEuroParams p;
    if (argc == 5)
        p = OneEuroParams{atof(argv[1]), atof(argv[2]), atof(argv[3]), atof(argv[4])};
    OneEuroState st;
    std::string line;
    while (std::getline(std::cin, line))
    {
        std::istringstream in(line);
        double scale, v;
        in >> scale;
        std::vector<double> vals;
        while (in >> v)
            vals.push_back(v);
        for (double x : one_euro_step(st, vals, scale, p))
            printf("%.6f ", x);
        printf("\n");
    }
    return 0;
}
