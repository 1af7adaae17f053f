// Glasses of the target face (occluders.h).
#include "occluders.h"

#include <algorithm>
#include <cmath>

#include <opencv2/imgproc.hpp>

namespace {

// The face's axes: eye centres, eye distance, unit vectors along the eyes (ex) and down
// the face (ey), in roi coordinates.
struct FaceAxes
{
    cv::Point2f left_eye, right_eye, eyes;
    float iod = 0;
    cv::Point2f ex, ey;
};

cv::Point2f mean_of(const std::vector<cv::Point2f>& p, int from, int to)
{
    cv::Point2f s(0, 0);
    for (int i = from; i < to; i++)
        s += p[i];
    return s * (1.0f / (float)(to - from));
}

float dot(cv::Point2f a, cv::Point2f b) { return a.x * b.x + a.y * b.y; }

FaceAxes face_axes(const std::vector<cv::Point2f>& q)
{
    FaceAxes a;
    a.left_eye = mean_of(q, 36, 42);
    a.right_eye = mean_of(q, 42, 48);
    a.eyes = (a.left_eye + a.right_eye) * 0.5f;
    const cv::Point2f d = a.right_eye - a.left_eye;
    a.iod = std::max(1.0f, std::hypot(d.x, d.y));
    a.ex = d * (1.0f / a.iod);
    a.ey = cv::Point2f(-a.ex.y, a.ex.x);
    return a;
}

// Mean black-hat along the row through `centre` +- `half` along ex; -1 when the row leaves
// the image.
double row_mean(const cv::Mat& bh, cv::Point2f centre, cv::Point2f ex, float half)
{
    double sum = 0;
    int n = 0;
    for (float u = -half; u <= half; u += 1.0f)
    {
        const cv::Point2f p = centre + ex * u;
        const int x = (int)std::lround(p.x), y = (int)std::lround(p.y);
        if (x < 0 || y < 0 || x >= bh.cols || y >= bh.rows)
            return -1;
        sum += bh.at<uint8_t>(y, x);
        n++;
    }
    return n ? sum / n : -1;
}

// A quadrilateral in face axes (u along ex, v along ey, in pixels) around `o`.
void fill_quad(cv::Mat& m, const FaceAxes& a, cv::Point2f o, float u0, float u1, float v0,
               float v1, uint8_t value)
{
    std::vector<cv::Point> poly;
    for (const cv::Point2f uv : {cv::Point2f(u0, v0), cv::Point2f(u1, v0), cv::Point2f(u1, v1),
                                 cv::Point2f(u0, v1)})
    {
        const cv::Point2f p = o + a.ex * uv.x + a.ey * uv.y;
        poly.emplace_back((int)std::lround(p.x), (int)std::lround(p.y));
    }
    cv::fillConvexPoly(m, poly, cv::Scalar(value));
}

// Where a frame may be: the band from above the brows to below the eyes, without the eyes
// (grown by 12 % of the eye distance) and the nose below the bridge.
cv::Mat eye_band(cv::Size size, const std::vector<cv::Point2f>& q, const FaceAxes& a)
{
    float top = 0;
    for (int i = 17; i < 27; i++)
        top = std::min(top, dot(q[i] - a.eyes, a.ey));
    cv::Mat band(size, CV_8U, cv::Scalar(0));
    fill_quad(band, a, a.eyes, -1.1f * a.iod, 1.1f * a.iod, top - 0.15f * a.iod, 0.6f * a.iod, 255);
    const int g = std::max(1, (int)std::lround(0.12 * a.iod));
    const cv::Mat grow = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(2 * g + 1, 2 * g + 1));
    for (int from : {36, 42})
    {
        std::vector<cv::Point> eye, hull;
        for (int i = from; i < from + 6; i++)
            eye.emplace_back((int)std::lround(q[i].x), (int)std::lround(q[i].y));
        cv::convexHull(eye, hull);
        cv::Mat e(size, CV_8U, cv::Scalar(0));
        cv::fillConvexPoly(e, hull, cv::Scalar(255));
        cv::dilate(e, e, grow);
        band.setTo(0, e);
    }
    const cv::Point2f inner = (q[39] + q[42]) * 0.5f;
    const float corners = dot(q[42] - q[39], a.ex);
    fill_quad(band, a, inner, -0.5f * corners, 0.5f * corners, dot(q[29] - inner, a.ey),
              1.0f * a.iod, 0);
    return band;
}

