// big.LITTLE placement (runner/README.md, "Placement"): which CPUs and how many threads each
// net runs on (`--placement detect=0-3:1 --placement landmarks=4-7:2 --placement seg=4-7:2`),
// as the mobile pipeline puts the small models single-threaded on the efficiency cores and
// the heavy ones multi-threaded on the performance cores. Threads never exceed the CPUs this
// process may run on (a virtual device on a 2-core host gets 2, not the phone's 4: on that
// host 4 threads made frames 2.6x slower than 1); every clamp is recorded.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <sched.h>

#include <nlohmann/json.hpp>

struct ModelPack;

// "4-7", "0,2", "0-1,4" -> set; throws RunnerError(EXIT_USAGE) naming `flag`.
void parse_cpu_list(const std::string& flag, const std::string& list, cpu_set_t& set);
std::string cpu_list_text(const cpu_set_t& set);

struct NetPlacement
{
    std::string requested;  // as given, "4-7:2"
    cpu_set_t cpus;
    int threads = 1;
    bool clamped = false;
};

class Placement
{
public:
    // After --cpu-affinity: `specs` are the --placement values ("role=CPUS:THREADS").
    Placement(int threads, const std::vector<std::string>& specs);

    int threads() const { return threads_; }  // clamped to the CPUs available
    // Per-net threads for the nets about to load (ncnn::Option::num_threads).
    void configure(ModelPack& pack) const;
    // Before a net's stage: its CPU set for ncnn's worker threads (and this thread);
    // "" = back to the process's set. No-op when the set is already in force.
    void enter(const std::string& role);
    // Summary: threads requested / used, clamps, CPU set and threads per stage.
    nlohmann::ordered_json describe() const;

private:
    int requested_, threads_, available_;
    cpu_set_t process_;
    std::map<std::string, NetPlacement> nets_;  // detect, landmarks, seg
    std::string current_;
};

