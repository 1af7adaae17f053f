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

// Index of the entry of `previous` (face centres of the previous frame) nearest to `centre`
// within `max_dist` px, not yet in `taken`; -1 when none.
int match_previous(const std::vector<cv::Point2f>& previous, const std::vector<bool>& taken,
                   cv::Point2f centre, double max_dist);
