// What the host's check of emitted samples (host/src/sample_check.cpp)
// costs on a real node collection, next to the collection itself.
//   BM_NodeCycle:   one node collection every NODE_BENCH_GAP_MS (default 30)
//                   ms, NODE_BENCH_ITERATIONS times (default 200), as the host
//                   collects (cold caches after the sleep). Collections
//                   alternate between an emit callback that only counts and
//                   one that runs BatchCheck::check on the batch, as the host's
//                   emit does. Counters: collect_us (thread CPU, counting
//                   emit), with_check_us (thread CPU, checking emit), check_us
//                   (the check alone, timed inside the emit), check_pct
//                   (check_us / collect_us).
//   BM_CheckWarm:   the check of one node batch (copied once), back to back.
//   BM_ScrapedBody: node_exporter's body parsed as the scrape collector
//                   does, and the check of the batch (the scrape path).
//   BM_BytewiseWarm: the same batch checked byte by byte with the SDK's
//                   table-driven name checks and UTF-8 decoder (the design
//                   sample_check.cpp does not use), for comparison.
// NODE_BENCH_ENABLE=cpu,stat,... sets the node plugin's `enable` (default:
// all sub-collectors); NODE_BENCH_PLUGIN another build's moni-node.so.
#include <benchmark/benchmark.h>
#include <dlfcn.h>
#include <moni/plugin_abi.h>
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <moni/batch.hpp>
#include <moni/text_format.hpp>
#include <sstream>
#include <string>
#include <thread>

#include "sample_check.hpp"
#include "toml_config_api.hpp"

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

namespace {

const std::string kPlugin = std::getenv("NODE_BENCH_PLUGIN")
                                ? std::string(std::getenv("NODE_BENCH_PLUGIN"))
                                : std::string(MONI_PLUGIN_BUILD_DIR) + "/moni-node.so";

int env_int(const char* name, int def) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : def;
}

void host_log(void*, uint32_t level, moni_str m) {
  if (level >= MONI_LOG_WARN) std::fprintf(stderr, "node: %.*s\n", int(m.len), m.ptr);
}
int64_t host_now(void*) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double thread_cpu_seconds() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// A plugin driven through its C ABI by a minimal host (routes accepted and
// never served), configured from a TOML table.
struct RawPlugin {
  void* so = nullptr;
  const moni_plugin_descriptor* d = nullptr;
  moni_instance* inst = nullptr;
  moni_host_api host{};
  toml::table cfg;

  bool load(const std::string& path, const char* name) {
    so = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!so) return false;
    auto entry = reinterpret_cast<moni_plugin_entry_fn>(::dlsym(so, MONI_PLUGIN_ENTRY_SYMBOL));
    if (!entry) return false;
    host.struct_size = sizeof host;
    host.abi_major = MONI_ABI_MAJOR;
    host.abi_minor = MONI_ABI_MINOR;
    host.instance_name = {name, std::strlen(name)};
    host.log = &host_log;
    host.now_ms = &host_now;
    host.config = moni::host::toml_config_api();
    host.http_route = [](void*, moni_str, moni_http_handler_fn, void*, moni_error*) -> int {
      return MONI_OK;
    };
    host.http_route_fallback = host.http_route;
    host.storage = [](void*, moni_str) -> const moni_storage_reader* { return nullptr; };
    d = entry(&host);
    moni_error err{};
    inst = d->create(&host, moni::host::to_config_node(&cfg), &err);
    if (!inst) std::fprintf(stderr, "%s: %s\n", name, err.message);
    return inst && (!d->start || d->start(inst, &err) == MONI_OK);
  }
  ~RawPlugin() {
    if (inst) {
      if (d->stop) d->stop(inst);
      d->destroy(inst);
    }
  }
};

struct NodePlugin : RawPlugin {
  bool load() {
    if (const char* e = std::getenv("NODE_BENCH_ENABLE"); e && *e) {
      toml::array list;
      std::string_view rest(e);
      while (!rest.empty()) {
        size_t c = rest.find(',');
        list.push_back(std::string(rest.substr(0, c)));
        rest.remove_prefix(c == std::string_view::npos ? rest.size() : c + 1);
      }
      cfg.insert("enable", std::move(list));
    }
    return RawPlugin::load(kPlugin, "node");
  }
};

// What the host's emit does with a node batch: BatchCheck::check (when
// `check`), then prom_exposition's write() (the sink of bench.sh's config),
// which reads the same labels right after: a check that pulls them into the
// cache saves the sink some of its misses, so the sum is what counts.
struct EmitStats {
  bool check = false;
  RawPlugin* sink = nullptr;
  size_t samples = 0, dropped = 0;
  std::chrono::steady_clock::duration in_check{}, in_emit{};
};

