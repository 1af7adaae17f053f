// Model pack: manifest.json (contracts.md section 1) and the ncnn nets it names.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <net.h>

struct ModelInput
{
    std::string blob = "in0";
    int width = 0, height = 0;
    std::string format = "RGB";
    float mean_vals[3] = {0.f, 0.f, 0.f};
    float norm_vals[3] = {1.f, 1.f, 1.f};
};

struct DetectorConfig
{
    int num_anchors = 896;
    std::vector<int> strides;        // per SSD layer, e.g. 8,16,16,16
    float anchor_offset_x = 0.5f, anchor_offset_y = 0.5f;
    int input_size = 128;
    std::vector<int> feature_maps;     // distinct-stride feature map sizes, e.g. 16,8
    std::vector<int> anchors_per_cell; // per feature map, e.g. 2,6
    float box_scale = 128.f;           // regressor units per normalized input unit
    int num_keypoints = 6;
    float score_clip = 100.f;
    float min_score = 0.5f;
    float nms_iou = 0.3f;
};

struct Model
{
    std::string id, kind, weights;
    ModelInput input;
    std::map<std::string, std::string> outputs;  // role -> blob name
    DetectorConfig det;
    std::unique_ptr<ncnn::Net> net;
    // Backend (backend.h): vulkan_chosen by choose_backends() before loading; use_vulkan =
    // where the net runs now (gpu_off() / gpu_on() move it).
    bool vulkan_chosen = false, use_vulkan = false;
    int threads = 1;
    std::string param_path, bin_path;  // for reloading on another backend

    const char* out(const std::string& role) const;
};

struct ModeConfig
{
    std::string name;
    std::string detector, landmarks, segmentation;  // model ids ("" = none)
    int detect_every_n_frames = 1;
};

struct ModelPack
{
    std::string dir;
    std::map<std::string, Model> models;
    std::map<std::string, ModeConfig> modes;
    std::vector<int> lm68_from_mesh;
    // threads per model kind (placement.h), else load_nets' `threads`; ncnn's layers take
    // the thread count at load time
    std::map<std::string, int> threads_by_kind;

    // Parses <dir>/manifest.json; throws RunnerError(EXIT_MODEL) naming the file.
    void load_manifest(const std::string& dir);
    // Loads the nets used by `mode_names` and the models `extra_ids` (verifies sha256 and
    // sizes first).
    void load_nets(const std::vector<std::string>& mode_names, int threads,
                   const std::vector<std::string>& extra_ids = {});
    Model& get(const std::string& id);
};

// A model kind's net role in --placement and --backend: detect, landmarks, seg ("" = none).
std::string net_role(const std::string& kind);
