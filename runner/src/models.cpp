// Manifest parsing and model loading. Every failure names the file and exits with 4.
#include "models.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "backend.h"
#include "common.h"

using json = nlohmann::json;

// ---- sha256 (FIPS 180-4); small enough to keep here rather than pull a crypto library ----
namespace {
struct Sha256
{
    uint32_t h[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    uint8_t buf[64];
    size_t nbuf = 0;
    uint64_t total = 0;

    static uint32_t ror(uint32_t x, int n) { return (x >> n) | (x << (32 - n)); }

    void block(const uint8_t* p)
    {
        static const uint32_t k[64] = {
            0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
            0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
            0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
            0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
            0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
            0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
            0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
            0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
        uint32_t w[64];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 64; i++)
        {
            uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
            uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16] + s0 + w[i - 7] + s1;
        }
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
        for (int i = 0; i < 64; i++)
        {
            uint32_t t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + k[i] + w[i];
            uint32_t t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
            hh = g; g = f; f = e; e = d + t1; d = c; c = b; b = a; a = t1 + t2;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }
    void update(const uint8_t* p, size_t n)
    {
        total += n;
        while (n > 0)
        {
            size_t take = std::min(n, 64 - nbuf);
            memcpy(buf + nbuf, p, take);
            nbuf += take; p += take; n -= take;
            if (nbuf == 64) { block(buf); nbuf = 0; }
        }
    }
    std::string hex()
    {
        uint64_t bits = total * 8;
        uint8_t pad = 0x80;
        update(&pad, 1);
        uint8_t zero = 0;
        while (nbuf != 56) update(&zero, 1);
        uint8_t len[8];
        for (int i = 0; i < 8; i++) len[i] = (uint8_t)(bits >> (56 - 8 * i));
        update(len, 8);
        char out[65];
        for (int i = 0; i < 8; i++) snprintf(out + 8 * i, 9, "%08x", h[i]);
        return std::string(out, 64);
    }
};

std::string read_file(const std::string& path, bool* ok)
{
    std::ifstream f(path, std::ios::binary);
    if (!f) { *ok = false; return {}; }
    std::stringstream ss;
    ss << f.rdbuf();
    *ok = true;
    return ss.str();
}

RunnerError model_error(const std::string& msg) { return RunnerError(EXIT_MODEL, msg); }
} // namespace

const char* Model::out(const std::string& role) const
{
    auto it = outputs.find(role);
    if (it == outputs.end())
        throw model_error("model '" + id + "': manifest has no output role '" + role + "'");
    return it->second.c_str();
}

Model& ModelPack::get(const std::string& id)
{
    auto it = models.find(id);
    if (it == models.end())
        throw model_error(dir + "/manifest.json: unknown model id '" + id + "'");
    return it->second;
}

void ModelPack::load_manifest(const std::string& d)
{
    dir = d;
    const std::string path = dir + "/manifest.json";
    bool ok = false;
    std::string text = read_file(path, &ok);
    if (!ok)
        throw model_error(path + ": cannot read model manifest (check --models)");
    json j;
    try
    {
        j = json::parse(text);
        if (j.at("schema_version").get<int>() != 1)
            throw model_error(path + ": unsupported schema_version " + j.at("schema_version").dump());
        for (auto& [id, m] : j.at("models").items())
        {
            Model& mo = models[id];
            mo.id = id;
            mo.kind = m.at("kind").get<std::string>();
            mo.weights = m.value("weights", "fp32");
            const json& in = m.at("input");
            mo.input.blob = in.value("blob", "in0");
            mo.input.width = in.at("width").get<int>();
            mo.input.height = in.at("height").get<int>();
            mo.input.format = in.value("format", "RGB");
            for (int c = 0; c < 3; c++)
            {
                mo.input.mean_vals[c] = in.at("mean_vals").at(c).get<float>();
                mo.input.norm_vals[c] = in.at("norm_vals").at(c).get<float>();
            }
            for (auto& [role, blob] : m.at("outputs").items())
                mo.outputs[role] = blob.get<std::string>();
            if (mo.kind == "face_detector")
            {
                const json& dj = m.at("detector");
                mo.det.num_anchors = dj.at("num_anchors").get<int>();
                mo.det.strides = dj.at("strides").get<std::vector<int>>();
                mo.det.anchor_offset_x = dj.value("anchor_offset_x", 0.5f);
                mo.det.anchor_offset_y = dj.value("anchor_offset_y", 0.5f);
                mo.det.input_size = dj.value("input_size", mo.input.width);
                mo.det.num_keypoints = dj.value("num_keypoints", 6);
                mo.det.feature_maps = dj.at("feature_maps").get<std::vector<int>>();
                mo.det.anchors_per_cell = dj.at("anchors_per_cell").get<std::vector<int>>();
                mo.det.box_scale = dj.value("box_scale", (float)mo.det.input_size);
                mo.det.score_clip = dj.value("score_clip", 100.f);
                mo.det.min_score = dj.value("min_score", 0.5f);
                mo.det.nms_iou = dj.value("nms_iou", 0.3f);
            }
        }
        for (auto& [name, mj] : j.at("modes").items())
        {
            ModeConfig& mc = modes[name];
            mc.name = name;
            mc.detector = mj.at("detector").get<std::string>();
            mc.landmarks = mj.at("landmarks").get<std::string>();
            mc.segmentation = mj.contains("segmentation") && !mj["segmentation"].is_null()
                                  ? mj["segmentation"].get<std::string>() : "";
            mc.detect_every_n_frames = std::max(1, mj.value("detect_every_n_frames", 1));
        }
        lm68_from_mesh = j.at("landmarks68_from_mesh").get<std::vector<int>>();
    }
    catch (const RunnerError&)
    {
        throw;
    }
    catch (const std::exception& e)
    {
        throw model_error(path + ": invalid manifest: " + e.what());
    }
    if (lm68_from_mesh.size() != 68)
        throw model_error(path + ": landmarks68_from_mesh must have 68 entries");
    for (int idx : lm68_from_mesh)
        if (idx < 0 || idx >= 468)
            throw model_error(path + ": landmarks68_from_mesh index out of range");
    // Keep the raw sha256 table for load_nets.
    for (auto& [id, m] : j.at("models").items())
    {
        Model& mo = models[id];
        mo.outputs["__param"] = m.at("param").get<std::string>();
        mo.outputs["__bin"] = m.at("bin").get<std::string>();
        if (m.contains("sha256"))
            for (auto& [file, hash] : m["sha256"].items())
                mo.outputs["__sha256:" + file] = hash.get<std::string>();
    }
}

std::string net_role(const std::string& kind)
{
    if (kind == "face_detector") return "detect";
    if (kind == "face_mesh") return "landmarks";
    if (kind == "person_segmentation") return "seg";
    return "";
}

void ModelPack::load_nets(const std::vector<std::string>& mode_names, int threads,
                          const std::vector<std::string>& extra_ids)
{
    std::vector<std::string> ids;
    for (const std::string& id : extra_ids)
        if (std::find(ids.begin(), ids.end(), id) == ids.end())
            ids.push_back(id);
    for (const std::string& mn : mode_names)
    {
        auto it = modes.find(mn);
        if (it == modes.end())
            throw model_error(dir + "/manifest.json: no mode '" + mn + "'");
        for (const std::string& id : {it->second.detector, it->second.landmarks, it->second.segmentation})
            if (!id.empty() && std::find(ids.begin(), ids.end(), id) == ids.end())
                ids.push_back(id);
    }
    for (const std::string& id : ids)
    {
        Model& m = get(id);
        if (m.net)
            continue;
        const std::string param = dir + "/" + m.outputs["__param"];
        const std::string bin = dir + "/" + m.outputs["__bin"];
        for (const std::string* f : {&param, &bin})
        {
            bool ok = false;
            std::string data = read_file(*f, &ok);
            if (!ok)
                throw model_error(*f + ": cannot read model file");
            std::string base = f->substr(dir.size() + 1);
            auto h = m.outputs.find("__sha256:" + base);
            if (h != m.outputs.end())
            {
                Sha256 s;
                s.update((const uint8_t*)data.data(), data.size());
                if (s.hex() != h->second)
                    throw model_error(*f + ": sha256 mismatch (corrupt or modified model file)");
            }
        }
        m.net.reset(new ncnn::Net);
        m.param_path = param;
        m.bin_path = bin;
        auto placed = threads_by_kind.find(m.kind);  // placement.h: threads per net
        // backend.cpp: CPU fp32, or Vulkan when chosen
        configure_net(m, placed != threads_by_kind.end() ? placed->second : threads);
        if (m.net->load_param(param.c_str()) != 0)
            throw model_error(param + ": ncnn cannot parse the model param file");
        if (m.net->load_model(bin.c_str()) != 0)
            throw model_error(bin + ": ncnn cannot load the model weights");
    }
}