// The eye band's bounding box (eye_band's quad, reaching up to the bridge rows' top at 0.3
// eye distances above the eyes at least), grown by a kernel's width, in roi coordinates and
// clipped to the roi.
cv::Rect search_area(const std::vector<cv::Point2f>& pts, cv::Rect roi, cv::Size roi_size)
{
    const FaceAxes a = face_axes(pts);  // frame coordinates
    float top = -0.3f * a.iod;
    for (int i = 17; i < 27; i++)
        top = std::min(top, dot(pts[i] - a.eyes, a.ey));
    top -= 0.15f * a.iod;
    std::vector<cv::Point2f> corners;
    for (float u : {-1.1f * a.iod, 1.1f * a.iod})
        for (float v : {top, 0.6f * a.iod})
            corners.push_back(a.eyes + a.ex * u + a.ey * v - cv::Point2f((float)roi.x, (float)roi.y));
    const int pad = (int)std::ceil(0.1 * a.iod) + 2;
    cv::Rect box = cv::boundingRect(corners);
    box.x -= pad;
    box.y -= pad;
    box.width += 2 * pad;
    box.height += 2 * pad;
    return box & cv::Rect(0, 0, roi_size.width, roi_size.height);
}

// Lines seen through a lens (wrinkles under the eye that touch the rim) are not the frame:
// a lens is a hole of the frame (non-frame pixels not reaching the search box's border)
// whose centre lies within 0.4 IOD of an eye centre; the frame's pixels inside the convex
// hull of an eye's holes, shrunk by 1 px so the rim's inner edge stays, are dropped. A rim
// with a gap leaves no hole there and nothing is dropped.
void drop_lines_inside_lenses(cv::Mat& frame, const FaceAxes& a)
{
    cv::Mat open = frame == 0, labels, stats, centres;
    const int n = cv::connectedComponentsWithStats(open, labels, stats, centres, 4, CV_32S);
    std::vector<int> eye_of(n, -1);
    const cv::Point2f eyes[2] = {a.left_eye, a.right_eye};
    for (int i = 1; i < n; i++)
    {
        const int x = stats.at<int>(i, cv::CC_STAT_LEFT), y = stats.at<int>(i, cv::CC_STAT_TOP);
        const int w = stats.at<int>(i, cv::CC_STAT_WIDTH), h = stats.at<int>(i, cv::CC_STAT_HEIGHT);
        if (x == 0 || y == 0 || x + w >= frame.cols || y + h >= frame.rows)
            continue;  // reaches the border: around the glasses, not a lens
        const cv::Point2f c((float)centres.at<double>(i, 0), (float)centres.at<double>(i, 1));
        for (int e = 0; e < 2; e++)
            if (std::hypot(c.x - eyes[e].x, c.y - eyes[e].y) < 0.4f * a.iod)
                eye_of[i] = e;
    }
    std::vector<cv::Point> lens[2];
    for (int y = 0; y < labels.rows; y++)
    {
        const int* l = labels.ptr<int>(y);
        for (int x = 0; x < labels.cols; x++)
            if (eye_of[l[x]] >= 0)
                lens[eye_of[l[x]]].emplace_back(x, y);
    }
    for (const std::vector<cv::Point>& pts : lens)
    {
        if (pts.size() < 3)
            continue;
        std::vector<cv::Point> hull;
        cv::convexHull(pts, hull);
        cv::Mat inside(frame.size(), CV_8U, cv::Scalar(0));
        cv::fillConvexPoly(inside, hull, cv::Scalar(255));
        cv::erode(inside, inside, cv::Mat());
        frame.setTo(0, inside);
    }
}

// The lower rim's path (docs/quality.md "Faint lower rims"; glasses.py has the same
// constants): radii searched below each eye in eye distances, angle samples per pixel of arc
// at 0.5 IOD, the cost of a 1 px radial move and the share of the bridge's black-hat that
// makes a line pixel (both times the bridge's black-hat), and the share of the path on line
// pixels for a rim to be there.
constexpr float kRimRMin = 0.33f, kRimRMax = 0.65f, kRimStepsPerPx = 2.0f;
constexpr double kRimStepCost = 0.3, kRimLineShare = 0.3, kRimPresentMin = 0.7;

