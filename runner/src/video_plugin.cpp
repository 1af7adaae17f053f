// libswap_video.so: video decoding for swap_runner, loaded with dlopen only when TARGET is a
// video. OpenCV's videoio drags in GStreamer/FFmpeg (~60 MB RSS just to load); keeping it out
// of the main binary keeps image runs lean. C ABI so the runner needs no OpenCV C++ symbols
// from here.
#include <fcntl.h>
#include <unistd.h>

#include <opencv2/core.hpp>
#include <opencv2/core/utils/logger.hpp>
#include <opencv2/videoio.hpp>

// FFmpeg and GStreamer print their own diagnostics on stderr while probing a file; the
// runner's contract is one error line, so probing runs with stderr pointed at /dev/null.
struct QuietStderr
{
    int saved = -1;
    QuietStderr()
    {
        fflush(stderr);
        saved = dup(2);
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0)
        {
            dup2(null, 2);
            close(null);
        }
    }
    ~QuietStderr()
    {
        if (saved >= 0)
        {
            dup2(saved, 2);
            close(saved);
        }
    }
};

struct SvCapture
{
    cv::VideoCapture cap;
    cv::Mat frame;
};

extern "C" {

__attribute__((visibility("default"))) void* sv_open(const char* path)
{
    cv::utils::logging::setLogLevel(cv::utils::logging::LOG_LEVEL_SILENT);
    QuietStderr quiet;
    SvCapture* c = new SvCapture;
    // FFmpeg first (no GStreamer plugin hunt), any backend as a fallback.
    if ((!c->cap.open(path, cv::CAP_FFMPEG) || !c->cap.isOpened()) && (!c->cap.open(path) || !c->cap.isOpened()))
    {
        delete c;
        return nullptr;
    }
    return c;
}

// Decodes the next frame (BGR, 8-bit). Returns 1 and the frame's buffer, 0 at the end.
__attribute__((visibility("default"))) int sv_read(void* h, unsigned char** data, int* w, int* hgt, int* step, int* channels)
{
    SvCapture* c = (SvCapture*)h;
    if (!c->cap.read(c->frame) || c->frame.empty())
        return 0;
    *data = c->frame.data;
    *w = c->frame.cols;
    *hgt = c->frame.rows;
    *step = (int)c->frame.step;
    *channels = c->frame.channels();
    return c->frame.depth() == CV_8U ? 1 : 0;
}

__attribute__((visibility("default"))) void sv_close(void* h)
{
    delete (SvCapture*)h;
}
}
