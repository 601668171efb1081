// Side by side with the real prometheus-node-exporter (Debian, 1.5) on this
// machine: for every family of the matching collectors that node_exporter
// emits here, moni emits the same name, type, HELP, label names and series,
// with values inside node_exporter's readings taken just before and after
// (counters) or within a small tolerance (gauges).
#include <gtest/gtest.h>

#include "loopback_http.hpp"
#include "plugin_harness.hpp"
#include "prom_text.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <csignal>
#include <map>
#include <set>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

using moni::node_test::TextFamily;
using moni::testing::OwnedBatch;
using moni::testing::PluginHarness;
using moni::testing::plugin_path;

namespace {

const char* kNodeExporter = "/usr/bin/prometheus-node-exporter";
const char* kCollectors[] = {"cpu",  "cpufreq", "diskstats", "entropy",  "filefd",  "filesystem",
                             "loadavg", "meminfo", "netdev", "netstat",  "os",      "pressure",
                             "sockstat", "stat",   "time",   "uname",    "vmstat",  "conntrack",
                             "netclass", "textfile", "timex", "softnet", "arp",
                             "udp_queues", "selinux"};
// The textfile collector's directory for both (one file written by the test).
const std::string kTextfileDir =
    "/tmp/moni-node-compare-textfile-" + std::to_string(::getpid());
// node_exporter 1.5's upstream defaults (Debian patches the mount point one);
// moni's defaults are the same patterns, searched the same way.
const char* kMountPointsExclude =
    "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)";

/// A node_exporter child process on a free loopback port, stopped by PID.
class NodeExporter {
 public:
  bool start(std::string& error) {
    port_ = moni::node_test::free_loopback_port();
    std::vector<std::string> args = {kNodeExporter,
                                     "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                     "--web.disable-exporter-metrics",
                                     "--collector.disable-defaults",
                                     std::string("--collector.filesystem.mount-points-exclude=") +
                                         kMountPointsExclude,
                                     "--collector.textfile.directory=" + kTextfileDir,
                                     "--log.level=error"};
    for (auto c : kCollectors) args.push_back(std::string("--collector.") + c);
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(kNodeExporter, argv.data());
      ::_exit(127);
    }
    for (int i = 0; i < 100; ++i) {
      std::string body;
      if (moni::node_test::http_get(port_, "/metrics", body, error)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }
  ~NodeExporter() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int st;
      ::waitpid(pid_, &st, 0);
    }
  }
  bool scrape(std::map<std::string, TextFamily>& out, std::string& error) {
    std::string body;
    if (!moni::node_test::http_get(port_, "/metrics", body, error)) return false;
    return moni::node_test::parse_text_format(body, out, error);
  }

 private:
  pid_t pid_ = -1;
  int port_ = -1;
};

std::string series_key(const std::map<std::string, std::string>& labels) {
  std::string k;
  for (const auto& [n, v] : labels) k += n + "=" + v + ",";
  return k;
}

std::string series_key(const moni::testing::OwnedSample& s) {
  std::map<std::string, std::string> m;
  for (const auto& l : s.labels)
    if (l.name != "__name__" && !l.value.empty()) m[l.name] = l.value;
  return series_key(m);
}

struct Tolerance {
  double rel = 0, abs = 0;
  bool skip = false;
};

bool starts(const std::string& s, const char* p) { return s.rfind(p, 0) == 0; }

// How far moni may be outside [min, max] of node_exporter's two readings.
Tolerance tolerance(const std::string& f, const std::string& type) {
  constexpr double MiB = 1024 * 1024;
  if (f == "node_scrape_collector_duration_seconds" || f == "node_procs_running" ||
      f == "node_procs_blocked")
    return {0, 0, true};  // instantaneous by nature
  if (f == "node_time_seconds") return {0, 10};
  if (starts(f, "node_timex_")) return {0.01, 1e-3};  // the clock discipline moves
  if (starts(f, "node_memory_")) return {0.10, 256 * MiB};
  if (starts(f, "node_filesystem_")) return {0.02, 256 * MiB};
  if (f == "node_filefd_allocated") return {0.5, 500};
  if (starts(f, "node_sockstat_")) return {0.5, f.find("mem_bytes") != std::string::npos ? MiB : 100};
  if (starts(f, "node_load")) return {0.5, 1};
  if (f == "node_entropy_available_bits") return {0.5, 256};
  if (f == "node_netstat_Tcp_CurrEstab") return {0.5, 50};
  if (f == "node_disk_io_now") return {0, 50};
  if (f == "node_cpu_seconds_total") return {0, 0.1};  // iowait may jitter back
  if (type == "counter" || type == "untyped") return {1e-9, 1e-6};
  return {0.01, 1e-6};
}

