// CgroupStats and StatsReader: one cgroup's counters and limits read from its
// v2 or v1 files (plus PSI from the unified tree on hybrid hosts), through
// file descriptors kept open across collections, and the network counters of
// a network namespace.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cgroup_layout.hpp"
#include "file_reader.hpp"

namespace moni_cgroup {

/// The metric groups that can be switched off or on, named as cAdvisor's
/// --disable_metrics/--enable_metrics values. Only the files of enabled
/// groups are read.
struct MetricGroups {
  bool memory = true, oom_event = true, disk_io = true, network = true, process = true,
       pressure = true;
  bool percpu = false, disk = false;  // off by default (see README)
};

/// The cgroup files the collector reads. `kHot` files are read every
/// collection and kept open; the others (limits) are read every few.
enum CgroupFile : uint8_t {
  // v2, in the unified tree
  kV2CpuStat,
  kV2CpuMax,
  kV2CpuWeight,
  kV2MemCurrent,
  kV2MemStat,
  kV2MemMax,
  kV2MemHigh,
  kV2MemPeak,
  kV2SwapCurrent,
  kV2SwapMax,
  kV2MemEvents,
  kV2IoStat,
  kV2PidsCurrent,
  kV2PidsMax,
  kV2Procs,
  // PSI: the unified tree on v2 and hybrid hosts
  kCpuPressure,
  kMemPressure,
  kIoPressure,
  // v1, each in its controller's hierarchy
  kCpuacctUsage,
  kCpuacctStat,
  kCpuacctPercpu,
  kV1CpuStat,
  kCfsQuota,
  kCfsPeriod,
  kShares,
  kMemUsage,
  kV1MemStat,
  kMemLimit,
  kMemswLimit,
  kMemSoftLimit,
  kMemMaxUsage,
  kMemFailcnt,
  kMemOomControl,
  kKmemUsage,
  kBlkioBytes,
  kBlkioBytesCfq,
  kBlkioServiced,
  kBlkioServicedCfq,
  kV1PidsCurrent,
  kV1PidsMax,
  kV1Procs,  // + Controller: cgroup.procs in each v1 hierarchy
  kFileCount = int(kV1Procs) + int(kControllerCount)
};

/// One cgroup's kept-open files: an fd per CgroupFile, kClosed when not
/// open, kAbsent when the file did not exist at the last try (retried every
/// few collections, so missing files cost nothing in between).
struct CgroupFds {
  static constexpr int kClosed = -1, kAbsent = -2;
  std::array<int, kFileCount> fd;
  CgroupFds() { fd.fill(kClosed); }
};

struct IoDevice {
  uint32_t major = 0, minor = 0;
  uint64_t read_bytes = 0, write_bytes = 0;
  uint64_t reads = 0, writes = 0;  // completed requests
  bool has_ops = false;            // reads/writes known
  // Bytes per blkio operation, for container_blkio_device_usage_total.
  static constexpr int kOps = 6;  // Read, Write, Sync, Async, Discard, Total
  uint64_t op_bytes[kOps] = {};
  uint8_t op_mask = 0;
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
  std::vector<uint64_t> percpu_ns;  // cpuacct.usage_percpu (v1 only)
  std::optional<uint64_t> cfs_periods, cfs_throttled_periods;
  std::optional<double> cfs_throttled_s;
  std::optional<uint64_t> cpu_quota, cpu_period, cpu_shares;  // quota 0: unlimited
  std::optional<uint64_t> mem_usage, mem_max_usage, mem_rss, mem_cache, mem_swap;
  std::optional<uint64_t> mem_mapped_file, mem_kernel, mem_active_file, mem_inactive_file;
  std::optional<uint64_t> pgfault, pgmajfault, total_pgfault, total_pgmajfault;
  std::optional<uint64_t> mem_limit, mem_swap_limit, mem_reservation;
  std::optional<uint64_t> mem_failcnt, oom_kills;
  std::vector<IoDevice> io;
  std::optional<uint64_t> threads, threads_max;
  PsiTotals psi[3];  // cpu, memory, io

  void reset();
};

/// Reads cgroup files with a reused buffer, keeping the files read every
/// collection open (one pread per file instead of open+read+close) within a
/// budget of descriptors. Thread-safety: none.
class StatsReader {
 public:
  StatsReader(const CgroupLayout& layout, const MetricGroups& groups, size_t max_open_files);
  ~StatsReader();
  StatsReader(const StatsReader&) = delete;
  StatsReader& operator=(const StatsReader&) = delete;

  /// `rel` is the cgroup path relative to the hierarchy root ("" for the
  /// root); `v1_mask` says which v1 hierarchies hold it (bit per Controller).
  /// With `spec` the limits are read; with `probe` files found absent before
  /// are tried again.
  void read(std::string_view rel, unsigned v1_mask, bool spec, bool probe, CgroupFds& fds,
            CgroupStats& out);

  /// cgroup.procs of `rel` in the unified tree (controller < 0) or in the v1
  /// hierarchy of `controller`; the view lives until the next read.
  bool read_procs(std::string_view rel, int controller, CgroupFds& fds, std::string_view& text);

  /// Closes the cgroup's kept-open files (it vanished).
  void close(CgroupFds& fds);

  bool read_path(const char* path, std::string_view& text) { return reader_.read(path, text); }
  bool read_path_at(int dirfd, const char* path, std::string_view& text) {
    return reader_.read_at(dirfd, path, text);
  }
  size_t open_files() const { return open_; }

  /// Files whose text was not understood (a value skipped: garbage, a number
  /// past UINT64_MAX, an empty file), and reads that failed for another
  /// reason than the cgroup's removal (EACCES, EIO, a FIFO, ...), since
  /// start; `example` names the last one ("<dir>/<file>: <why>").
  struct Errors {
    uint64_t malformed = 0, unreadable = 0;
    std::string example;
  };
  const Errors& errors() const { return errors_; }

  /// Parses /proc/<pid>/net/dev, skipping the devices cAdvisor ignores (lo,
  /// veth*, docker*, nerdctl*).
  static void parse_netdev(std::string_view text, std::vector<NetInterface>& out);

 private:
  bool get(CgroupFds& fds, CgroupFile f, std::string_view& text);
  int open_file(CgroupFile f);
  void read_v2(CgroupFds& fds, bool spec, CgroupStats& out);
  void read_v1(CgroupFds& fds, unsigned mask, bool spec, CgroupStats& out);
  void read_psi(CgroupFds& fds, CgroupStats& out);
  // Parsers of the current cgroup's file `f` that count what they reject.
  bool num(CgroupFile f, std::string_view text, uint64_t& v);
  bool key(CgroupFile f, std::string_view text, std::string_view k, uint64_t& v);
  bool limit(CgroupFile f, std::string_view text, uint64_t& v);
  void malformed(CgroupFile f, std::string_view text);
  void unreadable(CgroupFile f, int err);
  void example(CgroupFile f, std::string_view why);

  const CgroupLayout& layout_;
  MetricGroups groups_;
  FileReader reader_;
  std::string_view rel_;  // the cgroup being read
  bool probe_ = false;    // retry absent files this read
  std::string path_;
  int unified_fd_ = -1;                         // O_PATH root of the unified tree
  std::array<int, kControllerCount> v1_fds_{};  // O_PATH roots of the v1 hierarchies
  std::vector<int> owned_fds_;                  // the distinct roots, to close
  size_t open_ = 0, budget_ = 0;
  long clk_tck_ = 0;
  Errors errors_;
};

}  // namespace moni_cgroup
