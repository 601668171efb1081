// One node_exporter-style sub-collector ("cpu", "meminfo", ...) and the
// factories of all of them.
#pragma once

#include "options.hpp"
#include "emit.hpp"
#include "procfs_reader.hpp"

#include <moni/batch.hpp>
#include <moni/result.hpp>

#include <memory>
#include <string>
#include <string_view>

namespace moni::node {

/// Adds one sub-collector's families to the batch. A failure returns an
/// error (the plugin then reports node_scrape_collector_success 0 for it);
/// samples added before the failure are kept, like node_exporter.
/// Thread-safety: none; collect() runs on one thread at a time.
class SubCollector {
 public:
  virtual ~SubCollector() = default;
  virtual Result<void> collect(Batch& out) = 0;

 protected:
  /// "<what>: <path>: <strerror(errno)>" for a failed read.
  static Error io_error(std::string_view what, const std::string& path);
  FileReader reader_;
  std::string path_;  // reused path buffer
};

/// Creates the sub-collector called `name` (one of kCollectorNames).
std::unique_ptr<SubCollector> make_sub_collector(std::string_view name, const Options& opts);

std::unique_ptr<SubCollector> make_arp(const Options&);
std::unique_ptr<SubCollector> make_conntrack(const Options&);
std::unique_ptr<SubCollector> make_cpu(const Options&);
std::unique_ptr<SubCollector> make_cpufreq(const Options&);
std::unique_ptr<SubCollector> make_diskstats(const Options&);
std::unique_ptr<SubCollector> make_entropy(const Options&);
std::unique_ptr<SubCollector> make_filefd(const Options&);
std::unique_ptr<SubCollector> make_filesystem(const Options&);
std::unique_ptr<SubCollector> make_loadavg(const Options&);
std::unique_ptr<SubCollector> make_meminfo(const Options&);
std::unique_ptr<SubCollector> make_netclass(const Options&);
std::unique_ptr<SubCollector> make_netdev(const Options&);
std::unique_ptr<SubCollector> make_netstat(const Options&);
std::unique_ptr<SubCollector> make_os(const Options&);
std::unique_ptr<SubCollector> make_pressure(const Options&);
std::unique_ptr<SubCollector> make_selinux(const Options&);
std::unique_ptr<SubCollector> make_sockstat(const Options&);
std::unique_ptr<SubCollector> make_softnet(const Options&);
std::unique_ptr<SubCollector> make_stat(const Options&);
std::unique_ptr<SubCollector> make_textfile(const Options&);
std::unique_ptr<SubCollector> make_time(const Options&);
std::unique_ptr<SubCollector> make_timex(const Options&);
std::unique_ptr<SubCollector> make_udp_queues(const Options&);
std::unique_ptr<SubCollector> make_uname(const Options&);
std::unique_ptr<SubCollector> make_vmstat(const Options&);

}  // namespace moni::node
