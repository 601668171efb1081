// The node plugin: runs the enabled sub-collectors in turn and reports
// node_exporter's node_scrape_collector_{success,duration_seconds} for each.
#include "options.hpp"
#include "sub_collector.hpp"

#include <moni/sdk.hpp>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>
#include <vector>

namespace moni::node {

Error SubCollector::io_error(std::string_view what, const std::string& path) {
  return make_error(std::string(what) + ": " + path + ": " + std::strerror(errno));
}

std::unique_ptr<SubCollector> make_sub_collector(std::string_view n, const Options& o) {
  if (n == "arp") return make_arp(o);
  if (n == "conntrack") return make_conntrack(o);
  if (n == "cpu") return make_cpu(o);
  if (n == "cpufreq") return make_cpufreq(o);
  if (n == "diskstats") return make_diskstats(o);
  if (n == "entropy") return make_entropy(o);
  if (n == "filefd") return make_filefd(o);
  if (n == "filesystem") return make_filesystem(o);
  if (n == "loadavg") return make_loadavg(o);
  if (n == "meminfo") return make_meminfo(o);
  if (n == "netclass") return make_netclass(o);
  if (n == "netdev") return make_netdev(o);
  if (n == "netstat") return make_netstat(o);
  if (n == "os") return make_os(o);
  if (n == "pressure") return make_pressure(o);
  if (n == "selinux") return make_selinux(o);
  if (n == "sockstat") return make_sockstat(o);
  if (n == "softnet") return make_softnet(o);
  if (n == "stat") return make_stat(o);
  if (n == "textfile") return make_textfile(o);
  if (n == "time") return make_time(o);
  if (n == "timex") return make_timex(o);
  if (n == "udp_queues") return make_udp_queues(o);
  if (n == "uname") return make_uname(o);
  if (n == "vmstat") return make_vmstat(o);
  return nullptr;
}

/// Thread-safety: collect() is called by the host on one thread at a time.
class NodeCollector : public Collector {
 public:
  static constexpr std::string_view plugin_name = "node";
  static constexpr std::string_view plugin_version = "0.1.0";
  static constexpr std::string_view plugin_description =
      "host metrics from procfs/sysfs with node_exporter 1.5's names";
  static constexpr std::string_view sample_config = R"(# procfs = "/proc"
# sysfs = "/sys"
# rootfs = "/"
# udev_data = "/run/udev/data"
# enable = ["cpu", "loadavg", ...]   # default: every sub-collector
# disable = ["cpufreq"]
# cpu.guest = true
# diskstats.device_exclude = '^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$'
# filesystem.mount_points_exclude = '^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/).*'
# filesystem.mount_timeout = "5s"
# netdev.device_exclude = "^lo$"
# arp.device_exclude = "^docker"   # default: every interface
# netclass.ignored_devices = "^$"
# netclass.ignore_invalid_speed = false
# textfile.directory = "/var/lib/prometheus/node-exporter"   # default: none)";

  NodeCollector(Context& ctx, const ConfigView& cfg) : ctx_(ctx), opts_(parse_options(cfg)) {}

  Result<void> start() override {
    std::string stat_path;
    opts_.proc_stat = std::make_shared<CycleFile>(join(stat_path, opts_.procfs, "stat"));
    opts_.log = [this](moni_log_level level, std::string_view m) {
      ctx_.log(static_cast<LogLevel>(level), m);
    };
    for (const auto& name : opts_.enabled) {
      auto c = make_sub_collector(name, opts_);
      if (!c) return make_error("node: no sub-collector named " + name);
      subs_.push_back({name, std::move(c), {}});
    }
    return {};
  }

  Result<void> collect(Batch& out) override {
    opts_.proc_stat->new_cycle();
    for (auto& s : subs_) {
      auto t0 = std::chrono::steady_clock::now();
      Result<void> r = s.impl->collect(out);
      s.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      s.ok = r.ok();
      if (!r.ok() && r.error().message != s.last_error) {
        // Logged once per distinct error, not every cycle.
        s.last_error = r.error().message;
        ctx_.warn("node: collector " + s.name + " failed: " + s.last_error);
      } else if (r.ok()) {
        s.last_error.clear();
      }
    }
    describe(out, "node_scrape_collector_duration_seconds", MetricType::Gauge,
                 "node_exporter: Duration of a collector scrape.");
    for (const auto& s : subs_)
      add_sample(out, "node_scrape_collector_duration_seconds", {{"collector", s.name}}, s.seconds);
    describe(out, "node_scrape_collector_success", MetricType::Gauge,
                 "node_exporter: Whether a collector succeeded.");
    for (const auto& s : subs_)
      add_sample(out, "node_scrape_collector_success", {{"collector", s.name}}, s.ok ? 1.0 : 0.0);
    return {};
  }

 private:
  struct Sub {
    std::string name;
    std::unique_ptr<SubCollector> impl;
    std::string last_error;
    double seconds = 0;
    bool ok = false;
  };
  Context& ctx_;
  Options opts_;
  std::vector<Sub> subs_;
};

}  // namespace moni::node

MONI_EXPORT_PLUGIN(moni::node::NodeCollector)
