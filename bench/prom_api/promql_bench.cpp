// Range-query latency, moni's PromQL engine vs Prometheus 2.42, same data:
// `rate(node_cpu_seconds_total[5m])` and
// `sum by (mode) (rate(node_cpu_seconds_total[5m]))` over 24 h at 60 s step.
// moni: the engine over the in-memory test store, plus the JSON encoding the
// API does. Prometheus: the HTTP API (its JSON included) on a TSDB that
// promtool backfilled from the same OpenMetrics text.
//
//   promql_bench [series counts, default 1000,10000] [repetitions, default 5]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json_format.hpp"
#include "memory_store.hpp"
#include "prometheus_peer.hpp"
#include "promql/engine.hpp"

using namespace moni::promql;
using namespace moni::promql::test_support;

namespace {

constexpr int64_t kT0 = 1700000000;
constexpr int64_t kSpan = 24 * 3600;
constexpr int64_t kScrape = 60;
const char* kModes[] = {"idle", "user", "system", "iowait", "irq", "softirq", "steal", "nice"};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

long vm_hwm_kb(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts = {1000, 10000};
  if (argc > 1) {
    counts.clear();
    std::stringstream ss(argv[1]);
    for (std::string x; std::getline(ss, x, ',');) counts.push_back(std::stoi(x));
  }
  int reps = argc > 2 ? std::stoi(argv[2]) : 5;
  const char* queries[] = {"rate(node_cpu_seconds_total[5m])",
                           "sum by (mode) (rate(node_cpu_seconds_total[5m]))"};
  std::printf("%-8s %-52s %12s %12s %12s %10s\n", "series", "query", "moni_engine", "moni+json",
              "prometheus", "points");
  for (int n : counts) {
    // Data: n counters, 8 modes per CPU, 4 CPUs per instance.
    std::string path = "/tmp/moni-promql-bench-" + std::to_string(n) + ".om";
    MemoryStore store;
    {
      std::ofstream om(path);
      om << "# TYPE node_cpu_seconds counter\n";
      for (int i = 0; i < n; ++i) {
        std::string inst = "host" + std::to_string(i / 32) + ":9100";
        std::string cpu = std::to_string((i / 8) % 4);
        const char* mode = kModes[i % 8];
        moni::Labels ls = {{"__name__", "node_cpu_seconds_total"},
                           {"cpu", cpu},
                           {"instance", inst},
                           {"job", "node"},
                           {"mode", mode}};
        double v = 0;
        for (int64_t t = 0; t <= kSpan; t += kScrape) {
          v += static_cast<double>((i * 7 + t) % 13) * 0.25;
          store.add(ls, (kT0 + t) * 1000, v);
          om << "node_cpu_seconds_total{cpu=\"" << cpu << "\",instance=\"" << inst
             << "\",job=\"node\",mode=\"" << mode << "\"} " << v << " " << (kT0 + t) << "\n";
        }
      }
      om << "# EOF\n";
    }
    PrometheusPeer prom(path);
    if (!prom.ok()) {
      std::fprintf(stderr, "prometheus: %s\n", prom.error().c_str());
      return 1;
    }
    Engine engine(store);
    for (const char* q : queries) {
      std::vector<double> eng, full, pr;
      size_t points = 0;
      for (int r = 0; r < reps; ++r) {
        auto t0 = std::chrono::steady_clock::now();
        auto res = engine.range(q, kT0 * 1000, (kT0 + kSpan) * 1000, kScrape * 1000);
        auto t1 = std::chrono::steady_clock::now();
        std::string body = moni::prom_api::query_success(res);
        auto t2 = std::chrono::steady_clock::now();
        if (!res.ok()) {
          std::fprintf(stderr, "moni: %s\n", res.message.c_str());
          return 1;
        }
        points = 0;
        for (const auto& s : res.value.mat) points += s.points.size();
        eng.push_back(std::chrono::duration<double>(t1 - t0).count());
        full.push_back(std::chrono::duration<double>(t2 - t0).count());
        std::string target =
            "/api/v1/query_range?query=" + url_encode(q) + "&start=" + std::to_string(kT0) +
            "&end=" + std::to_string(kT0 + kSpan) + "&step=" + std::to_string(kScrape);
        auto t3 = std::chrono::steady_clock::now();
        auto reply = http_get(prom.port(), target);
        auto t4 = std::chrono::steady_clock::now();
        if (reply.status != 200) {
          std::fprintf(stderr, "prometheus answered %d: %.200s\n", reply.status,
                       reply.body.c_str());
          return 1;
        }
        pr.push_back(std::chrono::duration<double>(t4 - t3).count());
      }
      std::printf("%-8d %-52s %11.3fs %11.3fs %11.3fs %10zu\n", n, q, median(eng), median(full),
                  median(pr), points);
    }
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    std::printf(
        "         peak RSS: moni bench process %ld MiB (store + engine), prometheus %ld MiB\n",
        ru.ru_maxrss / 1024, vm_hwm_kb(prom.pid()) / 1024);
    std::remove(path.c_str());
  }
  return 0;
}
