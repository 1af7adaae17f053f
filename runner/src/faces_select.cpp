// Face selection and frame-to-frame matching (faces_select.h).
#include "faces_select.h"

#include <algorithm>
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

std::vector<cv::Rect> small_face_tiles(cv::Size frame, int min_side)
{
    if (frame.width < 2 * min_side || frame.height < 2 * min_side)
        return {};
    const int tw = (int)std::ceil(0.6 * frame.width), th = (int)std::ceil(0.6 * frame.height);
    return {cv::Rect(0, 0, tw, th), cv::Rect(frame.width - tw, 0, tw, th),
            cv::Rect(0, frame.height - th, tw, th), cv::Rect(frame.width - tw, frame.height - th, tw, th)};
}

std::vector<Detection> merge_detections(std::vector<Detection> dets)
{
    std::stable_sort(dets.begin(), dets.end(), [](const Detection& a, const Detection& b) { return a.score > b.score; });
    std::vector<Detection> out;
    for (Detection& d : dets)
    {
        bool dup = false;
        for (const Detection& k : out)
        {
            const float inter = (d.box & k.box).area();
            if (inter > 0.3f * (d.box.area() + k.box.area() - inter))
                dup = true;
        }
        if (!dup)
            out.push_back(std::move(d));
    }
    return out;
}
