// Where each net runs: ncnn's CPU kernels or its Vulkan compute backend (--backend, see
// runner/README.md "CLI"). The Vulkan loader is dlopened by ncnn (NCNN_SIMPLEVK) when a net
// asks for Vulkan, so one binary runs on a machine without a GPU driver: such a net falls back
// to the CPU and the telemetry says why. Builds without Vulkan (the static phone builds)
// report "not built" the same way.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models.h"

struct ModeRuntime;

// The net roles --backend names: the face detector, the 468-point mesh, person segmentation.
static const char* const kNetRoles[] = {"detect", "landmarks", "seg"};

// --backend as parsed: role -> "cpu" | "vulkan" | "auto" (every role present).
struct BackendRequest
{
    std::map<std::string, std::string> role;
    bool any_gpu() const;  // some role asks for vulkan or auto
};

// "cpu", "vulkan", "auto" for every net, or "detect=cpu,landmarks=vulkan,seg=auto" (roles not
// named stay cpu). Throws RunnerError(EXIT_USAGE) naming --backend.
BackendRequest parse_backend(const std::string& value);


// What Vulkan this process sees (probed once, only when some role asks for the GPU).
struct VulkanInfo
{
    bool built = false;      // ncnn compiled with NCNN_VULKAN
    bool probed = false;     // a role asked for the GPU, so the loader was tried
    bool available = false;  // an instance and at least one device
    std::string reason;      // why not available ("not built", "no Vulkan loader or driver" ...)
    int device_index = -1;
    std::string device_name, device_type, driver_name, api_version, driver_version;
    bool fp16_storage = false, fp16_arithmetic = false, memory_budget_ext = false;
};

// Probes Vulkan once (creates ncnn's GPU instance); later calls return the same result.
const VulkanInfo& vulkan_info(bool probe);

// Decides every model's backend from the request and what Vulkan offers; one record per net
// for the telemetry ({"type": "backend", "net", "model", "requested", "used", "reason"}).
// Must run before ModelPack::load_nets, which reads Model::use_vulkan.
std::vector<nlohmann::ordered_json> choose_backends(ModelPack& pack, const std::vector<std::string>& mode_names,
                                                    const BackendRequest& req,
                                                    const std::vector<std::string>& extra_ids = {});

// Sets a freshly created net's options for its backend (called by ModelPack::load_nets).
void configure_net(Model& m, int threads);

// Runs one net: `in` into the input blob, the named outputs out. On Vulkan the host->device
// upload and device->host download are timed apart from the compute and added to the
// per-frame transfer counter (take_transfer_ns). Returns 0, or ncnn's error code.
int run_net(const Model& m, const ncnn::Mat& in, const std::vector<std::pair<const char*, ncnn::Mat*>>& outs);

// Nanoseconds spent in host<->device copies since the last call (0 on the CPU backend).
int64_t take_transfer_ns();

// The thermal fallback's GPU rung: every net of the mode that runs on Vulkan is reloaded
// for the CPU (opt.use_vulkan_compute = false); gpu_on() moves the nets chosen for Vulkan
// back. True when any net moved (nets shared by modes move once).
bool gpu_off(ModeRuntime& m);
bool gpu_on(ModeRuntime& m);

// Summary fields: {"backend": {net: used}, "vulkan": {...} or null}; device heaps with the
// driver's budget/usage (VK_EXT_memory_budget) when it reports them.
nlohmann::ordered_json backend_summary(const ModelPack& pack);

// Releases ncnn's GPU instance at the end of a run (after every net is gone).
struct VulkanSession
{
    ~VulkanSession();
};
