// Time and heap allocations of one node collection on this machine's real
// /proc and /sys, with every sub-collector enabled (the default config), or
// with the sub-collectors named in NODE_BENCH_ENABLE (comma-separated, e.g.
// bench.sh's 17: the plugin's `enable` option).
//   BM_CollectRaw:     the plugin driven through its C ABI by a minimal host
//                      whose emit callback only counts samples; allocations
//                      are counted with a replaced global operator new.
//   BM_CollectHarness: the same through moni::testing::PluginHarness, which
//                      also copies every sample (an upper bound).
#include <benchmark/benchmark.h>

#include <moni/plugin_abi.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <dlfcn.h>
#include <new>
#include <string>
#include <thread>
#include <time.h>
#include <vector>

#ifdef NODE_BENCH_HARNESS
#include "plugin_harness.hpp"
#endif

static std::atomic<uint64_t> g_allocs{0};

// The replacement pairs below are consistent (malloc/free); GCC cannot see it.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

void* operator new(std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) {
  g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace {

// NODE_BENCH_PLUGIN: another build's moni-node.so (before/after comparisons
// in one sitting); default: this build's.
const std::string kPlugin = std::getenv("NODE_BENCH_PLUGIN")
                                ? std::string(std::getenv("NODE_BENCH_PLUGIN"))
                                : std::string(MONI_PLUGIN_BUILD_DIR) + "/moni-node.so";

void host_log(void*, uint32_t level, moni_str m) {
  if (level >= MONI_LOG_WARN) std::fprintf(stderr, "node: %.*s\n", int(m.len), m.ptr);
}
int64_t host_now(void*) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int count_samples(void* ctx, const moni_batch* b) {
  *static_cast<size_t*>(ctx) += b->sample_count;
  return MONI_OK;
}

// Sums node_scrape_collector_duration_seconds per sub-collector (wall time
// of each, measured by the plugin), for NODE_BENCH_BREAKDOWN=1.
struct Breakdown {
  size_t samples = 0;
  std::vector<std::pair<std::string, double>> seconds;
};
int sum_durations(void* ctx, const moni_batch* b) {
  auto* bd = static_cast<Breakdown*>(ctx);
  bd->samples += b->sample_count;
  for (size_t i = 0; i < b->sample_count; ++i) {
    const moni_sample& s = b->samples[i];
    std::string_view name, collector;
    for (uint32_t k = 0; k < s.label_count; ++k) {
      std::string_view n(s.labels[k].name.ptr, s.labels[k].name.len);
      std::string_view v(s.labels[k].value.ptr, s.labels[k].value.len);
      if (n == "__name__") name = v;
      if (n == "collector") collector = v;
    }
    if (name != "node_scrape_collector_duration_seconds") continue;
    auto it = bd->seconds.begin();
    while (it != bd->seconds.end() && it->first != collector) ++it;
    if (it == bd->seconds.end()) it = bd->seconds.insert(it, {std::string(collector), 0.0});
    it->second += s.value;
  }
  return MONI_OK;
}

// A config table {enable = [names...]} from NODE_BENCH_ENABLE through the
// ABI's config API (nodes are these structs; only what the plugin reads).
struct CfgNode {
  uint32_t type = MONI_CFG_NONE;
  std::string str;
  std::vector<std::pair<std::string, CfgNode>> entries;  // table or array
};
const CfgNode* cfg(const moni_config_node* n) { return reinterpret_cast<const CfgNode*>(n); }
const moni_config_node* node(const CfgNode* n) { return reinterpret_cast<const moni_config_node*>(n); }
moni_config_api make_config_api() {
  moni_config_api a{};
  a.struct_size = sizeof a;
  a.type = [](const moni_config_node* n) { return n ? cfg(n)->type : uint32_t{MONI_CFG_NONE}; };
  a.get = [](const moni_config_node* t, moni_str k) -> const moni_config_node* {
    if (!t || cfg(t)->type != MONI_CFG_TABLE) return nullptr;
    for (const auto& [key, v] : cfg(t)->entries)
      if (key == std::string_view(k.ptr, k.len)) return node(&v);
    return nullptr;
  };
  a.size = [](const moni_config_node* n) { return n ? cfg(n)->entries.size() : size_t{0}; };
  a.at = [](const moni_config_node* n, size_t i, moni_str* key) -> const moni_config_node* {
    const auto& e = cfg(n)->entries.at(i);
    if (key) *key = {e.first.data(), e.first.size()};
    return node(&e.second);
  };
  a.as_string = [](const moni_config_node* n) { return moni_str{cfg(n)->str.data(), cfg(n)->str.size()}; };
  a.as_integer = [](const moni_config_node*) { return int64_t{0}; };
  a.as_float = [](const moni_config_node*) { return 0.0; };
  a.as_boolean = [](const moni_config_node*) { return 0; };
  a.position = [](const moni_config_node*) { return moni_source_pos{{"bench", 5}, 0, 0}; };
  return a;
}
const moni_config_api kConfigApi = make_config_api();

// The table for NODE_BENCH_ENABLE, or null (every option at its default).
const CfgNode* bench_config() {
  static CfgNode root;
  const char* env = std::getenv("NODE_BENCH_ENABLE");
  if (!env || !*env) return nullptr;
  root.type = MONI_CFG_TABLE;
  CfgNode list;
  list.type = MONI_CFG_ARRAY;
  std::string_view rest(env);
  while (!rest.empty()) {
    size_t c = rest.find(',');
    CfgNode name;
    name.type = MONI_CFG_STRING;
    name.str = std::string(rest.substr(0, c));
    list.entries.emplace_back("", std::move(name));
    rest.remove_prefix(c == std::string_view::npos ? rest.size() : c + 1);
  }
  root.entries.clear();
  root.entries.emplace_back("enable", std::move(list));
  return &root;
}

struct RawPlugin {
  void* so = nullptr;
  const moni_plugin_descriptor* d = nullptr;
  moni_instance* inst = nullptr;
  moni_host_api host{};
  bool load() {
    so = ::dlopen(kPlugin.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!so) return false;
    auto entry = reinterpret_cast<moni_plugin_entry_fn>(::dlsym(so, MONI_PLUGIN_ENTRY_SYMBOL));
    host.struct_size = sizeof host;
    host.abi_major = MONI_ABI_MAJOR;
    host.abi_minor = MONI_ABI_MINOR;
    host.instance_name = {"node", 4};
    host.log = &host_log;
    host.now_ms = &host_now;
    host.config = &kConfigApi;
    d = entry(&host);
    moni_error err{};
    // No config table: every option at its default, as with [collectors.node].
    inst = d->create(&host, node(bench_config()), &err);
    if (!inst) std::fprintf(stderr, "node: %s\n", err.message);
    return inst && d->start(inst, &err) == MONI_OK;
  }
  ~RawPlugin() {
    if (inst) {
      d->stop(inst);
      d->destroy(inst);
    }
  }
};

void BM_CollectRaw(benchmark::State& state) {
  RawPlugin p;
  if (!p.load()) {
    state.SkipWithError("cannot load moni-node.so");
    return;
  }
  size_t samples = 0;
  moni_error err{};
  for (int i = 0; i < 3; ++i) p.d->collect(p.inst, host_now(nullptr), &count_samples, &samples, &err);
  samples = 0;
  uint64_t a0 = g_allocs.load();
  for (auto _ : state) {
    if (p.d->collect(p.inst, host_now(nullptr), &count_samples, &samples, &err) != MONI_OK)
      state.SkipWithError(err.message);
  }
  double n = static_cast<double>(state.iterations());
  state.counters["samples"] = static_cast<double>(samples) / n;
  state.counters["allocs_per_collect"] = static_cast<double>(g_allocs.load() - a0) / n;
}
BENCHMARK(BM_CollectRaw)->Unit(benchmark::kMicrosecond);

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// One collection every NODE_BENCH_GAP_MS (default 100) ms, as the host
// collects: caches and branch predictors are cold again after the sleep, so
// this is what a collection costs in moni (BM_CollectRaw's back-to-back loop
// is about half of it). Time is the calling thread's CPU time per collection.
void BM_CollectSpaced(benchmark::State& state) {
  RawPlugin p;
  if (!p.load()) {
    state.SkipWithError("cannot load moni-node.so");
    return;
  }
  const char* gap_env = std::getenv("NODE_BENCH_GAP_MS");
  auto gap = std::chrono::milliseconds(gap_env ? std::atoi(gap_env) : 100);
  Breakdown bd;
  moni_error err{};
  for (int i = 0; i < 3; ++i) p.d->collect(p.inst, host_now(nullptr), &count_samples, &bd.samples, &err);
  bd.samples = 0;
  for (auto _ : state) {
    std::this_thread::sleep_for(gap);
    double t0 = thread_cpu_seconds();
    if (p.d->collect(p.inst, host_now(nullptr), &sum_durations, &bd, &err) != MONI_OK)
      state.SkipWithError(err.message);
    state.SetIterationTime(thread_cpu_seconds() - t0);
  }
  double n = static_cast<double>(state.iterations());
  state.counters["samples"] = static_cast<double>(bd.samples) / n;
  if (const char* b = std::getenv("NODE_BENCH_BREAKDOWN"); b && *b == '1') {
    for (const auto& [c, sec] : bd.seconds) std::fprintf(stderr, "  %-12s %7.1f us\n", c.c_str(), sec / n * 1e6);
  }
}

#ifdef NODE_BENCH_HARNESS
void BM_CollectHarness(benchmark::State& state) {
  auto h = moni::testing::PluginHarness::load(kPlugin, "");
  if (!h.ok() || !(*h)->start().ok()) {
    state.SkipWithError("cannot load moni-node.so");
    return;
  }
  auto& p = **h;
  (void)p.collect(host_now(nullptr));
  size_t samples = 0;
  uint64_t a0 = g_allocs.load();
  for (auto _ : state) {
    auto b = p.collect(host_now(nullptr));
    samples += b.ok() ? b->samples.size() : 0;
  }
  double n = static_cast<double>(state.iterations());
  state.counters["samples"] = static_cast<double>(samples) / n;
  state.counters["allocs_per_collect"] = static_cast<double>(g_allocs.load() - a0) / n;
}
BENCHMARK(BM_CollectHarness)->Unit(benchmark::kMicrosecond);
#endif

}  // namespace

int main(int argc, char** argv) {
  // BM_CollectSpaced runs NODE_BENCH_ITERATIONS collections (default 100).
  const char* it = std::getenv("NODE_BENCH_ITERATIONS");
  benchmark::RegisterBenchmark("BM_CollectSpaced", BM_CollectSpaced)
      ->Unit(benchmark::kMicrosecond)
      ->UseManualTime()
      ->Iterations(it ? std::atoi(it) : 100);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
