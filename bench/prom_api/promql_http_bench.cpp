// Range-query latency over HTTP, moni vs Prometheus 2.42, in one run on the
// same data: an OpenMetrics file of N node_cpu_seconds_total counters over
// 24 h at 60 s is backfilled into Prometheus with `promtool tsdb
// create-blocks-from openmetrics` and into moni (the real host, lmdb_tsdb and
// prom_api, Release build) with `moni import`; both serve it on loopback and
// the same client times
//   rate(node_cpu_seconds_total[5m])
//   sum by (mode) (rate(node_cpu_seconds_total[5m]))
// over the 24 h at 60 s step (1441 steps), alternating servers. Prints the
// median latencies, both servers' peak RSS (VmHWM), import times and the
// load average.
//
//   promql_http_bench [series counts, default 1000,10000] [repetitions, default 5]
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "prometheus_peer.hpp"
#include "response_compare.hpp"

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

long vm_hwm_mib(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6)) / 1024;
  return -1;
}

std::string loadavg() {
  std::ifstream f("/proc/loadavg");
  std::string a, b, c;
  f >> a >> b >> c;
  return a + " " + b + " " + c;
}

double secs_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The real moni host on a free port, loaded with `moni import`.
class MoniServer {
 public:
  MoniServer(const std::string& data, const std::string& dir) : dir_(dir) {
    port_ = free_port();
    config_ = dir_ + "/moni.toml";
    // max_samples: moni counts every sample each step's window touches
    // (72 M for rate over 10k series); Prometheus counts samples held at
    // once. Raised so both answer the same queries.
    std::ofstream(config_) << "[host]\nlisten = \"127.0.0.1:" << port_ << "\"\ndata_dir = \""
                           << dir_
                           << "\"\nlog_level = \"warn\"\n\n[storage.tsdb]\nplugin = "
                              "\"lmdb_tsdb\"\nretention = \"100y\"\n\n"
                              "[outputs.api]\nplugin = \"prom_api\"\nmax_samples = 2000000000\n";
    auto t0 = std::chrono::steady_clock::now();
    std::string out;
    int rc = run({moni(), "import", "--config", config_, "--storage", "tsdb", data}, &out);
    import_s_ = secs_since(t0);
    if (rc != 0) {
      error_ = "moni import failed (" + std::to_string(rc) + "): " + out;
      return;
    }
    pid_ = spawn({moni(), "run", "--config", config_}, dir_ + "/moni.log");
    if (!wait_http_ok(port_, "/api/v1/status/buildinfo", 60))
      error_ = "moni did not serve /api/v1/status/buildinfo: see " + dir_ + "/moni.log";
  }
  ~MoniServer() { stop(pid_); }
  static std::string moni() { return std::string(MONI_BINARY_DIR) + "/bin/moni"; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  double import_seconds() const { return import_s_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, config_, error_;
  int port_ = 0;
  pid_t pid_ = -1;
  double import_s_ = 0;
};

// Time-major OpenMetrics (one family, so samples of a series may
// interleave): n counters, 8 modes per CPU, 4 CPUs per instance.
void write_openmetrics(const std::string& path, int n) {
  std::ofstream om(path);
  om << "# TYPE node_cpu_seconds counter\n# HELP node_cpu_seconds CPU seconds.\n";
  std::vector<double> v(n, 0.0);
  std::vector<std::string> prefix(n);
  for (int i = 0; i < n; ++i)
    prefix[i] = "node_cpu_seconds_total{cpu=\"" + std::to_string((i / 8) % 4) +
                "\",instance=\"host" + std::to_string(i / 32) + ":9100\",job=\"node\",mode=\"" +
                kModes[i % 8] + "\"} ";
  char buf[64];
  for (int64_t t = 0; t <= kSpan; t += kScrape) {
    const std::string ts = " " + std::to_string(kT0 + t) + "\n";
    for (int i = 0; i < n; ++i) {
      v[i] += static_cast<double>((i * 7 + t) % 13) * 0.25;
      std::snprintf(buf, sizeof buf, "%.17g", v[i]);
      om << prefix[i] << buf << ts;
    }
  }
  om << "# EOF\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts = {1000, 10000};
  if (argc > 1) {
    counts.clear();
    std::stringstream ss(argv[1]);
    for (std::string x; std::getline(ss, x, ',');) counts.push_back(std::stoi(x));
  }
  const int reps = argc > 2 ? std::stoi(argv[2]) : 5;
  const char* queries[] = {"rate(node_cpu_seconds_total[5m])",
                           "sum by (mode) (rate(node_cpu_seconds_total[5m]))"};
  std::printf("load average at start: %s\n", loadavg().c_str());
  for (int n : counts) {
    char tmpl[] = "/tmp/moni-promql-http-bench-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    const std::string path = dir + "/data.om";
    auto t0 = std::chrono::steady_clock::now();
    write_openmetrics(path, n);
    std::printf("\n== %d series, %lld samples (%.0f MiB OpenMetrics, written in %.1f s)\n", n,
                static_cast<long long>(n) * (kSpan / kScrape + 1),
                static_cast<double>(std::filesystem::file_size(path)) / (1 << 20), secs_since(t0));
    std::fflush(stdout);
    t0 = std::chrono::steady_clock::now();
    PrometheusPeer prom(path);
    const double prom_import = secs_since(t0);
    if (!prom.ok()) {
      std::fprintf(stderr, "prometheus: %s\n", prom.error().c_str());
      return 1;
    }
    std::filesystem::create_directories(dir + "/moni");
    MoniServer moni(path, dir + "/moni");
    if (!moni.error().empty()) {
      std::fprintf(stderr, "%s\n", moni.error().c_str());
      return 1;
    }
    std::filesystem::remove(path);
    std::printf("import: promtool + Prometheus start %.1f s, moni import %.1f s\n", prom_import,
                moni.import_seconds());
    std::printf("%-50s %12s %12s %10s %12s\n", "query", "moni", "prometheus", "ratio", "MiB JSON");
    for (const char* q : queries) {
      const std::string target =
          "/api/v1/query_range?query=" + url_encode(q) + "&start=" + std::to_string(kT0) +
          "&end=" + std::to_string(kT0 + kSpan) + "&step=" + std::to_string(kScrape);
      // Warm-up (page cache, first-query costs) and a check that both agree.
      auto mr = http_get(moni.port(), target);
      auto pr = http_get(prom.port(), target);
      if (mr.status != 200 || pr.status != 200) {
        std::fprintf(stderr, "%s: moni %d (%.200s), prometheus %d (%.200s)\n", q, mr.status,
                     mr.body.c_str(), pr.status, pr.body.c_str());
        return 1;
      }
      std::string agree = "not compared (large)";
      if (mr.body.size() < (200u << 20)) {
        std::string diff = compare_responses(nlohmann::json::parse(pr.body),
                                             nlohmann::json::parse(mr.body), false);
        agree = diff.empty() ? "results agree" : "results DIFFER: " + diff.substr(0, 300);
      }
      const double mib = static_cast<double>(mr.body.size()) / (1 << 20);
      mr = {};
      pr = {};
      std::vector<double> mt, pt;
      for (int r = 0; r < reps; ++r) {
        auto a = std::chrono::steady_clock::now();
        auto m = http_get(moni.port(), target);
        mt.push_back(secs_since(a));
        a = std::chrono::steady_clock::now();
        auto p = http_get(prom.port(), target);
        pt.push_back(secs_since(a));
        if (m.status != 200 || p.status != 200) {
          std::fprintf(stderr, "%s: HTTP %d / %d\n", q, m.status, p.status);
          return 1;
        }
      }
      std::printf("%-50s %11.3fs %11.3fs %10.2f %12.1f  (%s)\n", q, median(mt), median(pt),
                  median(mt) / median(pt), mib, agree.c_str());
      std::fflush(stdout);
    }
    std::printf("peak RSS (VmHWM): moni %ld MiB, prometheus %ld MiB; load average now: %s\n",
                vm_hwm_mib(moni.pid()), vm_hwm_mib(prom.pid()), loadavg().c_str());
    std::fflush(stdout);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return 0;
}