int on_emit(void* ctx, const moni_batch* b) {
  auto* st = static_cast<EmitStats*>(ctx);
  st->samples += b->sample_count;
  auto t0 = std::chrono::steady_clock::now();
  const moni_batch* out = b;
  moni::host::BatchCheck c;
  if (st->check) {
    out = &c.check(*b);
    st->in_check += std::chrono::steady_clock::now() - t0;
    st->dropped += c.dropped_total();
  }
  benchmark::DoNotOptimize(out);
  if (st->sink) {
    moni_error err{};
    if (st->sink->d->write(st->sink->inst, out, &err) != MONI_OK)
      std::fprintf(stderr, "prom_exposition: %s\n", err.message);
  }
  st->in_emit += std::chrono::steady_clock::now() - t0;
  return MONI_OK;
}

void BM_NodeCycle(benchmark::State& state) {
  NodePlugin p;
  RawPlugin expo;
  if (!p.load()) {
    state.SkipWithError("cannot load moni-node.so");
    return;
  }
  if (!expo.load(std::string(MONI_PLUGIN_BUILD_DIR) + "/moni-prom_exposition.so", "metrics")) {
    state.SkipWithError("cannot load moni-prom_exposition.so");
    return;
  }
  auto gap = std::chrono::milliseconds(env_int("NODE_BENCH_GAP_MS", 30));
  moni_error err{};
  EmitStats warm;
  warm.sink = &expo;
  for (int i = 0; i < 3; ++i) p.d->collect(p.inst, host_now(nullptr), &on_emit, &warm, &err);
  EmitStats plain, checked;
  plain.sink = checked.sink = &expo;
  checked.check = true;
  double plain_s = 0, checked_s = 0;
  size_t n = 0;
  for (auto _ : state) {
    EmitStats& st = n % 2 ? checked : plain;
    std::this_thread::sleep_for(gap);
    double t0 = thread_cpu_seconds();
    if (p.d->collect(p.inst, host_now(nullptr), &on_emit, &st, &err) != MONI_OK)
      state.SkipWithError(err.message);
    double t = thread_cpu_seconds() - t0;
    (n % 2 ? checked_s : plain_s) += t;
    state.SetIterationTime(t);
    ++n;
  }
  auto us = [&](std::chrono::steady_clock::duration d) {
    return std::chrono::duration<double>(d).count() / static_cast<double>(n / 2) * 1e6;
  };
  double half = static_cast<double>(n / 2);
  double collect_us = plain_s / half * 1e6;
  state.counters["samples"] = static_cast<double>(plain.samples) / half;
  state.counters["collect_us"] = collect_us;
  state.counters["with_check_us"] = checked_s / half * 1e6;
  state.counters["check_us"] = us(checked.in_check);
  state.counters["write_us"] = us(plain.in_emit);
  state.counters["check_write_us"] = us(checked.in_emit);
  state.counters["check_pct"] = 100.0 * us(checked.in_check) / collect_us;
  state.counters["marginal_pct"] = 100.0 * (us(checked.in_emit) - us(plain.in_emit)) / collect_us;
  state.counters["dropped"] = static_cast<double>(checked.dropped);
}

// One node batch, copied into a Batch (one arena, as the plugin builds it).
moni::Batch& node_batch() {
  static moni::Batch b;
  static bool done = false;
  if (done) return b;
  done = true;
  NodePlugin p;
  if (!p.load()) return b;
  moni_error err{};
  p.d->collect(
      p.inst, host_now(nullptr),
      [](void* ctx, const moni_batch* in) -> int {
        auto* out = static_cast<moni::Batch*>(ctx);
        for (size_t i = 0; i < in->sample_count; ++i)
          out->add_sorted(in->samples[i].labels, in->samples[i].label_count, in->samples[i].value,
                          in->samples[i].timestamp_ms);
        for (size_t i = 0; i < in->metadata_count; ++i)
          out->describe(moni::sv(in->metadata[i].family),
                        static_cast<moni::MetricType>(in->metadata[i].type),
                        moni::sv(in->metadata[i].help), moni::sv(in->metadata[i].unit));
        return MONI_OK;
      },
      &b, &err);
  return b;
}

