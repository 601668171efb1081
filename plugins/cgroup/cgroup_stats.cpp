#include "cgroup_stats.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace moni_cgroup {
namespace {

// "<major>:<minor>" at the start of `line`; advances past it.
bool parse_devno(std::string_view& line, uint32_t& major, uint32_t& minor) {
  size_t colon = line.find(':');
  size_t space = line.find(' ');
  if (colon == std::string_view::npos || space == std::string_view::npos || colon > space)
    return false;
  uint64_t a, b;
  if (!parse_u64(line.substr(0, colon), a) ||
      !parse_u64(line.substr(colon + 1, space - colon - 1), b))
    return false;
  major = static_cast<uint32_t>(a);
  minor = static_cast<uint32_t>(b);
  line.remove_prefix(space + 1);
  return true;
}

IoDevice& device(std::vector<IoDevice>& io, uint32_t major, uint32_t minor) {
  for (auto& d : io)
    if (d.major == major && d.minor == minor) return d;
  io.push_back(IoDevice{});
  io.back().major = major;
  io.back().minor = minor;
  return io.back();
}

struct FileDef {
  const char* name;
  int controller;  // Controller, or -1: the unified tree
  bool hot;        // read every collection: kept open
};

constexpr int kUnified = -1;

// Indexed by CgroupFile.
constexpr FileDef kFiles[kFileCount] = {
    {"cpu.stat", kUnified, true},
    {"cpu.max", kUnified, false},
    {"cpu.weight", kUnified, false},
    {"memory.current", kUnified, true},
    {"memory.stat", kUnified, true},
    {"memory.max", kUnified, false},
    {"memory.high", kUnified, false},
    {"memory.peak", kUnified, true},
    {"memory.swap.current", kUnified, true},
    {"memory.swap.max", kUnified, false},
    {"memory.events", kUnified, true},
    {"io.stat", kUnified, true},
    {"pids.current", kUnified, true},
    {"pids.max", kUnified, false},
    {"cgroup.procs", kUnified, true},
    {"cpu.pressure", kUnified, true},
    {"memory.pressure", kUnified, true},
    {"io.pressure", kUnified, true},
    {"cpuacct.usage", kCpuacct, true},
    {"cpuacct.stat", kCpuacct, true},
    {"cpuacct.usage_percpu", kCpuacct, true},
    {"cpu.stat", kCpu, true},
    {"cpu.cfs_quota_us", kCpu, false},
    {"cpu.cfs_period_us", kCpu, false},
    {"cpu.shares", kCpu, false},
    {"memory.usage_in_bytes", kMemory, true},
    {"memory.stat", kMemory, true},
    {"memory.limit_in_bytes", kMemory, false},
    {"memory.memsw.limit_in_bytes", kMemory, false},
    {"memory.soft_limit_in_bytes", kMemory, false},
    {"memory.max_usage_in_bytes", kMemory, true},
    {"memory.failcnt", kMemory, true},
    {"memory.oom_control", kMemory, true},
    {"memory.kmem.usage_in_bytes", kMemory, true},
    {"blkio.throttle.io_service_bytes_recursive", kBlkio, true},
    {"blkio.io_service_bytes_recursive", kBlkio, true},
    {"blkio.throttle.io_serviced_recursive", kBlkio, true},
    {"blkio.io_serviced_recursive", kBlkio, true},
    {"pids.current", kPids, true},
    {"pids.max", kPids, false},
    {"cgroup.procs", kCpu, true},
    {"cgroup.procs", kCpuacct, true},
    {"cgroup.procs", kMemory, true},
    {"cgroup.procs", kBlkio, true},
    {"cgroup.procs", kPids, true},
};
static_assert(int(kV1Procs) + int(kCpu) == 40 && kFileCount == 45);

// "max" (v2) or a v1 huge value: unlimited, kept as UINT64_MAX.
uint64_t limit_value(std::string_view text) {
  uint64_t v;
  return parse_u64(text, v) ? v : UINT64_MAX;
}

// blkio operation index of `op` (IoDevice::op_bytes), -1 for others.
int blkio_op(std::string_view op) {
  static constexpr std::string_view kOps[IoDevice::kOps] = {"Read",  "Write",   "Sync",
                                                            "Async", "Discard", "Total"};
  for (int i = 0; i < IoDevice::kOps; ++i)
    if (op == kOps[i]) return i;
  return -1;
}

// The first whitespace-separated word and the rest.
std::string_view word(std::string_view& s) {
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  size_t j = i;
  while (j < s.size() && s[j] != ' ' && s[j] != '\n') ++j;
  std::string_view w = s.substr(i, j - i);
  s.remove_prefix(j);
  return w;
}

void parse_psi(std::string_view text, PsiTotals& out) {
  for_each_line(text, [&](std::string_view line) {
    size_t t = line.find("total=");
    if (t == std::string_view::npos) return;
    uint64_t v;
    if (!parse_u64(line.substr(t + 6), v)) return;
    if (line.substr(0, 5) == "some ")
      out.some_us = v;
    else if (line.substr(0, 5) == "full ")
      out.full_us = v;
  });
}

}  // namespace