// The lens outline below one eye, followed around it: in polar coordinates about the eye
// centre (angles 0..180 deg below the eye line, radii kRimRMin..kRimRMax IOD in 1 px steps),
// the path with the largest sum of black-hat whose radius moves at most 1 px per angle step,
// each move costing kRimStepCost x the bridge's black-hat (dynamic programming). Returns the
// path's pixels; `along` gets the black-hat on them.
std::vector<cv::Point> rim_path(const cv::Mat& bh, cv::Point2f eye, const FaceAxes& a,
                                double bridge, std::vector<double>& along)
{
    const int n_t = std::max(16, (int)std::ceil(kRimStepsPerPx * CV_PI * 0.5 * a.iod));
    std::vector<float> radii;
    for (float r = kRimRMin * a.iod; r < kRimRMax * a.iod; r += 1.0f)
        radii.push_back(r);
    const int n_r = (int)radii.size();
    along.clear();
    if (n_r == 0)
        return {};
    cv::Mat polar(n_t, n_r, CV_64F, cv::Scalar(0)), came(n_t, n_r, CV_32S, cv::Scalar(0));
    std::vector<cv::Point> pts((size_t)n_t * n_r);
    for (int t = 0; t < n_t; t++)
    {
        const double theta = t * CV_PI / (n_t - 1);
        const cv::Point2f ray = a.ex * (float)std::cos(theta) + a.ey * (float)std::sin(theta);
        for (int r = 0; r < n_r; r++)
        {
            const cv::Point2f p = eye + ray * radii[r];
            const cv::Point xy((int)std::lround(p.x), (int)std::lround(p.y));
            pts[(size_t)t * n_r + r] = xy;
            if (xy.x >= 0 && xy.y >= 0 && xy.x < bh.cols && xy.y < bh.rows)
                polar.at<double>(t, r) = bh.at<uint8_t>(xy.y, xy.x);
        }
    }
    const double step = kRimStepCost * bridge;
    std::vector<double> total(polar.ptr<double>(0), polar.ptr<double>(0) + n_r), next(n_r);
    for (int t = 1; t < n_t; t++)
    {
        for (int r = 0; r < n_r; r++)
        {
            // from radius r, r-1, r+1: on equal sums the path stays, then moves inwards
            double best = total[r];
            int from = r;
            if (r > 0 && total[r - 1] - step > best)
            {
                best = total[r - 1] - step;
                from = r - 1;
            }
            if (r + 1 < n_r && total[r + 1] - step > best)
            {
                best = total[r + 1] - step;
                from = r + 1;
            }
            next[r] = polar.at<double>(t, r) + best;
            came.at<int>(t, r) = from;
        }
        total.swap(next);
    }
    int r = (int)(std::max_element(total.begin(), total.end()) - total.begin());
    std::vector<cv::Point> path(n_t);
    along.assign(n_t, 0);
    for (int t = n_t - 1; t >= 0; t--)
    {
        path[t] = pts[(size_t)t * n_r + r];
        along[t] = polar.at<double>(t, r);
        r = came.at<int>(t, r);
    }
    return path;
}

// The lower rim of one lens, added to `frame`: rim_path's line when black-hat >=
// kRimLineShare x the bridge's along kRimPresentMin of it, else nothing; then only the line
// pixels (same share) within k/4 px of the path, and the path itself: a thin band, not whole
// components, so wrinkles touching the rim are cut at the band's edge. `bh` is zero outside
// the eye band.
void add_lower_rim(cv::Mat& frame, const cv::Mat& bh, cv::Point2f eye, const FaceAxes& a,
                   double bridge, int k)
{
    std::vector<double> along;
    const std::vector<cv::Point> path = rim_path(bh, eye, a, bridge, along);
    if (path.empty())
        return;
    const double line = kRimLineShare * bridge;
    const long on_line =
        std::count_if(along.begin(), along.end(), [&](double v) { return v >= line; });
    if ((double)on_line / (double)along.size() < kRimPresentMin)
        return;
    const std::vector<std::vector<cv::Point>> poly{path};
    cv::Mat near(frame.size(), CV_8U, cv::Scalar(0)), lines;
    cv::polylines(near, poly, false, cv::Scalar(255), std::max(1, k / 2));
    cv::compare(bh, line, lines, cv::CMP_GE);
    cv::bitwise_and(near, lines, near);
    cv::bitwise_or(frame, near, frame);
    cv::polylines(frame, poly, false, cv::Scalar(255), 1);
}

} // namespace