void BM_CheckWarm(benchmark::State& state) {
  const moni_batch& b = node_batch().view();
  if (b.sample_count == 0) {
    state.SkipWithError("no node batch");
    return;
  }
  for (auto _ : state) {
    moni::host::BatchCheck c;
    benchmark::DoNotOptimize(&c.check(b));
  }
  state.counters["samples"] = static_cast<double>(b.sample_count);
  size_t labels = 0, name_bytes = 0, value_bytes = 0, help_bytes = 0;
  for (size_t i = 0; i < b.sample_count; ++i)
    for (uint32_t k = 0; k < b.samples[i].label_count; ++k) {
      ++labels;
      name_bytes += b.samples[i].labels[k].name.len;
      value_bytes += b.samples[i].labels[k].value.len;
    }
  for (size_t i = 0; i < b.metadata_count; ++i)
    help_bytes += b.metadata[i].help.len + b.metadata[i].family.len;
  state.counters["labels"] = static_cast<double>(labels);
  state.counters["name_bytes"] = static_cast<double>(name_bytes);
  state.counters["value_bytes"] = static_cast<double>(value_bytes);
  state.counters["families"] = static_cast<double>(b.metadata_count);
  state.counters["meta_bytes"] = static_cast<double>(help_bytes);
  state.counters["ns_per_sample"] = benchmark::Counter(
      static_cast<double>(b.sample_count),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_CheckWarm)->Unit(benchmark::kMicrosecond);

// The same without the metadata (samples only) and without the samples.
void BM_CheckWarmParts(benchmark::State& state) {
  moni_batch b = node_batch().view();
  if (state.range(0) == 0)
    b.metadata_count = 0;
  else
    b.sample_count = 0;
  for (auto _ : state) {
    moni::host::BatchCheck c;
    benchmark::DoNotOptimize(&c.check(b));
  }
}
BENCHMARK(BM_CheckWarmParts)->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond);

// A scraped body (node_exporter's, bench/exposition/node_exporter.prom):
// parsing it as the scrape collector does (Parser into a Batch), and the
// check the host then runs on that batch. Counters: parse_us, check_us,
// check_pct (of the parse).
void BM_ScrapedBody(benchmark::State& state) {
  std::ifstream f(MONI_BENCH_EXPOSITION_DIR "/node_exporter.prom", std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string body = ss.str();
  moni::text::Parser parser;
  moni::Batch batch;
  double parse_s = 0, check_s = 0;
  size_t samples = 0;
  for (auto _ : state) {
    auto t0 = std::chrono::steady_clock::now();
    batch.clear();
    auto r = parser.parse(body);
    if (!r) {
      state.SkipWithError(r.error().message.c_str());
      return;
    }
    parser.append_to(batch);
    const moni_batch& v = batch.view();
    auto t1 = std::chrono::steady_clock::now();
    moni::host::BatchCheck c;
    benchmark::DoNotOptimize(&c.check(v));
    auto t2 = std::chrono::steady_clock::now();
    parse_s += std::chrono::duration<double>(t1 - t0).count();
    check_s += std::chrono::duration<double>(t2 - t1).count();
    samples = v.sample_count;
  }
  double n = static_cast<double>(state.iterations());
  state.counters["samples"] = static_cast<double>(samples);
  state.counters["parse_us"] = parse_s / n * 1e6;
  state.counters["check_us"] = check_s / n * 1e6;
  state.counters["check_pct"] = 100.0 * check_s / parse_s;
}
BENCHMARK(BM_ScrapedBody)->Unit(benchmark::kMicrosecond);

bool bytewise_ok(const moni_batch& b) {
  namespace t = moni::text;
  bool ok = true;
  for (size_t i = 0; i < b.sample_count; ++i) {
    const moni_sample& s = b.samples[i];
    for (uint32_t k = 0; k < s.label_count; ++k) {
      std::string_view n = moni::sv(s.labels[k].name), v = moni::sv(s.labels[k].value);
      if (n == moni::kMetricNameLabel)
        ok &= t::valid_metric_name(v);
      else
        ok &= t::valid_label_name(n) && t::detail::valid_utf8(v);
    }
  }
  for (size_t i = 0; i < b.metadata_count; ++i)
    ok &= t::valid_metric_name(moni::sv(b.metadata[i].family)) &&
          t::detail::valid_utf8(moni::sv(b.metadata[i].help));
  return ok;
}

void BM_BytewiseWarm(benchmark::State& state) {
  const moni_batch& b = node_batch().view();
  if (b.sample_count == 0) {
    state.SkipWithError("no node batch");
    return;
  }
  for (auto _ : state) benchmark::DoNotOptimize(bytewise_ok(b));
  state.counters["ns_per_sample"] = benchmark::Counter(
      static_cast<double>(b.sample_count),
      benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_BytewiseWarm)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("BM_NodeCycle", BM_NodeCycle)
      ->Unit(benchmark::kMicrosecond)
      ->UseManualTime()
      ->Iterations(env_int("NODE_BENCH_ITERATIONS", 200));
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
