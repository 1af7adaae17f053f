// Backend per net (backend.h): --backend parsing, the Vulkan probe, net options, the timed
// upload / compute / download split, gpu_off(), and the summary's backend/vulkan fields.
#include "backend.h"

#include <algorithm>
#include <cstdio>

#include <mat.h>
#include <net.h>
#include <platform.h>  // NCNN_VULKAN
#if NCNN_VULKAN
#include <command.h>
#include <gpu.h>
#endif

#include "common.h"
#include "pipeline.h"

using ojson = nlohmann::ordered_json;

namespace {

int64_t g_transfer_ns = 0;

RunnerError usage(const std::string& msg) { return RunnerError(EXIT_USAGE, msg); }

std::string check_choice(const std::string& v, const std::string& what)
{
    if (v == "cpu" || v == "vulkan" || v == "auto")
        return v;
    throw usage("--backend: " + what + "expected cpu|vulkan|auto, got '" + v + "'");
}

bool known_role(const std::string& r)
{
    for (const char* k : kNetRoles)
        if (r == k)
            return true;
    return false;
}

#if NCNN_VULKAN
std::string version_string(uint32_t v)
{
    // VK_API_VERSION_MAJOR/MINOR/PATCH (the variant bits 29-31 are 0 for Vulkan)
    return std::to_string((v >> 22) & 0x7f) + "." + std::to_string((v >> 12) & 0x3ff) + "." + std::to_string(v & 0xfff);
}

const char* device_type_name(int t)
{
    // ncnn's GpuInfo::type(): 0 discrete, 1 integrated, 2 virtual, 3 cpu (lavapipe), 4 other
    static const char* const names[] = {"discrete", "integrated", "virtual", "cpu", "other"};
    return t >= 0 && t <= 4 ? names[t] : "other";
}

// VkPhysicalDeviceMemoryBudgetPropertiesEXT (VK_EXT_memory_budget), declared here so the
// build does not depend on which Vulkan headers ncnn's simplevk carries.
struct MemoryBudget
{
    VkStructureType sType;
    void* pNext;
    VkDeviceSize heapBudget[VK_MAX_MEMORY_HEAPS];
    VkDeviceSize heapUsage[VK_MAX_MEMORY_HEAPS];
};
const VkStructureType kMemoryBudgetSType = (VkStructureType)1000237000;
#endif

VulkanInfo probe()
{
    VulkanInfo v;
#if !NCNN_VULKAN
    v.reason = "not built (this build has ncnn without Vulkan)";
    return v;
#else
    v.built = true;
    v.probed = true;
    // ncnn dlopens the loader here and creates the instance; on failure it prints its own
    // diagnostic to stderr and we carry on with the CPU.
    if (ncnn::create_gpu_instance() != 0 || ncnn::get_gpu_instance() == 0)
    {
        v.reason = "no Vulkan loader or driver (ncnn could not create a Vulkan instance)";
        return v;
    }
    if (ncnn::get_gpu_count() <= 0)
    {
        v.reason = "Vulkan loader found, but no Vulkan device";
        return v;
    }
    v.available = true;
    v.device_index = ncnn::get_default_gpu_index();
    const ncnn::GpuInfo& gi = ncnn::get_gpu_info(v.device_index);
    v.device_name = gi.device_name();
    v.device_type = device_type_name(gi.type());
    v.driver_name = gi.driver_name() ? gi.driver_name() : "";
    v.api_version = version_string(gi.api_version());
    v.driver_version = std::to_string(gi.driver_version());
    v.fp16_storage = gi.support_fp16_storage();
    v.fp16_arithmetic = gi.support_fp16_arithmetic();
    v.memory_budget_ext = gi.support_VK_EXT_memory_budget() != 0;
    return v;
#endif
}

#if NCNN_VULKAN
ojson heaps_json(const VulkanInfo& v)
{
    const ncnn::GpuInfo& gi = ncnn::get_gpu_info(v.device_index);
    const VkPhysicalDeviceMemoryProperties& mp = gi.physicalDeviceMemoryProperties();
    MemoryBudget budget = {};
    bool have_budget = false;
    if (v.memory_budget_ext && ncnn::vkGetPhysicalDeviceMemoryProperties2KHR)
    {
        budget.sType = kMemoryBudgetSType;
        VkPhysicalDeviceMemoryProperties2KHR p2 = {};
        p2.sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MEMORY_PROPERTIES_2_KHR;
        p2.pNext = &budget;
        ncnn::vkGetPhysicalDeviceMemoryProperties2KHR(gi.physicalDevice(), &p2);
        have_budget = true;
    }
    ojson heaps = ojson::array();
    const double mb = 1024.0 * 1024.0;
    for (uint32_t i = 0; i < mp.memoryHeapCount; i++)
    {
        ojson h = {{"size_mb", mp.memoryHeaps[i].size / mb},
                   {"device_local", (mp.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) != 0}};
        h["budget_mb"] = have_budget ? ojson(budget.heapBudget[i] / mb) : ojson(nullptr);
        h["usage_mb"] = have_budget ? ojson(budget.heapUsage[i] / mb) : ojson(nullptr);
        heaps.push_back(h);
    }
    return heaps;
}

// Reads `in` into the device, runs the net, reads the outputs back: three submits, so the
// copies are timed apart from the compute (ncnn's own Extractor::extract(Mat) does all in one).
int run_net_vulkan(const Model& m, const ncnn::Mat& in, const std::vector<std::pair<const char*, ncnn::Mat*>>& outs)
{
    const ncnn::VulkanDevice* vkdev = m.net->vulkan_device();
    ncnn::VkAllocator* blob = vkdev->acquire_blob_allocator();
    ncnn::VkAllocator* staging = vkdev->acquire_staging_allocator();
    ncnn::Option opt = m.net->opt;
    opt.blob_vkallocator = blob;
    opt.workspace_vkallocator = blob;
    opt.staging_vkallocator = staging;
    int ret = 0;
    {
        const int64_t t0 = now_ns();
        ncnn::VkMat in_gpu;
        {
            ncnn::VkCompute up(vkdev);
            up.record_upload(in, in_gpu, opt);
            ret = up.submit_and_wait();
        }
        const int64_t t1 = now_ns();
        std::vector<ncnn::VkMat> out_gpu(outs.size());
        if (ret == 0)
        {
            ncnn::Extractor ex = m.net->create_extractor();
            ex.set_blob_vkallocator(blob);
            ex.set_workspace_vkallocator(blob);
            ex.set_staging_vkallocator(staging);
            ncnn::VkCompute cmd(vkdev);
            ex.input(m.input.blob.c_str(), in_gpu);
            for (size_t i = 0; i < outs.size() && ret == 0; i++)
                ret = ex.extract(outs[i].first, out_gpu[i], cmd);
            if (ret == 0)
                ret = cmd.submit_and_wait();
        }
        const int64_t t2 = now_ns();
        if (ret == 0)
        {
            ncnn::VkCompute down(vkdev);
            std::vector<ncnn::Mat> host(outs.size());
            for (size_t i = 0; i < outs.size(); i++)
                down.record_download(out_gpu[i], host[i], opt);
            ret = down.submit_and_wait();
            for (size_t i = 0; i < outs.size() && ret == 0; i++)
            {
                ncnn::Mat x = host[i];
                if (x.elempack != 1)
                {
                    ncnn::Mat unpacked;
                    ncnn::convert_packing(x, unpacked, 1, opt);
                    x = unpacked;
                }
                if (x.elembits() == 16)
                {
                    ncnn::Mat fp32;
                    ncnn::cast_float16_to_float32(x, fp32, opt);
                    x = fp32;
                }
                *outs[i].second = x;
            }
        }
        g_transfer_ns += (t1 - t0) + (now_ns() - t2);
    }
    vkdev->reclaim_blob_allocator(blob);
    vkdev->reclaim_staging_allocator(staging);
    return ret;
}
#endif

void load_net_files(Model& m)
{
    const std::string& param = m.param_path;
    const std::string& bin = m.bin_path;
    if (m.net->load_param(param.c_str()) != 0)
        throw RunnerError(EXIT_MODEL, param + ": ncnn cannot parse the model param file");
    if (m.net->load_model(bin.c_str()) != 0)
        throw RunnerError(EXIT_MODEL, bin + ": ncnn cannot load the model weights");
}

} // namespace

