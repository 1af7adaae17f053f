// Camera-like input (runner/README.md, "Camera input"): NV21 frames as a phone camera hands
// them over (Camera2/CameraX YUV_420_888 delivered as NV21), prepared once on the host
// (harness/inputs/camera.py) and held in memory, the YUV -> BGR conversion as its own
// stage, and the frame clock that hands frames over at the camera's rate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <opencv2/core.hpp>

// A .nv21 file (raw: W*H luma, then W*H/2 interleaved V,U; size from the name,
// `<anything>_<W>x<H>.nv21`) or a folder of them.
struct CameraFrames
{
    int width = 0, height = 0;
    std::vector<std::vector<uint8_t>> buffers;  // loaded once: the camera's buffers
    size_t next_buf = 0;

    // True when TARGET is a .nv21 file or a folder holding .nv21 files.
    static bool is_camera_target(const std::string& target);
    // Loads every frame; throws RunnerError(EXIT_INPUT) naming the file.
    void open(const std::string& target);
    // The next buffer (looping): a CV_8UC1 header of height*3/2 rows, no copy (a camera
    // hands its buffer over; the conversion is the `convert` stage).
    void next(cv::Mat& nv21, int& source_index);
};

// BGR of a frame from any input: an NV21 buffer (CV_8UC1) is converted into `converted`;
// a BGR frame (image or video input) is returned as it is.
const cv::Mat& to_bgr(const cv::Mat& raw, cv::Mat& converted);

// The camera's frame clock. Frame k arrives at anchor + (k - anchor_frame) / fps. The
// pipeline takes the first frame that arrives once it is free; frames that arrived while it
// was busy are dropped (the camera reuses their buffers), as a camera pipeline that blocks
// on its analyzer does.
class FrameClock
{
public:
    // fps <= 0: no clock (frames as fast as the pipeline takes them).
    explicit FrameClock(double fps);

    struct Tick
    {
        int64_t camera_frame = -1;  // camera sequence number of the frame handed over
        int dropped = 0;            // camera frames dropped since the previous one
        int64_t wait_ns = 0;        // time the pipeline idled waiting for it
        double fps = 0;             // the camera's rate when it arrived
    };
    // Waits (sleeps) for the next camera frame; the first call starts the camera.
    Tick next();
    // A new rate from the next frame on (the thermal fallback lowers it and restores it).
    void set_fps(double fps);
    double fps() const { return fps_; }
    bool running() const { return fps_ > 0; }

private:
    double fps_;
    bool started_ = false;
    int64_t anchor_ns_ = 0, anchor_frame_ = 0, last_frame_ = -1;
    int64_t arrival_ns(int64_t frame) const;
};
