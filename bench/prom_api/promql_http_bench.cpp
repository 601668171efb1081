// Range-query latency over HTTP, moni vs Prometheus 2.42, in one run on the
// same data: N node_cpu_seconds_total counters over 24 h at 60 s, generated
// as OpenMetrics one 2 h block window at a time (so 100k series need no
// 13 GB file, and promtool, which re-reads its whole input once per 2 h
// block, reads each sample once); each piece is backfilled into Prometheus
// with `promtool tsdb create-blocks-from openmetrics` and into moni (the
// real host, lmdb_tsdb and prom_api, Release build) with `moni import`, then
// deleted. Both serve the data on loopback and the same client times
//   rate(node_cpu_seconds_total[5m])
//   sum by (mode) (rate(node_cpu_seconds_total[5m]))
// over the 24 h at 60 s step (1441 steps), alternating servers. Prints the
// median latencies, both servers' peak RSS (VmHWM), import times and the
// load average.
//
//   promql_http_bench [series counts, default 1000,10000] [repetitions, default 5]
//                     [queries: rate,sum (default both)]
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
  explicit MoniServer(const std::string& dir) : dir_(dir) {
    port_ = free_port();
    config_ = dir_ + "/moni.toml";
    // max_samples and query_timeout as Prometheus's flags below: raised so
    // both answer the same queries at 100k series.
    std::ofstream(config_) << "[host]\nlisten = \"127.0.0.1:" << port_ << "\"\ndata_dir = \""
                           << dir_
                           << "\"\nlog_level = \"warn\"\n\n[storage.tsdb]\nplugin = "
                              "\"lmdb_tsdb\"\nretention = \"100y\"\n\n"
                              "[outputs.api]\nplugin = \"prom_api\"\nmax_samples = 2000000000\n"
                              "query_timeout = \"30m\"\n";
  }
  ~MoniServer() { stop(pid_); }
  bool import(const std::string& data) {
    auto t0 = std::chrono::steady_clock::now();
    std::string out;
    int rc = run({moni(), "import", "--config", config_, "--storage", "tsdb", data}, &out);
    import_s_ += secs_since(t0);
    if (rc != 0) error_ = "moni import failed (" + std::to_string(rc) + "): " + out;
    return rc == 0;
  }
  bool start() {
    pid_ = spawn({moni(), "run", "--config", config_}, dir_ + "/moni.log");
    if (!wait_http_ok(port_, "/api/v1/status/buildinfo", 60))
      error_ = "moni did not serve /api/v1/status/buildinfo: see " + dir_ + "/moni.log";
    return error_.empty();
  }
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

// N counters, 8 modes per CPU, 4 CPUs per instance, written as time-major
// OpenMetrics (one family, so samples of a series interleave) one piece per
// 2 h window (promtool's block range) at a time.
class DataGenerator {
 public:
  explicit DataGenerator(int n) : v_(static_cast<size_t>(n), 0.0), prefix_(static_cast<size_t>(n)) {
    for (int i = 0; i < n; ++i)
      prefix_[static_cast<size_t>(i)] =
          "node_cpu_seconds_total{cpu=\"" + std::to_string((i / 8) % 4) + "\",instance=\"host" +
          std::to_string(i / 32) + ":9100\",job=\"node\",mode=\"" + kModes[i % 8] + "\"} ";
  }
  // Writes the samples in [from, to) (seconds); false when none are left.
  bool write_piece(const std::string& path, int64_t& t, int64_t to) {
    if (t > kT0 + kSpan) return false;
    std::ofstream om(path);
    om << "# TYPE node_cpu_seconds counter\n# HELP node_cpu_seconds CPU seconds.\n";
    char buf[64], ts[32];
    for (; t <= kT0 + kSpan && t < to; t += kScrape) {
      std::snprintf(ts, sizeof ts, " %lld\n", static_cast<long long>(t));
      for (size_t i = 0; i < v_.size(); ++i) {
        v_[i] += static_cast<double>((static_cast<int64_t>(i) * 7 + (t - kT0)) % 13) * 0.25;
        std::snprintf(buf, sizeof buf, "%.17g", v_[i]);
        om << prefix_[i] << buf << ts;
      }
    }
    om << "# EOF\n";
    return true;
  }