bool BackendRequest::any_gpu() const
{
    for (const auto& [r, b] : role)
        if (b != "cpu")
            return true;
    return false;
}

BackendRequest parse_backend(const std::string& value)
{
    BackendRequest req;
    for (const char* r : kNetRoles)
        req.role[r] = "cpu";
    if (value.find('=') == std::string::npos)
    {
        const std::string b = check_choice(value, "");
        for (auto& [r, v] : req.role)
            v = b;
        return req;
    }
    size_t pos = 0;
    while (pos <= value.size())
    {
        size_t e = value.find(',', pos);
        if (e == std::string::npos)
            e = value.size();
        const std::string part = value.substr(pos, e - pos);
        const size_t eq = part.find('=');
        if (eq == std::string::npos)
            throw usage("--backend: expected NET=cpu|vulkan|auto in '" + value + "', got '" + part + "'");
        const std::string role = part.substr(0, eq);
        if (!known_role(role))
            throw usage("--backend: unknown net '" + role + "' (expected detect, landmarks or seg)");
        req.role[role] = check_choice(part.substr(eq + 1), role + ": ");
        pos = e + 1;
    }
    return req;
}

const VulkanInfo& vulkan_info(bool do_probe)
{
    static VulkanInfo info;
    static bool done = false;
    if (!done && do_probe)
    {
        info = probe();
        done = true;
    }
    else if (!done)
    {
        info.built = NCNN_VULKAN != 0;
        info.reason = info.built ? "not requested (every net on --backend cpu)" : "not built (this build has ncnn without Vulkan)";
    }
    return info;
}

