// The node plugin's configuration: roots, which sub-collectors run, and
// their filters. Parsed once in create().
#pragma once

#include "pattern.hpp"
#include "procfs_reader.hpp"

#include <memory>

#include <moni/config.hpp>
#include <moni/plugin_abi.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace moni::node {

/// Every sub-collector this plugin has, in node_exporter's names.
inline constexpr std::array<std::string_view, 25> kCollectorNames = {
    "arp",      "conntrack", "cpu",        "cpufreq",  "diskstats", "entropy", "filefd",
    "filesystem", "loadavg", "meminfo",    "netclass", "netdev",    "netstat", "os",
    "pressure", "selinux",   "sockstat",   "softnet",  "stat",      "textfile", "time",
    "timex",    "udp_queues", "uname",     "vmstat"};

// node_exporter 1.5's defaults (anchored with ^...$ where node_exporter's are).
inline constexpr std::string_view kDiskstatsDeviceExclude =
    R"(^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$)";
inline constexpr std::string_view kMountPointsExclude =
    R"(^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/).*)";
inline constexpr std::string_view kFsTypesExclude =
    R"(^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$)";
inline constexpr std::string_view kNetdevDeviceExclude = "^lo$";
inline constexpr std::string_view kNetstatFields =
    R"(^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$)";
inline constexpr std::string_view kVmstatFields = R"(^(oom_kill|pgpg|pswp|pg.*fault).*)";

/// Thread-safety: immutable after parsing.
struct Options {
  std::string procfs = "/proc";
  std::string sysfs = "/sys";
  std::string rootfs = "/";
  std::string udev_data = "/run/udev/data";
  std::vector<std::string> enabled;  // in kCollectorNames order

  bool cpu_guest = true;
  NameFilter diskstats_devices;
  Pattern mount_points_exclude;
  Pattern fs_types_exclude;
  int64_t mount_timeout_ms = 5000;
  NameFilter netdev_devices;
  Pattern netstat_fields;
  Pattern vmstat_fields;
  Pattern netclass_ignored_devices;
  NameFilter arp_devices;
  bool netclass_ignore_invalid_speed = false;
  /// The textfile collector's directory; empty: none (node_exporter's
  /// upstream default; Debian's package passes /var/lib/prometheus/node-exporter).
  std::string textfile_directory;

  /// <procfs>/stat, read once per cycle for cpu and stat (set by the plugin
  /// before it makes the sub-collectors).
  std::shared_ptr<CycleFile> proc_stat;

  /// The instance's log (Context::log), set by the plugin before it makes
  /// the sub-collectors; empty in tools that make them on their own.
  std::function<void(moni_log_level, std::string_view)> log;

  bool enabled_collector(std::string_view name) const {
    for (const auto& e : enabled)
      if (e == name) return true;
    return false;
  }
};

/// Parses the instance table; throws ConfigError listing every problem.
Options parse_options(const ConfigView& cfg);

}  // namespace moni::node
