// big.LITTLE placement (placement.h).
#include "placement.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include <cpu.h>  // ncnn: CpuSet, set_cpu_thread_affinity

#include "common.h"
#include "models.h"
#include "telemetry.h"

namespace {

const char* const kRoles[] = {"detect", "landmarks", "seg"};

int parse_count(const std::string& flag, const std::string& v)
{
    char* end = nullptr;
    long x = strtol(v.c_str(), &end, 10);
    if (v.empty() || *end || x < 0 || x >= CPU_SETSIZE)
        throw RunnerError(EXIT_USAGE, flag + ": bad CPU list entry '" + v + "'");
    return (int)x;
}

ncnn::CpuSet to_ncnn(const cpu_set_t& s)
{
    ncnn::CpuSet c;
    c.disable_all();
    for (int i = 0; i < CPU_SETSIZE; i++)
        if (CPU_ISSET(i, &s))
            c.enable(i);
    return c;
}

} // namespace

void parse_cpu_list(const std::string& flag, const std::string& list, cpu_set_t& set)
{
    CPU_ZERO(&set);
    size_t pos = 0;
    while (pos <= list.size())
    {
        size_t e = list.find(',', pos);
        if (e == std::string::npos) e = list.size();
        const std::string part = list.substr(pos, e - pos);
        const size_t dash = part.find('-');
        const int lo = parse_count(flag, part.substr(0, dash));
        const int hi = dash == std::string::npos ? lo : parse_count(flag, part.substr(dash + 1));
        if (hi < lo)
            throw RunnerError(EXIT_USAGE, flag + ": bad CPU range '" + part + "'");
        for (int c = lo; c <= hi; c++)
            CPU_SET(c, &set);
        pos = e + 1;
    }
}

std::string cpu_list_text(const cpu_set_t& set)
{
    std::string out;
    for (int c = 0; c < CPU_SETSIZE; c++)
    {
        if (!CPU_ISSET(c, &set) || (c > 0 && CPU_ISSET(c - 1, &set)))
            continue;
        int hi = c;
        while (hi + 1 < CPU_SETSIZE && CPU_ISSET(hi + 1, &set))
            hi++;
        out += (out.empty() ? "" : ",") + std::to_string(c) + (hi > c ? "-" + std::to_string(hi) : "");
    }
    return out;
}

Placement::Placement(int threads, const std::vector<std::string>& specs) : requested_(threads)
{
    CPU_ZERO(&process_);
    if (sched_getaffinity(0, sizeof(process_), &process_) != 0 || CPU_COUNT(&process_) == 0)
        CPU_SET(0, &process_);
    available_ = CPU_COUNT(&process_);
    threads_ = std::min(threads, available_);
    for (const std::string& spec : specs)
    {
        const size_t eq = spec.find('='), colon = spec.rfind(':');
        const std::string role = spec.substr(0, eq);
        if (eq == std::string::npos || colon == std::string::npos || colon < eq ||
            std::find(std::begin(kRoles), std::end(kRoles), role) == std::end(kRoles))
            throw RunnerError(EXIT_USAGE, "--placement: expected detect|landmarks|seg=CPUS:THREADS "
                              "(e.g. landmarks=4-7:2), got '" + spec + "'");
        NetPlacement& n = nets_[role];
        n.requested = spec.substr(eq + 1);
        cpu_set_t want;
        parse_cpu_list("--placement " + spec, spec.substr(eq + 1, colon - eq - 1), want);
        const int want_threads = parse_count("--placement " + spec, spec.substr(colon + 1));
        if (want_threads < 1)
            throw RunnerError(EXIT_USAGE, "--placement " + spec + ": threads must be >= 1");
        CPU_AND(&n.cpus, &want, &process_);
        if (CPU_COUNT(&n.cpus) == 0)  // none of its CPUs here (a virtual device): all of ours
            n.cpus = process_;
        n.threads = std::min(want_threads, CPU_COUNT(&n.cpus));
        n.clamped = !CPU_EQUAL(&n.cpus, &want) || n.threads != want_threads;
    }
}

void Placement::configure(ModelPack& pack) const
{
    for (const char* kind : {"face_detector", "face_mesh", "person_segmentation"})
    {
        auto it = nets_.find(net_role(kind));
        pack.threads_by_kind[kind] = it == nets_.end() ? threads_ : it->second.threads;
    }
}

void Placement::enter(const std::string& role)
{
    if (nets_.empty())
        return;
    auto it = nets_.find(role);
    const std::string want = it == nets_.end() ? "" : role;
    if (want == current_)
        return;
    const cpu_set_t& set = it == nets_.end() ? process_ : it->second.cpus;
    ncnn::set_cpu_thread_affinity(to_ncnn(set));
    current_ = want;
}

nlohmann::ordered_json Placement::describe() const
{
    nlohmann::ordered_json nets = nlohmann::ordered_json::object();
    for (const char* role : kRoles)
    {
        auto it = nets_.find(role);
        if (it == nets_.end())
            nets[role] = {{"threads", threads_}, {"cpus", cpu_list_text(process_)}, {"clamped", threads_ < requested_}};
        else
            nets[role] = {{"threads", it->second.threads}, {"cpus", cpu_list_text(it->second.cpus)},
                          {"requested", it->second.requested}, {"clamped", it->second.clamped}};
    }
    // per stage: the net stages run where their net is placed (mask: the person
    // segmentation of base mode), the others on this thread in the process's set
    nlohmann::ordered_json stages = nlohmann::ordered_json::object();
    for (int st = 0; st < ST_TOTAL; st++)
    {
        const std::string name = kStages[st];
        const char* role = name == "detect" ? "detect" : name == "landmarks" ? "landmarks" : name == "mask" ? "seg" : nullptr;
        stages[name] = role ? nets[role] : nlohmann::ordered_json{{"threads", threads_}, {"cpus", cpu_list_text(process_)}};
    }
    return {{"threads_requested", requested_}, {"threads", threads_}, {"threads_clamped", threads_ < requested_},
            {"cpus_available", cpu_list_text(process_)}, {"nets", nets}, {"stages", stages}};
}