std::vector<ojson> choose_backends(ModelPack& pack, const std::vector<std::string>& mode_names,
                                   const BackendRequest& req, const std::vector<std::string>& extra_ids)
{
    std::vector<ojson> records;
    const VulkanInfo& vk = vulkan_info(req.any_gpu());
    std::vector<std::string> done;
    // the modes' nets, then the extra ones (the small-face fallback detector) as one more "mode"
    std::vector<std::vector<std::string>> groups;
    for (const std::string& mn : mode_names)
    {
        const ModeConfig& mc = pack.modes.at(mn);
        groups.push_back({mc.detector, mc.landmarks, mc.segmentation});
    }
    groups.push_back(extra_ids);
    for (const std::vector<std::string>& ids : groups)
    {
        for (const std::string& id : ids)
        {
            if (id.empty() || std::find(done.begin(), done.end(), id) != done.end())
                continue;
            done.push_back(id);
            Model& m = pack.get(id);
            const std::string role = net_role(m.kind);
            const auto it = req.role.find(role);
            const std::string requested = it == req.role.end() ? "cpu" : it->second;
            m.vulkan_chosen = m.use_vulkan = requested != "cpu" && vk.available;
            std::string reason = requested == "cpu" ? "requested" : m.use_vulkan ? vk.device_name : vk.reason;
            records.push_back({{"type", "backend"}, {"net", role}, {"model", id}, {"requested", requested},
                               {"used", m.use_vulkan ? "vulkan" : "cpu"},
                               {"fallback", requested == "vulkan" && !m.use_vulkan}, {"reason", reason}});
        }
    }
    return records;
}

void configure_net(Model& m, int threads)
{
    m.threads = threads;
    m.net->opt.num_threads = threads;
    m.net->opt.use_bf16_storage = false;
#if NCNN_VULKAN
    if (m.use_vulkan)
    {
        // The GPU path as a phone runs it: ncnn's defaults, fp16 storage and arithmetic where
        // the device has them (runner/README.md "GPU vs CPU agreement" for what that costs).
        m.net->opt.use_vulkan_compute = true;
        m.net->set_vulkan_device(vulkan_info(true).device_index);
        return;
    }
#endif
    // CPU: fp32 throughout so x86, arm64 and the Python reference (fp32) agree.
    m.net->opt.use_vulkan_compute = false;
    m.net->opt.use_fp16_packed = false;
    m.net->opt.use_fp16_storage = false;
    m.net->opt.use_fp16_arithmetic = false;
}

int run_net(const Model& m, const ncnn::Mat& in, const std::vector<std::pair<const char*, ncnn::Mat*>>& outs)
{
#if NCNN_VULKAN
    if (m.use_vulkan)
        return run_net_vulkan(m, in, outs);
#endif
    ncnn::Extractor ex = m.net->create_extractor();
    ex.input(m.input.blob.c_str(), in);
    for (const auto& [name, out] : outs)
        if (int ret = ex.extract(name, *out))
            return ret;
    return 0;
}

int64_t take_transfer_ns()
{
    const int64_t t = g_transfer_ns;
    g_transfer_ns = 0;
    return t;
}

namespace {
// Reloads a loaded net for the other backend (ncnn fixes the backend at load time).
bool move_net(Model* m, bool to_vulkan)
{
    if (!m || !m->net || m->use_vulkan == to_vulkan || (to_vulkan && !m->vulkan_chosen))
        return false;
    m->use_vulkan = to_vulkan;
    m->net.reset(new ncnn::Net);
    configure_net(*m, m->threads);
    load_net_files(*m);
    return true;
}

bool move_mode(ModeRuntime& r, bool to_vulkan)
{
    bool moved = move_net(r.detector.model, to_vulkan);
    moved = move_net(r.mesh.model, to_vulkan) || moved;
    if (r.has_seg)
        moved = move_net(r.seg.model, to_vulkan) || moved;
    if (r.has_fallback)
        moved = move_net(r.fallback.model, to_vulkan) || moved;
    return moved;
}
} // namespace

bool gpu_off(ModeRuntime& r) { return move_mode(r, false); }
bool gpu_on(ModeRuntime& r) { return move_mode(r, true); }

ojson backend_summary(const ModelPack& pack)
{
    ojson used = ojson::object();
    for (const auto& [id, m] : pack.models)
        if (m.net)
            used[id] = m.use_vulkan ? "vulkan" : "cpu";
    const VulkanInfo& v = vulkan_info(false);
    ojson vk;
    vk["built"] = v.built;
    vk["available"] = v.available;
    if (!v.available)
        vk["reason"] = v.reason;
    else
    {
        vk["device"] = v.device_name;
        vk["device_type"] = v.device_type;
        vk["driver"] = v.driver_name;
        vk["driver_version"] = v.driver_version;
        vk["api_version"] = v.api_version;
        vk["fp16_storage"] = v.fp16_storage;
        vk["fp16_arithmetic"] = v.fp16_arithmetic;
        vk["memory_budget"] = v.memory_budget_ext;
#if NCNN_VULKAN
        vk["heaps"] = heaps_json(v);
#endif
    }
    return {{"backend", used}, {"vulkan", vk}};
}

VulkanSession::~VulkanSession()
{
#if NCNN_VULKAN
    if (vulkan_info(false).probed)
        ncnn::destroy_gpu_instance();
#endif
}
