// CgroupStats and StatsReader: one cgroup's counters and limits read from its
// v2 or v1 files (plus PSI from the unified tree on hybrid hosts), and the
// network counters of its network namespace.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cgroup_layout.hpp"
#include "file_reader.hpp"

namespace moni_cgroup {

struct IoDevice {
  uint32_t major = 0, minor = 0;
  uint64_t read_bytes = 0, write_bytes = 0;
};

struct NetInterface {
  char name[16] = {};
  uint8_t name_len = 0;
  uint64_t rx_bytes = 0, rx_packets = 0, rx_errors = 0, rx_dropped = 0;
  uint64_t tx_bytes = 0, tx_packets = 0, tx_errors = 0, tx_dropped = 0;
  std::string_view view() const { return {name, name_len}; }
};

/// PSI totals (microseconds) of one resource; `full` is absent for cpu on
/// old kernels.
struct PsiTotals {
  std::optional<uint64_t> some_us, full_us;
};

/// Everything read for one cgroup in one cycle; reset() keeps capacity.
/// Times are in the unit of their suffix; seconds come out in the collector.
struct CgroupStats {
  bool any = false;  // at least one file was read: the cgroup still existed
  std::optional<double> cpu_total_s, cpu_user_s, cpu_system_s;
  std::optional<uint64_t> cfs_periods, cfs_throttled_periods;
  std::optional<double> cfs_throttled_s;
  std::optional<uint64_t> cpu_quota, cpu_period, cpu_shares;  // quota 0: unlimited
  std::optional<uint64_t> mem_usage, mem_rss, mem_cache, mem_swap, mem_inactive_file;
  std::optional<uint64_t> mem_limit, mem_failcnt, oom_kills;
  bool has_io = false;
  std::vector<IoDevice> io;
  std::optional<uint64_t> threads;
  PsiTotals psi[3];  // cpu, memory, io

  void reset();
};

/// Reads cgroup files with reused buffers. Thread-safety: none.
class StatsReader {
 public:
  explicit StatsReader(const CgroupLayout& layout);
  ~StatsReader();
  StatsReader(const StatsReader&) = delete;
  StatsReader& operator=(const StatsReader&) = delete;

  /// `rel` is the cgroup path relative to the hierarchy root ("" for the
  /// root); `v1_mask` says which v1 hierarchies hold it (bit per Controller).
  /// With `spec` false the limits (quota, period, shares, memory limit) are
  /// not read.
  void read(std::string_view rel, unsigned v1_mask, bool spec, CgroupStats& out);

  /// Reads a whole file below `dir` ("<dir>/<file>"); the view lives until the
  /// next read. The directory is opened once for consecutive reads below it.
  bool read_file(std::string_view dir, const char* file, std::string_view& text);
  bool read_path(const char* path, std::string_view& text) { return reader_.read(path, text); }

  /// Parses /proc/<pid>/net/dev, skipping the devices cAdvisor ignores (lo,
  /// veth*, docker*, nerdctl*).
  static void parse_netdev(std::string_view text, std::vector<NetInterface>& out);

 private:
  void read_v2(std::string_view dir, bool spec, CgroupStats& out);
  void read_v1(std::string_view rel, unsigned mask, bool spec, CgroupStats& out);
  void read_psi(std::string_view dir, CgroupStats& out);
  std::string& dir_of(const std::string& base, std::string_view rel);
  void close_dir();
  int open_below_base();

  const CgroupLayout& layout_;
  FileReader reader_;
  std::string path_, dir_, open_dir_;
  int dirfd_ = -1;
  std::vector<std::pair<std::string, int>> base_fds_;  // hierarchy roots, O_PATH
  long clk_tck_ = 0;
};

}  // namespace moni_cgroup
