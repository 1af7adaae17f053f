#include "frames.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include <dirent.h>
#include <sys/stat.h>

#include "common.h"

#include <dlfcn.h>
#include <unistd.h>

#include <opencv2/imgproc.hpp>

#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_STATIC
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_BMP
#include "stb_image.h"
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STB_IMAGE_WRITE_STATIC
#include "stb_image_write.h"

namespace {
std::string lower_ext(const std::string& p)
{
    size_t dot = p.find_last_of('.');
    size_t slash = p.find_last_of('/');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
        return "";
    std::string e = p.substr(dot + 1);
    for (char& c : e)
        c = (char)std::tolower((unsigned char)c);
    return e;
}
bool is_image_ext(const std::string& e)
{
    return e == "jpg" || e == "jpeg" || e == "png" || e == "bmp" || e == "ppm" || e == "pgm" || e == "webp" || e == "tif" || e == "tiff";
}
} // namespace

bool read_image(const std::string& path, cv::Mat& bgr)
{
    int w = 0, h = 0, c = 0;
    unsigned char* data = stbi_load(path.c_str(), &w, &h, &c, 3);
    if (!data)
        return false;
    cv::Mat rgb(h, w, CV_8UC3, data);
    cv::cvtColor(rgb, bgr, cv::COLOR_RGB2BGR);
    stbi_image_free(data);
    return true;
}

bool write_image(const std::string& path, const cv::Mat& bgr)
{
    cv::Mat rgb;
    cv::cvtColor(bgr, rgb, cv::COLOR_BGR2RGB);
    if (lower_ext(path) == "png")
        return stbi_write_png(path.c_str(), rgb.cols, rgb.rows, 3, rgb.data, (int)rgb.step) != 0;
    return stbi_write_jpg(path.c_str(), rgb.cols, rgb.rows, 3, rgb.data, 90) != 0;
}

namespace {
// The video plugin (video_plugin.cpp), dlopen'ed from the folder of the running binary.
struct VideoApi
{
    void* (*open)(const char*) = nullptr;
    int (*read)(void*, unsigned char**, int*, int*, int*, int*) = nullptr;
    void (*close)(void*) = nullptr;
};
const VideoApi* video_api(std::string& why)
{
    static VideoApi api;
    static bool tried = false;
    static std::string err;
    if (!tried)
    {
        tried = true;
        char exe[4096];
        ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        std::string dir = n > 0 ? std::string(exe, n) : std::string(".");
        dir = dir.substr(0, dir.find_last_of('/'));
        void* h = dlopen((dir + "/libswap_video.so").c_str(), RTLD_NOW | RTLD_LOCAL);
        if (!h)
            err = std::string("video input needs libswap_video.so next to swap_runner: ") + dlerror();
        else
        {
            api.open = (void* (*)(const char*))dlsym(h, "sv_open");
            api.read = (int (*)(void*, unsigned char**, int*, int*, int*, int*))dlsym(h, "sv_read");
            api.close = (void (*)(void*))dlsym(h, "sv_close");
            if (!api.open || !api.read || !api.close)
                err = "libswap_video.so: missing symbols";
        }
    }
    why = err;
    return err.empty() ? &api : nullptr;
}

bool video_read(void* cap, cv::Mat& bgr)
{
    std::string why;
    const VideoApi* api = video_api(why);
    unsigned char* data = nullptr;
    int w = 0, h = 0, step = 0, ch = 0;
    if (!api || !api->read(cap, &data, &w, &h, &step, &ch) || (ch != 3 && ch != 1))
        return false;
    cv::Mat m(h, w, ch == 3 ? CV_8UC3 : CV_8UC1, data, step);
    if (ch == 3)
        m.copyTo(bgr);
    else
        cv::cvtColor(m, bgr, cv::COLOR_GRAY2BGR);
    return true;
}
} // namespace

void FrameSource::open(const std::string& target)
{
    path = target;
    struct stat st;
    if (stat(target.c_str(), &st) != 0)
        throw RunnerError(EXIT_INPUT, "--target " + target + ": no such file or folder");
    if (CameraFrames::is_camera_target(target))
    {
        kind = CAMERA;
        camera.open(target);
        return;
    }
    if (S_ISDIR(st.st_mode))
    {
        kind = FOLDER;
        DIR* d = opendir(target.c_str());
        if (!d)
            throw RunnerError(EXIT_INPUT, "--target " + target + ": cannot list folder");
        while (dirent* e = readdir(d))
        {
            std::string name = e->d_name;
            if (name[0] != '.' && is_image_ext(lower_ext(name)))
                files.push_back(target + "/" + name);
        }
        closedir(d);
        std::sort(files.begin(), files.end());
        if (files.empty())
            throw RunnerError(EXIT_INPUT, "--target " + target + ": folder holds no images");
    }
    else if (is_image_ext(lower_ext(target)))
    {
        kind = IMAGE;
        files.push_back(target);
    }
    else
    {
        kind = VIDEO;
        std::string why;
        const VideoApi* api = video_api(why);
        if (!api)
            throw RunnerError(EXIT_INPUT, "--target " + target + ": " + why);
        cap = api->open(target.c_str());
        cv::Mat probe;
        if (!cap || !video_read(cap, probe))
            throw RunnerError(EXIT_INPUT, "--target " + target + ": video will not open or has no frames");
        api->close(cap);  // rewind: the probe frame is decoded again as frame 0
        cap = api->open(target.c_str());
        return;
    }
    // Validate the first image now so a bad input fails before the models load.
    cv::Mat probe;
    if (!read_image(files[0], probe))
        throw RunnerError(EXIT_INPUT, "--target " + files[0] + ": cannot read image (missing, corrupt or unsupported)");
}

void FrameSource::next(cv::Mat& bgr, int& source_index)
{
    if (kind == CAMERA)
    {
        camera.next(bgr, source_index);
        return;
    }
    if (kind != VIDEO)
    {
        source_index = (int)next_file;
        const std::string& f = files[next_file];
        next_file = (next_file + 1) % files.size();
        if (!read_image(f, bgr))
            throw RunnerError(EXIT_INPUT, "--target " + f + ": cannot read image (missing, corrupt or unsupported)");
        return;
    }
    std::string why;
    const VideoApi* api = video_api(why);
    if (!video_read(cap, bgr))
    {
        api->close(cap);  // loop: reopen rather than seek (seeking is unreliable across codecs)
        cap = api->open(path.c_str());
        video_pos = 0;
        if (!cap || !video_read(cap, bgr))
            throw RunnerError(EXIT_INPUT, "--target " + path + ": video stopped decoding");
    }
    source_index = video_pos++;
}

FrameSource::~FrameSource()
{
    std::string why;
    if (cap)
        if (const VideoApi* api = video_api(why))
            api->close(cap);
}