GlassesResult find_glasses(const cv::Mat& target_roi, const std::vector<cv::Point2f>& pts,
                           cv::Rect roi, const cv::Mat& hull)
{
    GlassesResult r;
    r.checked = true;
    if (pts.size() < 68)
        return r;
    // Only the eye band is searched (cost): its bounding box in roi coordinates, the bridge
    // rows included; every point below is relative to it.
    const cv::Rect area = search_area(pts, roi, target_roi.size());
    if (area.width < 8 || area.height < 8)
        return r;
    std::vector<cv::Point2f> q;
    for (const cv::Point2f& p : pts)
        q.push_back(p - cv::Point2f((float)(roi.x + area.x), (float)(roi.y + area.y)));
    const FaceAxes a = face_axes(q);

    // Thin dark lines: black-hat of luma with a kernel about a rim's width.
    cv::Mat gray, bh;
    cv::cvtColor(target_roi(area), gray, cv::COLOR_BGR2GRAY);
    const int k = std::max(3, (int)std::lround(0.08 * a.iod) | 1);
    const cv::Mat kernel = cv::getStructuringElement(cv::MORPH_ELLIPSE, cv::Size(k, k));
    cv::morphologyEx(gray, bh, cv::MORPH_BLACKHAT, kernel);

    // The bridge: the best row across the nose between the inner eye corners (middle 60 %),
    // from 0.3 eye distances above to 0.15 below them.
    const cv::Point2f inner = (q[39] + q[42]) * 0.5f;
    const float half = 0.3f * dot(q[42] - q[39], a.ex);
    float best_v = 0;
    for (float v = -0.3f * a.iod; v <= 0.15f * a.iod; v += 1.0f)
    {
        const double m = row_mean(bh, inner + a.ey * v, a.ex, half);
        if (m > r.bridge)
        {
            r.bridge = m;
            best_v = v;
        }
    }
    if (r.bridge < kGlassesBridgeMin)
        return r;

    // Line pixels of the eye band at least 55 % as dark (relative) as the bridge, kept when
    // connected to the bridge row (wrinkles and brows elsewhere are not part of the frame).
    cv::Mat lines;
    const cv::Mat band = eye_band(gray.size(), q, a);
    cv::compare(bh, std::max(6.0, 0.55 * r.bridge), lines, cv::CMP_GE);
    cv::bitwise_and(lines, band, lines);
    cv::Mat labels;
    const int n = cv::connectedComponents(lines, labels, 8, CV_32S);
    std::vector<uint8_t> on_bridge(n, 0);
    const cv::Point2f row = inner + a.ey * best_v;
    for (float u = -half; u <= half; u += 1.0f)
        for (float dv : {-1.0f, 0.0f, 1.0f})
        {
            const cv::Point2f p = row + a.ex * u + a.ey * dv;
            const int x = (int)std::lround(p.x), y = (int)std::lround(p.y);
            if (x >= 0 && y >= 0 && x < labels.cols && y < labels.rows)
                on_bridge[labels.at<int>(y, x)] = 1;
        }
    on_bridge[0] = 0;
    cv::Mat frame(gray.size(), CV_8U, cv::Scalar(0));
    for (int y = 0; y < labels.rows; y++)
    {
        const int* l = labels.ptr<int>(y);
        uint8_t* f = frame.ptr<uint8_t>(y);
        for (int x = 0; x < labels.cols; x++)
            f[x] = on_bridge[l[x]] ? 255 : 0;
    }
    // A faint lower rim under 0.55 x the bridge is not connected: followed around each eye.
    cv::Mat bh_band(bh.size(), CV_8U, cv::Scalar(0));
    bh.copyTo(bh_band, band);
    add_lower_rim(frame, bh_band, a.left_eye, a, r.bridge, k);
    add_lower_rim(frame, bh_band, a.right_eye, a, r.bridge, k);
    // Both outlines of a light rim become one band; one more pixel for the antialiased edge.
    cv::morphologyEx(frame, frame, cv::MORPH_CLOSE, kernel);
    cv::dilate(frame, frame, cv::Mat());
    drop_lines_inside_lenses(frame, a);
    r.frame = cv::Mat(target_roi.size(), CV_8U, cv::Scalar(0));
    frame.copyTo(r.frame(area));
    cv::Mat in_face;
    cv::bitwise_and(r.frame, hull, in_face);
    r.found = cv::countNonZero(in_face) > 0;
    r.share = (double)cv::countNonZero(in_face) / std::max(1, cv::countNonZero(hull));
    return r;
}

void keep_occluder(const cv::Mat& frame, cv::Mat& feather)
{
    cv::Mat soft;
    frame.convertTo(soft, CV_32F, 1.0 / 255.0);
    cv::GaussianBlur(soft, soft, cv::Size(0, 0), 1.0);
    cv::subtract(1.0, soft, soft);
    cv::multiply(feather, soft, feather);
}