void CgroupStats::reset() {
  std::vector<IoDevice> keep_io = std::move(io);
  std::vector<uint64_t> keep_cpu = std::move(percpu_ns);
  keep_io.clear();
  keep_cpu.clear();
  *this = CgroupStats{};
  io = std::move(keep_io);
  percpu_ns = std::move(keep_cpu);
}

StatsReader::StatsReader(const CgroupLayout& layout, const MetricGroups& groups,
                         size_t max_open_files)
    : layout_(layout), groups_(groups), budget_(max_open_files) {
  // Roots are opened once; co-mounted controllers share one descriptor.
  auto open_root = [&](const std::string& dir) {
    if (dir.empty()) return -1;
    int fd = ::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) owned_fds_.push_back(fd);
    return fd;
  };
  unified_fd_ = open_root(layout_.unified);
  for (int c = 0; c < kControllerCount; ++c) {
    v1_fds_[c] = -1;
    for (int o = 0; o < c; ++o)
      if (!layout_.v1[c].empty() && layout_.v1[o] == layout_.v1[c]) v1_fds_[c] = v1_fds_[o];
    if (v1_fds_[c] < 0) v1_fds_[c] = open_root(layout_.v1[c]);
  }
}

StatsReader::~StatsReader() {
  for (int fd : owned_fds_) ::close(fd);
}

void StatsReader::close(CgroupFds& fds) {
  for (int& fd : fds.fd) {
    if (fd >= 0) {
      ::close(fd);
      --open_;
    }
    fd = CgroupFds::kClosed;
  }
}

int StatsReader::open_file(CgroupFile f) {
  const FileDef& def = kFiles[f];
  int root = def.controller == kUnified ? unified_fd_ : v1_fds_[def.controller];
  if (root < 0) {
    errno = ENOENT;
    return -1;
  }
  path_.clear();
  if (!rel_.empty()) {
    path_.append(rel_.substr(1));  // without the leading '/'
    path_.push_back('/');
  }
  path_.append(def.name);
  return ::openat(root, path_.c_str(), O_RDONLY | O_CLOEXEC);
}

// One read of file `f` of the current cgroup: a pread on its kept-open
// descriptor, else open (and keep it, budget permitting) and read.
bool StatsReader::get(CgroupFds& fds, CgroupFile f, std::string_view& text) {
  int& slot = fds.fd[f];
  if (slot >= 0) {
    if (reader_.pread_all(slot, text)) return true;
    // ENODEV: the cgroup was removed (and maybe made again under the same
    // name): drop the descriptor and open the path afresh.
    ::close(slot);
    slot = CgroupFds::kClosed;
    --open_;
  } else if (slot == CgroupFds::kAbsent && !probe_) {
    return false;
  }
  int fd = open_file(f);
  if (fd < 0) {
    slot = errno == ENOENT ? CgroupFds::kAbsent : CgroupFds::kClosed;
    return false;
  }
  bool ok = reader_.pread_all(fd, text);
  if (ok && kFiles[f].hot && open_ < budget_) {
    slot = fd;
    ++open_;
  } else {
    ::close(fd);
    slot = CgroupFds::kClosed;
  }
  return ok;
}

bool StatsReader::read_procs(std::string_view rel, int controller, CgroupFds& fds,
                             std::string_view& text) {
  rel_ = rel;
  probe_ = true;
  auto f = static_cast<CgroupFile>(controller < 0 ? int(kV2Procs) : int(kV1Procs) + controller);
  return get(fds, f, text);
}

