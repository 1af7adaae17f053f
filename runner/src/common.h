// Shared types of swap_runner: errors with exit codes, timing, face geometry.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

// Exit codes of the CLI contract (contracts.md section 2).
enum ExitCode
{
    EXIT_USAGE = 2,  // bad usage / flag
    EXIT_INPUT = 3,  // bad input file (image, video, no face in the source)
    EXIT_MODEL = 4,  // missing / corrupt model or manifest
};

// Thrown anywhere; main() prints "swap_runner: error: <msg>" and exits with `code`.
struct RunnerError : std::runtime_error
{
    int code;
    RunnerError(int c, const std::string& msg)
        : std::runtime_error(msg), code(c)
    {
    }
};

static inline int64_t now_ns()
{
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// One detector result in image pixels. keypoints: MediaPipe order
// (right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion).
struct Detection
{
    float score = 0.f;
    cv::Rect2f box;  // x, y, w, h in image pixels
    std::vector<cv::Point2f> keypoints;
};

// Landmarks of one face in image pixels.
struct Face
{
    Detection det;
    std::vector<cv::Point3f> mesh;    // 468 points, x/y in image pixels, z in crop pixels
    std::vector<cv::Point2f> lm68;    // iBUG 300-W order
    cv::Mat crop_to_image;            // 2x3 CV_64F, crop (192x192) pixels -> image pixels
    float presence = 0.f;             // sigmoid(face_flag)
    bool from_tracking = false;       // ROI came from the previous frame's landmarks
};
