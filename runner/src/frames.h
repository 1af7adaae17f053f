// Image I/O and the target frame source (image, folder of images, or video; looped).
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "camera.h"

// Decodes an image file to 8-bit BGR. Returns false if unreadable.
// stb_image (bundled with the ncnn sources) on every ABI: OpenCV imgcodecs costs ~40 MB RSS
// just to load (GDAL & co.), cannot be installed for arm64 beside the amd64 one, and one
// decoder everywhere means x86_64 and arm64 see identical pixels.
bool read_image(const std::string& path, cv::Mat& bgr);
// Writes .jpg (quality 90) or .png. Returns false on failure.
bool write_image(const std::string& path, const cv::Mat& bgr);

// TARGET: an image, a folder of images, a video, or camera frames (.nv21 file or folder).
struct FrameSource
{
    enum Kind { IMAGE, FOLDER, VIDEO, CAMERA } kind = IMAGE;
    std::string path;
    std::vector<std::string> files;  // IMAGE / FOLDER
    size_t next_file = 0;
    int video_pos = 0;
    void* cap = nullptr;  // handle of libswap_video.so (video_plugin.cpp)
    CameraFrames camera;  // CAMERA: .nv21 frames (camera.h)

    // Classifies and validates TARGET; throws RunnerError(EXIT_INPUT) naming the path.
    void open(const std::string& target);
    // Next frame (looping at the end): BGR, or for CAMERA the NV21 buffer (to_bgr() converts).
    // source_index = frame number within the input.
    void next(cv::Mat& bgr, int& source_index);
    ~FrameSource();
};