void StatsReader::read(std::string_view rel, unsigned v1_mask, bool spec, bool probe,
                       CgroupFds& fds, CgroupStats& out) {
  out.reset();
  rel_ = rel;
  probe_ = probe;
  if (layout_.mode == CgroupLayout::Mode::V2) {
    read_v2(fds, spec, out);
    if (groups_.pressure) read_psi(fds, out);
    return;
  }
  read_v1(fds, v1_mask, spec, out);
  // Hybrid: controllers live on v1, but PSI only exists in the unified tree.
  if (layout_.mode == CgroupLayout::Mode::Hybrid && out.any && groups_.pressure) {
    bool any = out.any;
    read_psi(fds, out);
    out.any = any;
  }
}

void StatsReader::read_psi(CgroupFds& fds, CgroupStats& out) {
  static constexpr CgroupFile kPsi[3] = {kCpuPressure, kMemPressure, kIoPressure};
  std::string_view text;
  for (int i = 0; i < 3; ++i)
    if (get(fds, kPsi[i], text)) parse_psi(text, out.psi[i]);
}

void StatsReader::read_v2(CgroupFds& fds, bool spec, CgroupStats& out) {
  std::string_view text;
  uint64_t v;
  if (get(fds, kV2CpuStat, text)) {
    out.any = true;
    if (find_key(text, "usage_usec", v)) out.cpu_total_s = static_cast<double>(v) / 1e6;
    if (find_key(text, "user_usec", v)) out.cpu_user_s = static_cast<double>(v) / 1e6;
    if (find_key(text, "system_usec", v)) out.cpu_system_s = static_cast<double>(v) / 1e6;
    if (find_key(text, "nr_periods", v)) out.cfs_periods = v;
    if (find_key(text, "nr_throttled", v)) out.cfs_throttled_periods = v;
    if (find_key(text, "throttled_usec", v)) out.cfs_throttled_s = static_cast<double>(v) / 1e6;
  }
  if (spec && get(fds, kV2CpuMax, text)) {
    out.any = true;
    std::string_view rest = text;
    std::string_view quota = word(rest);
    std::string_view period = word(rest);
    out.cpu_quota = parse_u64(quota, v) ? v : 0;  // "max": unlimited, 0 as cAdvisor
    if (parse_u64(period, v)) out.cpu_period = v;
  }
  if (spec && get(fds, kV2CpuWeight, text) && parse_u64(text, v) && v >= 1) {
    out.any = true;
    // cAdvisor's inverse of the runc shares->weight mapping.
    out.cpu_shares = 2 + ((v - 1) * 262142) / 9999;
  }
  if (spec) {
    if (get(fds, kV2MemMax, text)) {
      out.any = true;
      out.mem_limit = limit_value(text);
    }
    // As cAdvisor: reservation is memory.high, the swap limit memory.swap.max.
    if (get(fds, kV2MemHigh, text)) out.mem_reservation = limit_value(text);
    if (get(fds, kV2SwapMax, text)) out.mem_swap_limit = limit_value(text);
  }
  if (groups_.memory) {
    if (get(fds, kV2MemCurrent, text) && parse_u64(text, v)) {
      out.any = true;
      out.mem_usage = v;
    }
    if (get(fds, kV2MemPeak, text) && parse_u64(text, v)) out.mem_max_usage = v;
    if (get(fds, kV2MemStat, text)) {
      out.any = true;
      // One pass over its ~40 lines (a lookup per key would rescan them).
      for_each_key_value(text, [&](std::string_view k, uint64_t val) {
        if (k == "anon")
          out.mem_rss = val;
        else if (k == "file")
          out.mem_cache = val;
        else if (k == "file_mapped")
          out.mem_mapped_file = val;
        else if (k == "kernel")
          out.mem_kernel = val;
        else if (k == "active_file")
          out.mem_active_file = val;
        else if (k == "inactive_file")
          out.mem_inactive_file = val;
        else if (k == "pgfault")  // hierarchical on v2: both scopes alike
          out.pgfault = out.total_pgfault = val;
        else if (k == "pgmajfault")
          out.pgmajfault = out.total_pgmajfault = val;
      });
    }
    if (get(fds, kV2SwapCurrent, text) && parse_u64(text, v))
      out.mem_swap = v;
    else if (out.mem_rss)
      out.mem_swap = 0;
  }
  if (groups_.memory || groups_.oom_event) {
    if (get(fds, kV2MemEvents, text)) {
      if (groups_.memory && find_key(text, "max", v)) out.mem_failcnt = v;
      if (groups_.oom_event && find_key(text, "oom_kill", v)) out.oom_kills = v;
    }
  }
  if (groups_.disk_io && get(fds, kV2IoStat, text)) {
    out.any = true;
    for_each_line(text, [&](std::string_view line) {
      uint32_t ma, mi;
      if (!parse_devno(line, ma, mi)) return;
      IoDevice& d = device(out.io, ma, mi);
      d.has_ops = true;
      while (!line.empty()) {
        std::string_view kv = word(line);
        if (kv.empty()) break;
        size_t eq = kv.find('=');
        if (eq == std::string_view::npos || !parse_u64(kv.substr(eq + 1), v)) continue;
        std::string_view k = kv.substr(0, eq);
        if (k == "rbytes") {
          d.read_bytes = d.op_bytes[0] = v;
          d.op_mask |= 1;
        } else if (k == "wbytes") {
          d.write_bytes = d.op_bytes[1] = v;
          d.op_mask |= 2;
        } else if (k == "rios") {
          d.reads = v;
        } else if (k == "wios") {
          d.writes = v;
        }
      }
    });
  }
  if (groups_.process) {
    if (get(fds, kV2PidsCurrent, text) && parse_u64(text, v)) out.threads = v;
    if (spec && get(fds, kV2PidsMax, text)) {
      uint64_t m = limit_value(text);
      out.threads_max = m == UINT64_MAX ? 0 : m;  // "max": 0, as cAdvisor
    }
  }
}