 private:
  std::vector<double> v_;
  std::vector<std::string> prefix_;
};

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> counts = {1000, 10000};
  if (argc > 1) {
    counts.clear();
    std::stringstream ss(argv[1]);
    for (std::string x; std::getline(ss, x, ',');) counts.push_back(std::stoi(x));
  }
  const int reps = argc > 2 ? std::stoi(argv[2]) : 5;
  std::vector<std::string> queries;
  std::string which = argc > 3 ? argv[3] : "rate,sum";
  if (which.find("rate") != std::string::npos)
    queries.push_back("rate(node_cpu_seconds_total[5m])");
  if (which.find("sum") != std::string::npos)
    queries.push_back("sum by (mode) (rate(node_cpu_seconds_total[5m]))");
  std::printf("load average at start: %s\n", loadavg().c_str());
  for (int n : counts) {
    char tmpl[] = "/tmp/moni-promql-http-bench-XXXXXX";
    const std::string dir = mkdtemp(tmpl);
    const std::string tsdb = dir + "/prom-tsdb";
    std::filesystem::create_directories(tsdb);
    std::filesystem::create_directories(dir + "/moni");
    MoniServer moni(dir + "/moni");
    DataGenerator gen(n);
    double gen_s = 0, prom_import = 0, mib = 0;
    constexpr int64_t kBlock = 2 * 3600;
    for (int64_t t = kT0, w = (kT0 / kBlock + 1) * kBlock;; w += kBlock) {
      const std::string piece = dir + "/piece.om";
      auto t0 = std::chrono::steady_clock::now();
      if (!gen.write_piece(piece, t, w)) break;
      gen_s += secs_since(t0);
      mib += static_cast<double>(std::filesystem::file_size(piece)) / (1 << 20);
      t0 = std::chrono::steady_clock::now();
      std::string out;
      if (run({"/usr/bin/promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", piece,
               tsdb},
              &out) != 0) {
        std::fprintf(stderr, "promtool failed: %s\n", out.c_str());
        return 1;
      }
      prom_import += secs_since(t0);
      if (!moni.import(piece)) {
        std::fprintf(stderr, "%s\n", moni.error().c_str());
        return 1;
      }
      std::filesystem::remove(piece);
    }
    std::printf(
        "\n== %d series, %lld samples (%.0f MiB OpenMetrics in 2 h pieces, generated in "
        "%.1f s)\n",
        n, static_cast<long long>(n) * (kSpan / kScrape + 1), mib, gen_s);
    std::fflush(stdout);
    auto t0 = std::chrono::steady_clock::now();
    // Prometheus's 2 min default timeout cuts off its 100k-series answer.
    PrometheusPeer prom(tsdb, {"--query.max-samples=2000000000", "--query.timeout=30m"});
    const double prom_start = secs_since(t0);
    if (!prom.ok()) {
      std::fprintf(stderr, "prometheus: %s\n", prom.error().c_str());
      return 1;
    }
    if (!moni.start()) {
      std::fprintf(stderr, "%s\n", moni.error().c_str());
      return 1;
    }
    std::printf("import: promtool %.1f s (+ Prometheus start %.1f s), moni import %.1f s\n",
                prom_import, prom_start, moni.import_seconds());
    std::printf("%-50s %12s %12s %10s %12s\n", "query", "moni", "prometheus", "ratio", "MiB JSON");
    for (const std::string& q : queries) {
      const std::string target =
          "/api/v1/query_range?query=" + url_encode(q) + "&start=" + std::to_string(kT0) +
          "&end=" + std::to_string(kT0 + kSpan) + "&step=" + std::to_string(kScrape);
      // Warm-up (page cache, first-query costs) and a check that both agree.
      auto mr = http_get(moni.port(), target);
      auto pr = http_get(prom.port(), target);
      if (mr.status != 200 || pr.status != 200) {
        std::fprintf(stderr, "%s: moni %d (%.200s), prometheus %d (%.200s)\n", q.c_str(), mr.status,
                     mr.body.c_str(), pr.status, pr.body.c_str());
        return 1;
      }
      std::string agree = "not compared (large)";
      if (mr.body.size() < (200u << 20)) {
        std::string diff = compare_responses(nlohmann::json::parse(pr.body),
                                             nlohmann::json::parse(mr.body), false);
        agree = diff.empty() ? "results agree" : "results DIFFER: " + diff.substr(0, 300);
      }
      const double body_mib = static_cast<double>(mr.body.size()) / (1 << 20);
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
          std::fprintf(stderr, "%s: HTTP %d / %d\n", q.c_str(), m.status, p.status);
          return 1;
        }
      }
      std::printf("%-50s %11.3fs %11.3fs %10.2f %12.1f  (%s)\n", q.c_str(), median(mt), median(pt),
                  median(mt) / median(pt), body_mib, agree.c_str());
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
