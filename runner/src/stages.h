// Image stages of the pipeline that are not neural nets: enhance, align, warp, colour, mask.
#pragma once

#include <vector>

#include <opencv2/core.hpp>

// Mean luma (BT.601) of a BGR frame, on a subsampled grid (cheap, used for auto enhance).
double mean_luma(const cv::Mat& bgr);

// Mean luma (BT.601) over the union of `boxes` (clipped to the frame), every 2nd pixel of
// every 2nd row: the light of the faces, for the auto enhance decision. -1 when no pixel.
double region_luma(const cv::Mat& bgr, const std::vector<cv::Rect>& boxes);

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

// The skin of the whole face, in `roi` coordinates (CV_8U 0/255): `hull` eroded by 8% of
// the face size (sqrt of its area), without the eyes, brows and mouth of the 68 points
// `pts` (frame coords), each grown by 4% of the face size.
cv::Mat face_skin_mask(const std::vector<cv::Point2f>& pts, cv::Rect roi, const cv::Mat& hull);

struct ColorResult
{
    double de_before = 0, de_after = 0;  // the gate's value: max(band, face)
    double de_band_before = 0, de_band_after = 0;  // mean Lab of the band along the mask edge
    double de_face_before = -1, de_face_after = -1;  // mean Lab of the face skin (-1: none)
    bool tone_compensated = false;
};

// Colour correction of the warped face (roi-sized CV_8UC3, modified in place) against the
// target roi: HSV brightness match over the mask, then CIEDE2000 between the mean Lab of the
// two (a) in a band along the inside of the mask and (b) over the whole face's skin (`skin`,
// face_skin_mask; empty = band only); when the larger dE > threshold, mean/std transfer in
// Lab with the skin's statistics (the band's when the skin is too small), so the whole face,
// not only its edge, takes the target's tone.
ColorResult color_correct(cv::Mat& warped, const cv::Mat& target, const cv::Mat& mask,
                          const cv::Mat& skin = cv::Mat(), double de_threshold = 5.0);

// CIEDE2000 colour difference of two CIELAB colours (L 0..100).
double ciede2000(const cv::Vec3d& lab1, const cv::Vec3d& lab2);
