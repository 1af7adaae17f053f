// Detector decode, ROI and mesh: each function mirrors its namesake in harness/reference.py.
#include "face.h"

#include "backend.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include <opencv2/imgproc.hpp>

namespace {

const double kPi = 3.14159265358979323846;

double normalize_radians(double a)
{
    return a - 2 * kPi * std::floor((a + kPi) / (2 * kPi));
}

// (x - mean) * norm of an 8-bit BGR image into an RGB ncnn::Mat (= substract_mean_normalize).
ncnn::Mat to_input(const cv::Mat& bgr, const ModelInput& in)
{
    CV_Assert(bgr.isContinuous());
    ncnn::Mat m = ncnn::Mat::from_pixels(bgr.data, ncnn::Mat::PIXEL_BGR2RGB, bgr.cols, bgr.rows);
    m.substract_mean_normalize(in.mean_vals, in.norm_vals);
    return m;
}

struct Cand
{
    float score;
    double box[4];  // xmin, ymin, xmax, ymax (image px)
    std::vector<double> kp;
};

double iou(const double* a, const double* b)
{
    double ix = std::max(0.0, std::min(a[2], b[2]) - std::max(a[0], b[0]));
    double iy = std::max(0.0, std::min(a[3], b[3]) - std::max(a[1], b[1]));
    double inter = ix * iy;
    double uni = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    return uni > 0 ? inter / std::max(uni, 1e-12) : 0.0;
}

} // namespace

void FaceDetector::init(Model* m)
{
    model = m;
    const DetectorConfig& d = m->det;
    anchors.clear();
    for (size_t i = 0; i < d.feature_maps.size() && i < d.anchors_per_cell.size(); i++)
    {
        const int fm = d.feature_maps[i];
        for (int y = 0; y < fm; y++)
            for (int x = 0; x < fm; x++)
                for (int k = 0; k < d.anchors_per_cell[i]; k++)
                    anchors.emplace_back((x + d.anchor_offset_x) / fm, (y + d.anchor_offset_y) / fm);
    }
    if ((int)anchors.size() != d.num_anchors)
        throw RunnerError(EXIT_MODEL, "model '" + m->id + "': anchor count " + std::to_string(anchors.size()) +
                                          " != num_anchors " + std::to_string(d.num_anchors));
}

std::vector<Detection> FaceDetector::detect(const cv::Mat& bgr) const
{
    const DetectorConfig& d = model->det;
    const int size = model->input.width;
    // Letterbox: resize keeping aspect (bilinear), pad black, centred (reference.letterbox).
    const double s = std::min((double)size / bgr.cols, (double)size / bgr.rows);
    // std::nearbyint rounds half to even, like Python's round() in the reference.
    const int nw = std::max(1, (int)std::nearbyint(bgr.cols * s)), nh = std::max(1, (int)std::nearbyint(bgr.rows * s));
    const int px = (size - nw) / 2, py = (size - nh) / 2;
    cv::Mat lb(size, size, CV_8UC3, cv::Scalar(0, 0, 0));
    cv::resize(bgr, lb(cv::Rect(px, py, nw, nh)), cv::Size(nw, nh), 0, 0, cv::INTER_LINEAR);
    const double sx = (double)nw / bgr.cols, sy = (double)nh / bgr.rows;

    ncnn::Mat reg, logit;
    if (run_net(*model, to_input(lb, model->input), {{model->out("regressors"), &reg}, {model->out("scores"), &logit}}) != 0)
        throw RunnerError(EXIT_MODEL, "model '" + model->id + "': ncnn extract failed");
    const int n = d.num_anchors;
    if ((int)reg.total() != n * 16 || (int)logit.total() != n)
        throw RunnerError(EXIT_MODEL, "model '" + model->id + "': unexpected output shape");
    const float* R = (const float*)reg.data;
    const float* L = (const float*)logit.data;

    std::vector<Cand> cands;
    const int K = d.num_keypoints;
    for (int i = 0; i < n; i++)
    {
        float x = std::max(-d.score_clip, std::min(d.score_clip, L[i]));
        float score = 1.f / (1.f + std::exp(-x));
        if (score < d.min_score)
            continue;
        const float* r = R + 16 * i;
        const double ax = anchors[i].x, ay = anchors[i].y, sc = d.box_scale;
        double cx = r[0] / sc + ax, cy = r[1] / sc + ay, w = r[2] / sc, h = r[3] / sc;
        Cand c;
        c.score = score;
        c.box[0] = ((cx - w / 2) * size - px) / sx;
        c.box[1] = ((cy - h / 2) * size - py) / sy;
        c.box[2] = ((cx + w / 2) * size - px) / sx;
        c.box[3] = ((cy + h / 2) * size - py) / sy;
        c.kp.resize(2 * K);
        for (int j = 0; j < K; j++)
        {
            c.kp[2 * j] = ((r[4 + 2 * j] / sc + ax) * size - px) / sx;
            c.kp[2 * j + 1] = ((r[5 + 2 * j] / sc + ay) * size - py) / sy;
        }
        cands.push_back(std::move(c));
    }
    // MediaPipe WEIGHTED NMS (reference.weighted_nms): stable order by descending score.
    std::vector<int> remaining(cands.size());
    std::iota(remaining.begin(), remaining.end(), 0);
    std::stable_sort(remaining.begin(), remaining.end(), [&](int a, int b) { return cands[a].score > cands[b].score; });
    std::vector<Detection> out;
    while (!remaining.empty())
    {
        const int top = remaining[0];
        std::vector<int> members, rest;
        for (int i : remaining)
            (i == top || iou(cands[top].box, cands[i].box) > d.nms_iou ? members : rest).push_back(i);
        double wsum = 0, box[4] = {0, 0, 0, 0};
        std::vector<double> kp(2 * K, 0.0);
        for (int i : members)
        {
            const double w = cands[i].score;
            wsum += w;
            for (int k = 0; k < 4; k++)
                box[k] += w * cands[i].box[k];
            for (int k = 0; k < 2 * K; k++)
                kp[k] += w * cands[i].kp[k];
        }
        Detection det;
        det.score = cands[top].score;
        det.box = cv::Rect2f((float)(box[0] / wsum), (float)(box[1] / wsum), (float)((box[2] - box[0]) / wsum),
                             (float)((box[3] - box[1]) / wsum));
        for (int k = 0; k < K; k++)
            det.keypoints.emplace_back((float)(kp[2 * k] / wsum), (float)(kp[2 * k + 1] / wsum));
        out.push_back(std::move(det));
        remaining.swap(rest);
    }
    return out;
}

