// Camera-like input and the frame clock (camera.h).
#include "camera.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>

#include <dirent.h>
#include <sys/stat.h>

#include <opencv2/imgproc.hpp>

#include "common.h"

namespace {

bool ends_with(const std::string& s, const std::string& suffix)
{
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "<anything>_<W>x<H>.nv21" -> W, H (even, as NV21's 2x2 chroma needs).
bool size_from_name(const std::string& path, int& w, int& h)
{
    const std::string name = path.substr(path.find_last_of('/') + 1);
    const size_t us = name.find_last_of('_');
    if (us == std::string::npos)
        return false;
    char tail[8] = {0};
    if (sscanf(name.c_str() + us + 1, "%dx%d.%5s", &w, &h, tail) != 3 || std::string(tail) != "nv21")
        return false;
    return w > 0 && h > 0 && w % 2 == 0 && h % 2 == 0 && w <= 16384 && h <= 16384;
}

std::vector<std::string> nv21_files(const std::string& target)
{
    std::vector<std::string> files;
    struct stat st;
    if (stat(target.c_str(), &st) != 0)
        return files;
    if (!S_ISDIR(st.st_mode))
    {
        if (ends_with(target, ".nv21"))
            files.push_back(target);
        return files;
    }
    if (DIR* d = opendir(target.c_str()))
    {
        while (dirent* e = readdir(d))
        {
            std::string name = e->d_name;
            if (name[0] != '.' && ends_with(name, ".nv21"))
                files.push_back(target + "/" + name);
        }
        closedir(d);
    }
    std::sort(files.begin(), files.end());
    return files;
}

void sleep_ns(int64_t ns)
{
    if (ns <= 0)
        return;
    timespec ts{(time_t)(ns / 1000000000), (long)(ns % 1000000000)};
    while (nanosleep(&ts, &ts) != 0)
    {
    }
}

} // namespace

bool CameraFrames::is_camera_target(const std::string& target)
{
    return !nv21_files(target).empty();
}

void CameraFrames::open(const std::string& target)
{
    for (const std::string& f : nv21_files(target))
    {
        int w = 0, h = 0;
        if (!size_from_name(f, w, h))
            throw RunnerError(EXIT_INPUT, "--target " + f + ": camera frame names end in _<W>x<H>.nv21 "
                              "(even width and height)");
        if (buffers.empty())
        {
            width = w;
            height = h;
        }
        else if (w != width || h != height)
            throw RunnerError(EXIT_INPUT, "--target " + f + ": " + std::to_string(w) + "x" + std::to_string(h) +
                              ", the first camera frame is " + std::to_string(width) + "x" + std::to_string(height));
        const size_t want = (size_t)w * h * 3 / 2;
        std::vector<uint8_t> buf(want);
        FILE* fp = fopen(f.c_str(), "rb");
        if (!fp)
            throw RunnerError(EXIT_INPUT, "--target " + f + ": cannot open");
        const size_t got = fread(buf.data(), 1, want, fp);
        const bool longer = fgetc(fp) != EOF;
        fclose(fp);
        if (got != want || longer)
            throw RunnerError(EXIT_INPUT, "--target " + f + ": not an NV21 frame of " + std::to_string(w) + "x" +
                              std::to_string(h) + " (" + std::to_string(want) + " bytes expected)");
        buffers.push_back(std::move(buf));
    }
    if (buffers.empty())
        throw RunnerError(EXIT_INPUT, "--target " + target + ": no .nv21 camera frames");
}

void CameraFrames::next(cv::Mat& nv21, int& source_index)
{
    source_index = (int)next_buf;
    nv21 = cv::Mat(height * 3 / 2, width, CV_8UC1, buffers[next_buf].data());
    next_buf = (next_buf + 1) % buffers.size();
}

const cv::Mat& to_bgr(const cv::Mat& raw, cv::Mat& converted)
{
    if (raw.type() != CV_8UC1)
        return raw;
    cv::cvtColor(raw, converted, cv::COLOR_YUV2BGR_NV21);
    return converted;
}

FrameClock::FrameClock(double fps) : fps_(fps) {}

int64_t FrameClock::arrival_ns(int64_t frame) const
{
    return anchor_ns_ + (int64_t)std::llround((frame - anchor_frame_) * 1e9 / fps_);
}

FrameClock::Tick FrameClock::next()
{
    Tick t;
    if (!running())
        return t;
    t.fps = fps_;
    const int64_t now = now_ns();
    if (!started_)
    {
        started_ = true;
        anchor_ns_ = now;
        anchor_frame_ = 0;
        last_frame_ = 0;
        t.camera_frame = 0;
        return t;
    }
    // The first frame arriving at or after `now`; those in between were dropped.
    int64_t k = last_frame_ + 1;
    const int64_t late = now - arrival_ns(k);
    if (late > 0)
        k += (int64_t)std::ceil(late * fps_ / 1e9 - 1e-9);
    while (arrival_ns(k) < now)
        k++;
    t.camera_frame = k;
    t.dropped = (int)(k - last_frame_ - 1);
    t.wait_ns = arrival_ns(k) - now;
    sleep_ns(t.wait_ns);
    last_frame_ = k;
    return t;
}

void FrameClock::set_fps(double fps)
{
    if (started_ && fps > 0)
    {
        anchor_ns_ = arrival_ns(last_frame_);
        anchor_frame_ = last_frame_;
    }
    fps_ = fps;
}
