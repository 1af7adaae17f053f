// Image stages of the pipeline that are not neural nets: enhance, align, warp, colour, mask.
#pragma once

#include <vector>

#include <opencv2/core.hpp>

// Mean luma (BT.601) of a BGR frame, on a subsampled grid (cheap, used for auto enhance).
double mean_luma(const cv::Mat& bgr);

// Single-scale Retinex low-light pass, in place: estimate illumination as a blurred,
// downsampled luma, then scale each pixel by (target / illumination)^strength.
void retinex_enhance(cv::Mat& bgr);

// Similarity (4 dof, Umeyama least squares) or full affine transform src -> dst (2x3 CV_64F).
cv::Mat estimate_transform(const std::vector<cv::Point2f>& src, const std::vector<cv::Point2f>& dst, bool affine);

// Face region in the target frame: bounding box of the landmarks grown by `margin` (fraction
// of the box size), clipped to the frame.
cv::Rect face_roi(const std::vector<cv::Point2f>& pts, cv::Size frame, float margin);

// Warps the source image into `roi` of the target frame with M (source -> target frame).
void warp_face(const cv::Mat& src, const cv::Mat& M, cv::Rect roi, cv::Mat& warped_roi);

// Convex hull of `pts` (frame coords) filled in roi coordinates (CV_8U, 0/255).
cv::Mat hull_mask(const std::vector<cv::Point2f>& pts, cv::Rect roi);

// The source's own face region where the warp puts it: the hull of its 68 points mapped by
// the 2x3 transform M, in `roi` coordinates. Outside it the warped image shows the source's
// background, ears or hair, which must never be pasted.
cv::Mat warped_hull_mask(const std::vector<cv::Point2f>& src_pts, const cv::Mat& M, cv::Rect roi);

// Blend mask from the hull: eroded by a margin adapted to the face size so the Poisson
// boundary sits inside the face; in base mode intersected with the person mask (`person`,
// CV_32F roi-sized probability, empty = none) so occluders are kept. `feather` (CV_32F
// 0..1) fades the composite over a width adapted to the face size.
void blend_mask(const cv::Mat& hull, const cv::Mat& person, cv::Mat& mask, cv::Mat& feather);

struct ColorResult
{
    double de_before = 0, de_after = 0;
    bool tone_compensated = false;
};

// Colour correction of the warped face (roi-sized CV_8UC3, modified in place) against the
// target roi: HSV brightness match over the mask, then CIEDE2000 between the mean Lab of the
// two in a band along the inside of the mask; when dE > threshold, mean/std transfer in Lab.
ColorResult color_correct(cv::Mat& warped, const cv::Mat& target, const cv::Mat& mask, double de_threshold = 5.0);

// CIEDE2000 colour difference of two CIELAB colours (L 0..100).
double ciede2000(const cv::Vec3d& lab1, const cv::Vec3d& lab2);
