// Poisson (gradient-domain) blending of a warped source face into a target frame.
#pragma once

#include <opencv2/core.hpp>

// Our solver: the same equation as cv::seamlessClone(NORMAL_CLONE) (region = bounding box
// of the mask, source gradients on the mask eroded by 3 px, destination gradients elsewhere,
// destination values on the box border), solved by full multigrid for the correction
// f - dst. `src` and `dst` are CV_8UC3 of the same size, `mask` CV_8U (non-zero = inside).
// Writes into `out` (a copy of dst with the box replaced); returns the box.
cv::Rect poisson_blend(const cv::Mat& src, const cv::Mat& dst, const cv::Mat& mask, cv::Mat& out);

// Reference: cv::seamlessClone(NORMAL_CLONE) placed so that src and dst pixels line up.
cv::Rect opencv_blend(const cv::Mat& src, const cv::Mat& dst, const cv::Mat& mask, cv::Mat& out);

// PSNR (dB) between two CV_8UC3 images over `roi` (inf when identical).
double psnr(const cv::Mat& a, const cv::Mat& b, cv::Rect roi);
