// Time and heap allocations of one node collection on this machine's real
// /proc and /sys, with every sub-collector enabled (the default config).
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

const std::string kPlugin = std::string(MONI_PLUGIN_BUILD_DIR) + "/moni-node.so";

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
    d = entry(&host);
    moni_error err{};
    // No config table: every option at its default, as with [collectors.node].
    inst = d->create(&host, nullptr, &err);
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

BENCHMARK_MAIN();