void StatsReader::read_v1(CgroupFds& fds, unsigned mask, bool spec, CgroupStats& out) {
  auto in = [&](int c) { return (mask & (1u << c)) != 0 && !layout_.v1[c].empty(); };
  std::string_view text;
  uint64_t v;
  if (in(kCpuacct)) {
    if (get(fds, kCpuacctUsage, text) && parse_u64(text, v)) {
      out.any = true;
      out.cpu_total_s = static_cast<double>(v) / 1e9;
    }
    if (groups_.percpu && get(fds, kCpuacctPercpu, text)) {
      std::string_view rest = text;
      for (std::string_view w = word(rest); !w.empty(); w = word(rest))
        if (parse_u64(w, v)) out.percpu_ns.push_back(v);
    }
    if (get(fds, kCpuacctStat, text)) {
      out.any = true;
      // USER_HZ ticks, as runc converts them.
      if (clk_tck_ <= 0) clk_tck_ = ::sysconf(_SC_CLK_TCK);
      double tick = clk_tck_ > 0 ? 1.0 / static_cast<double>(clk_tck_) : 0.01;
      if (find_key(text, "user", v)) out.cpu_user_s = static_cast<double>(v) * tick;
      if (find_key(text, "system", v)) out.cpu_system_s = static_cast<double>(v) * tick;
    }
  }
  if (in(kCpu)) {
    if (get(fds, kV1CpuStat, text)) {
      out.any = true;
      if (find_key(text, "nr_periods", v)) out.cfs_periods = v;
      if (find_key(text, "nr_throttled", v)) out.cfs_throttled_periods = v;
      if (find_key(text, "throttled_time", v)) out.cfs_throttled_s = static_cast<double>(v) / 1e9;
    }
    if (spec) {
      if (get(fds, kCfsQuota, text))
        out.cpu_quota = parse_u64(text, v) ? v : 0;  // "-1": unlimited, 0 as cAdvisor
      if (get(fds, kCfsPeriod, text) && parse_u64(text, v)) out.cpu_period = v;
      if (get(fds, kShares, text) && parse_u64(text, v)) out.cpu_shares = v;
    }
  }
  if (in(kMemory)) {
    if (spec) {
      if (get(fds, kMemLimit, text) && parse_u64(text, v)) out.mem_limit = v;
      if (get(fds, kMemswLimit, text) && parse_u64(text, v)) out.mem_swap_limit = v;
      if (get(fds, kMemSoftLimit, text) && parse_u64(text, v)) out.mem_reservation = v;
    }
    if (groups_.memory) {
      if (get(fds, kMemUsage, text) && parse_u64(text, v)) {
        out.any = true;
        out.mem_usage = v;
      }
      if (get(fds, kMemMaxUsage, text) && parse_u64(text, v)) out.mem_max_usage = v;
      if (get(fds, kV1MemStat, text)) {
        out.any = true;
        out.mem_swap = 0;
        // The hierarchical total_* values, as cAdvisor reports for v1; faults
        // also of the cgroup alone.
        for_each_key_value(text, [&](std::string_view k, uint64_t val) {
          if (k == "total_rss")
            out.mem_rss = val;
          else if (k == "total_cache")
            out.mem_cache = val;
          else if (k == "total_swap")
            out.mem_swap = val;
          else if (k == "total_mapped_file")
            out.mem_mapped_file = val;
          else if (k == "total_active_file")
            out.mem_active_file = val;
          else if (k == "total_inactive_file")
            out.mem_inactive_file = val;
          else if (k == "pgfault")
            out.pgfault = val;
          else if (k == "pgmajfault")
            out.pgmajfault = val;
          else if (k == "total_pgfault")
            out.total_pgfault = val;
          else if (k == "total_pgmajfault")
            out.total_pgmajfault = val;
        });
      }
      if (get(fds, kKmemUsage, text) && parse_u64(text, v)) out.mem_kernel = v;
      if (get(fds, kMemFailcnt, text) && parse_u64(text, v)) out.mem_failcnt = v;
    }
    if (groups_.oom_event && get(fds, kMemOomControl, text) && find_key(text, "oom_kill", v))
      out.oom_kills = v;
  }
  if (in(kBlkio) && groups_.disk_io) {
    // The throttle files count every I/O; the CFQ ones are the fallback of
    // kernels without blk-throttle.
    bool ok = get(fds, kBlkioBytes, text) || get(fds, kBlkioBytesCfq, text);
    if (ok) {
      out.any = true;
      for_each_line(text, [&](std::string_view line) {
        uint32_t ma, mi;
        if (!parse_devno(line, ma, mi)) return;  // also skips the final "Total N"
        std::string_view op = word(line);
        if (!parse_u64(line, v)) return;
        int i = blkio_op(op);
        if (i < 0) return;
        IoDevice& d = device(out.io, ma, mi);
        d.op_bytes[i] = v;
        d.op_mask |= static_cast<uint8_t>(1u << i);
        if (i == 0) d.read_bytes = v;
        if (i == 1) d.write_bytes = v;
      });
    }
    if (get(fds, kBlkioServiced, text) || get(fds, kBlkioServicedCfq, text)) {
      for_each_line(text, [&](std::string_view line) {
        uint32_t ma, mi;
        if (!parse_devno(line, ma, mi)) return;
        std::string_view op = word(line);
        if (!parse_u64(line, v)) return;
        if (op == "Read") {
          IoDevice& d = device(out.io, ma, mi);
          d.reads = v;
          d.has_ops = true;
        } else if (op == "Write") {
          IoDevice& d = device(out.io, ma, mi);
          d.writes = v;
          d.has_ops = true;
        }
      });
    }
  }
  // Threads come from the pids controller only, as cAdvisor's: `tasks` lists
  // the cgroup's own threads, not its descendants'.
  if (in(kPids) && groups_.process) {
    if (get(fds, kV1PidsCurrent, text) && parse_u64(text, v)) out.threads = v;
    if (spec && get(fds, kV1PidsMax, text)) {
      uint64_t m = limit_value(text);
      out.threads_max = m == UINT64_MAX ? 0 : m;
    }
  }
}

void StatsReader::parse_netdev(std::string_view text, std::vector<NetInterface>& out) {
  out.clear();
  int lineno = 0;
  for_each_line(text, [&](std::string_view line) {
    if (++lineno <= 2) return;  // two header lines
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) return;
    std::string_view name = line.substr(0, colon);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    if (name.empty() || name.size() > 15) return;
    for (std::string_view ignored : {"lo", "veth", "docker", "nerdctl"})
      if (name.substr(0, ignored.size()) == ignored) return;
    std::string_view rest = line.substr(colon + 1);
    uint64_t f[16] = {};
    for (int i = 0; i < 16; ++i) {
      std::string_view w = word(rest);
      if (w.empty() || !parse_u64(w, f[i])) return;
    }
    NetInterface n;
    name.copy(n.name, name.size());
    n.name_len = static_cast<uint8_t>(name.size());
    n.rx_bytes = f[0];
    n.rx_packets = f[1];
    n.rx_errors = f[2];
    n.rx_dropped = f[3];
    n.tx_bytes = f[8];
    n.tx_packets = f[9];
    n.tx_errors = f[10];
    n.tx_dropped = f[11];
    out.push_back(n);
  });
}

}  // namespace moni_cgroup
