// Occluders of the target face that the swap must leave on top: glasses (base mode).
#pragma once

#include <vector>

#include <opencv2/core.hpp>

struct GlassesResult
{
    bool checked = false;  // the search ran on this face (base mode, swapped)
    bool found = false;
    double bridge = 0;     // evidence: mean black-hat (grey levels) of the best bridge row
    double share = 0;      // frame pixels kept from the target / face hull pixels
    cv::Mat frame;         // roi-sized CV_8U 0/255 (empty when not found)
};

// The target's glasses frame in `target_roi` (CV_8UC3, the face box `roi` of the frame;
// `pts` = 68 points in frame coordinates). A frame shows as thin dark lines
// (morphological black-hat on luma, ellipse of 8 % of the eye distance); glasses are
// recognised by their bridge, a line across the nose between the inner eye corners that a
// bare nose does not have (mean black-hat along the best row >= kGlassesBridgeMin). The
// frame = line pixels of the eye band (eyes and the nose below the bridge left out) that
// are connected to the bridge row, plus each lower rim followed around its eye (a faint
// light rim is not connected), closed so both outlines of a rim become one band, minus
// lines seen through a lens.
// `hull` (roi-sized face hull) only scales `share`.
GlassesResult find_glasses(const cv::Mat& target_roi, const std::vector<cv::Point2f>& pts,
                           cv::Rect roi, const cv::Mat& hull);

// Takes the glasses frame out of the composite's alpha: feather *= 1 - blur(frame), so
// the target's frame stays whole on top of the pasted face (the Poisson solve is not
// changed: only what is composited).
void keep_occluder(const cv::Mat& frame, cv::Mat& feather);

// Evidence threshold (grey levels). On the evaluation set: the one face with glasses 31.2,
// faces without 2.5-4.6 (docs/quality.md).
constexpr double kGlassesBridgeMin = 10.0;