std::string moni_type(moni::MetricType t) {
  return t == moni::MetricType::Unknown ? "untyped" : std::string(moni::type_name(t));
}

}  // namespace

TEST(NodeExporterSideBySide, SameFamiliesLabelsTypesAndCloseValues) {
  if (::access(kNodeExporter, X_OK) != 0) GTEST_SKIP() << "no " << kNodeExporter;
  std::filesystem::create_directories(kTextfileDir);
  std::ofstream(kTextfileDir + "/job.prom")
      << "# HELP node_cron_job_last_success_seconds Last success.\n"
         "# TYPE node_cron_job_last_success_seconds gauge\n"
         "node_cron_job_last_success_seconds{job=\"backup\"} 1.7e9\nnode_cron_plain 3\n";
  struct Cleanup {
    ~Cleanup() { std::filesystem::remove_all(kTextfileDir); }
  } cleanup;
  NodeExporter ne;
  std::string err;
  ASSERT_TRUE(ne.start(err)) << err;

  auto h = PluginHarness::load(plugin_path("node"), "textfile.directory = '" + kTextfileDir + "'\n");
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& p = **h;
  ASSERT_TRUE(p.start().ok());
  ASSERT_TRUE(p.collect(1).ok());  // warm-up (CPU counter history)

  std::map<std::string, TextFamily> before, after;
  ASSERT_TRUE(ne.scrape(before, err)) << err;
  auto t = std::chrono::system_clock::now().time_since_epoch();
  auto mb = p.collect(std::chrono::duration_cast<std::chrono::milliseconds>(t).count());
  ASSERT_TRUE(mb.ok()) << mb.error().message;
  ASSERT_TRUE(ne.scrape(after, err)) << err;
  auto mb2 = p.collect(std::chrono::duration_cast<std::chrono::milliseconds>(t).count() + 1000);
  ASSERT_TRUE(mb2.ok()) << mb2.error().message;
  const OwnedBatch& m = *mb;

  std::map<std::string, const moni::Metadata*> meta;
  for (const auto& md : m.metadata) {
    EXPECT_EQ(meta.count(md.family), 0u) << "described twice: " << md.family;
    meta[md.family] = &md;
  }
  std::map<std::string, std::map<std::string, double>> moni_series, moni_series2;
  for (const auto& s : m.samples) moni_series[s.name()][series_key(s)] = s.value;
  for (const auto& s : mb2->samples) moni_series2[s.name()][series_key(s)] = s.value;

  size_t compared = 0;
  for (const auto& [family, ne_fam] : before) {
    // promhttp_* describe node_exporter's own HTTP handler, not the host.
    if (family == "node_exporter_build_info" || !starts(family, "node_")) continue;
    SCOPED_TRACE(family);
    ++compared;
    EXPECT_TRUE(meta.count(family)) << "moni does not emit " << family;
    if (!meta.count(family)) continue;
    EXPECT_EQ(moni_type(meta[family]->type), ne_fam.type);
    EXPECT_EQ(meta[family]->help, ne_fam.help);
    const auto& ms = moni_series[family];
    std::set<std::string> ne_keys, moni_keys;
    for (const auto& s : ne_fam.samples) ne_keys.insert(series_key(s.labels));
    for (const auto& [k, v] : ms) moni_keys.insert(k);
    EXPECT_EQ(moni_keys, ne_keys);

    Tolerance tol = tolerance(family, ne_fam.type);
    std::map<std::string, double> later;
    if (after.count(family))
      for (const auto& s : after[family].samples) later[series_key(s.labels)] = s.value;
    for (const auto& s : ne_fam.samples) {
      std::string k = series_key(s.labels);
      auto it = ms.find(k);
      if (it == ms.end() || tol.skip) continue;
      double lo = s.value, hi = s.value;
      if (later.count(k)) {
        lo = std::min(lo, later[k]);
        hi = std::max(hi, later[k]);
      }
      double slack = tol.rel * std::max(std::fabs(lo), std::fabs(hi)) + tol.abs;
      EXPECT_GE(it->second, lo - slack) << k << " node_exporter " << lo << ".." << hi;
      EXPECT_LE(it->second, hi + slack) << k << " node_exporter " << lo << ".." << hi;
      if (ne_fam.type == "counter") {
        double next = moni_series2[family][k];
        EXPECT_GE(next, it->second) << k << ": counter went backwards";
      }
    }
  }
  // The families node_exporter emits here for these collectors; a machine
  // without them would compare far fewer.
  EXPECT_GT(compared, 100u);
  std::printf("compared %zu node_exporter families\n", compared);
}
