// Face detection (BlazeFace decode + weighted NMS), 468-point mesh, person mask.
// The math follows harness/reference.py step by step (see models/README.md): letterboxed
// detector input, MediaPipe anchors, rotated square ROI x1.5, crop by inverse affine warp.
#pragma once

#include <vector>

#include <opencv2/core.hpp>

#include "common.h"
#include "models.h"

// Rotated square face crop: centre, side lengths (px), rotation (radians).
struct Roi
{
    double cx = 0, cy = 0, width = 0, height = 0, rotation = 0;
};

struct FaceDetector
{
    Model* model = nullptr;
    std::vector<cv::Point2f> anchors;  // centres in [0,1]

    void init(Model* m);  // generates anchors; throws RunnerError(EXIT_MODEL) on mismatch
    // Faces in a BGR frame, best first, image pixels (continuous convention).
    std::vector<Detection> detect(const cv::Mat& bgr) const;
};

Roi roi_from_detection(const Detection& det);
Roi roi_from_mesh(const std::vector<cv::Point3f>& mesh);
// 2x3 CV_64F matrix: crop pixel index (u, v) -> image pixel index (x, y).
cv::Mat roi_affine(const Roi& roi, int size);

struct FaceMesh
{
    Model* model = nullptr;
    // Crops `roi` from the BGR frame, runs the mesh, fills face.mesh / lm68 / presence.
    void run(const cv::Mat& bgr, const Roi& roi, const std::vector<int>& lm68_idx, Face& face) const;
};

struct PersonSegmenter
{
    Model* model = nullptr;
    // Person probability, CV_32F, frame size (stretched 256x256 input, bilinear both ways).
    cv::Mat run(const cv::Mat& bgr) const;
};
