// Which target faces a frame swaps (`--faces all|largest|best`) and which face of the previous
// frame a detection continues (so its landmark smoothing carries over). Pure, no I/O.
#pragma once

#include <string>
#include <vector>

#include <opencv2/core.hpp>

#include "common.h"

// At most this many faces are swapped per frame (a crowd must not stall the pipeline: every
// face costs a mesh, a warp and a blend).
constexpr int kMaxFacesPerFrame = 8;

// Indices into `dets` (best first, as the detector returns them) to swap:
// "all": every detection up to kMaxFacesPerFrame; "largest": the biggest box (area);
// "best": the most confident detection. Empty `dets` gives an empty list.
std::vector<int> select_faces(const std::vector<Detection>& dets, const std::string& policy);

// The 2x2 overlapping tiles (each 60 % of the frame's width and height) the small-face pass
// runs the detector on; empty when the frame is smaller than 2 x `min_side` px on a side
// (a tile would not enlarge the faces for a `min_side` detector input).
std::vector<cv::Rect> small_face_tiles(cv::Size frame, int min_side);

// Detections of several detector runs in frame pixels (2x2 tiles, or two detectors on one
// frame), best first, a duplicate (IoU > 0.3 with a better one: a face found twice) dropped.
std::vector<Detection> merge_detections(std::vector<Detection> dets);

// Index of the entry of `previous` (face centres of the previous frame) nearest to `centre`
// within `max_dist` px, not yet in `taken`; -1 when none.
int match_previous(const std::vector<cv::Point2f>& previous, const std::vector<bool>& taken,
                   cv::Point2f centre, double max_dist);
