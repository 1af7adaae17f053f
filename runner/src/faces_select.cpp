// Face selection and frame-to-frame matching (faces_select.h).
#include "faces_select.h"

#include <cmath>

std::vector<int> select_faces(const std::vector<Detection>& dets, const std::string& policy)
{
    std::vector<int> idx;
    if (dets.empty())
        return idx;
    if (policy == "best")
        return {0};
    if (policy == "largest")
    {
        int best = 0;
        for (int i = 1; i < (int)dets.size(); i++)
            if (dets[i].box.area() > dets[best].box.area())
                best = i;
        return {best};
    }
    for (int i = 0; i < (int)dets.size() && i < kMaxFacesPerFrame; i++)
        idx.push_back(i);
    return idx;
}

int match_previous(const std::vector<cv::Point2f>& previous, const std::vector<bool>& taken,
                   cv::Point2f centre, double max_dist)
{
    int best = -1;
    double best_d = max_dist;
    for (int i = 0; i < (int)previous.size(); i++)
    {
        if (taken[i])
            continue;
        const double d = std::hypot(previous[i].x - centre.x, previous[i].y - centre.y);
        if (d <= best_d)
        {
            best_d = d;
            best = i;
        }
    }
    return best;
}