Roi roi_from_detection(const Detection& det)
{
    const double x0 = det.keypoints[0].x, y0 = det.keypoints[0].y;
    const double x1 = det.keypoints[1].x, y1 = det.keypoints[1].y;
    Roi r;
    r.rotation = normalize_radians(0.0 - std::atan2(-(y1 - y0), x1 - x0));
    r.cx = det.box.x + det.box.width / 2.0;
    r.cy = det.box.y + det.box.height / 2.0;
    r.width = r.height = std::max(det.box.width, det.box.height) * 1.5;
    return r;
}

Roi roi_from_mesh(const std::vector<cv::Point3f>& mesh)
{
    const double x0 = mesh[33].x, y0 = mesh[33].y, x1 = mesh[263].x, y1 = mesh[263].y;
    double xmin = 1e30, ymin = 1e30, xmax = -1e30, ymax = -1e30;
    for (const auto& p : mesh)
    {
        xmin = std::min(xmin, (double)p.x); xmax = std::max(xmax, (double)p.x);
        ymin = std::min(ymin, (double)p.y); ymax = std::max(ymax, (double)p.y);
    }
    Roi r;
    r.rotation = normalize_radians(0.0 - std::atan2(-(y1 - y0), x1 - x0));
    r.cx = (xmin + xmax) / 2;
    r.cy = (ymin + ymax) / 2;
    r.width = r.height = std::max(xmax - xmin, ymax - ymin) * 1.5;
    return r;
}

cv::Mat roi_affine(const Roi& roi, int size)
{
    const double c = std::cos(roi.rotation), s = std::sin(roi.rotation);
    const double a = c * roi.width / size, b = -s * roi.height / size;
    const double d = s * roi.width / size, e = c * roi.height / size;
    const double h = 0.5 - size / 2.0;
    cv::Mat M = (cv::Mat_<double>(2, 3) << a, b, roi.cx + a * h + b * h - 0.5, d, e, roi.cy + d * h + e * h - 0.5);
    return M;
}

void FaceMesh::run(const cv::Mat& bgr, const Roi& roi, const std::vector<int>& lm68_idx, Face& face) const
{
    const int size = model->input.width;
    cv::Mat M = roi_affine(roi, size);
    cv::Mat crop;
    cv::warpAffine(bgr, crop, M, cv::Size(size, size), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP, cv::BORDER_REPLICATE);
    ncnn::Mat lm, flag;
    if (run_net(*model, to_input(crop, model->input), {{model->out("landmarks"), &lm}, {model->out("face_flag"), &flag}}) != 0)
        throw RunnerError(EXIT_MODEL, "model '" + model->id + "': ncnn extract failed");
    if (lm.total() != 468 * 3 || flag.total() < 1)
        throw RunnerError(EXIT_MODEL, "model '" + model->id + "': unexpected output shape");
    const float* p = (const float*)lm.data;
    const double c = std::cos(roi.rotation), s = std::sin(roi.rotation);
    face.mesh.resize(468);
    for (int i = 0; i < 468; i++)
    {
        const double u = p[3 * i] / size - 0.5, v = p[3 * i + 1] / size - 0.5;
        face.mesh[i] = cv::Point3f((float)(roi.cx + c * u * roi.width - s * v * roi.height),
                                   (float)(roi.cy + s * u * roi.width + c * v * roi.height),
                                   (float)(p[3 * i + 2] / size * roi.width));
    }
    face.lm68.resize(lm68_idx.size());
    for (size_t i = 0; i < lm68_idx.size(); i++)
        face.lm68[i] = cv::Point2f(face.mesh[lm68_idx[i]].x, face.mesh[lm68_idx[i]].y);
    const float x = ((const float*)flag.data)[0];
    face.presence = 1.f / (1.f + std::exp(-std::max(-80.f, std::min(80.f, x))));
    face.crop_to_image = M;
}

cv::Mat PersonSegmenter::run(const cv::Mat& bgr) const
{
    const int w = model->input.width, h = model->input.height;
    cv::Mat small;
    cv::resize(bgr, small, cv::Size(w, h), 0, 0, cv::INTER_LINEAR);
    ncnn::Mat m;
    if (run_net(*model, to_input(small, model->input), {{model->out("mask"), &m}}) != 0 || (int)m.total() != w * h)
        throw RunnerError(EXIT_MODEL, "model '" + model->id + "': ncnn extract failed");
    cv::Mat prob(h, w, CV_32F, m.data), full;
    cv::resize(prob, full, bgr.size(), 0, 0, cv::INTER_LINEAR);
    return full;
}
