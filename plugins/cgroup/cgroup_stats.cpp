#include "cgroup_stats.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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
      !parse_u64(line.substr(colon + 1, space - colon - 1), b) || a > UINT32_MAX || b > UINT32_MAX)
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

// Returns false when a line is not understood.
bool parse_psi(std::string_view text, PsiTotals& out) {
  bool ok = true;
  for_each_line(text, [&](std::string_view line) {
    size_t t = line.find("total=");
    uint64_t v;
    if (t == std::string_view::npos || !parse_u64(line.substr(t + 6), v)) {
      ok = false;
      return;
    }
    if (line.substr(0, 5) == "some ")
      out.some_us = v;
    else if (line.substr(0, 5) == "full ")
      out.full_us = v;
  });
  return ok;
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
  // O_NONBLOCK: a FIFO in place of a file must not hang the collection.
  return ::openat(root, path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
}

// One read of file `f` of the current cgroup: a pread on its kept-open
// descriptor, else open (and keep it, budget permitting) and read.
bool StatsReader::get(CgroupFds& fds, CgroupFile f, std::string_view& text) {
  int& slot = fds.fd[f];
  if (slot >= 0) {
    if (reader_.pread_all(slot, text)) return true;
    // ENODEV: the cgroup was removed (and maybe made again under the same
    // name): drop the descriptor and open the path afresh.
    if (errno != ENODEV) unreadable(f, errno);
    ::close(slot);
    slot = CgroupFds::kClosed;
    --open_;
  } else if (slot == CgroupFds::kAbsent && !probe_) {
    return false;
  }
  int fd = open_file(f);
  if (fd < 0) {
    // ENOENT: the cgroup lacks the file, or is gone; anything else (EACCES,
    // ENAMETOOLONG, ...) is counted, and the file tried again next time.
    if (errno == ENOENT) {
      slot = CgroupFds::kAbsent;
    } else {
      if (errno != ENODEV) unreadable(f, errno);
      slot = CgroupFds::kClosed;
    }
    return false;
  }
  bool ok = reader_.pread_all(fd, text);
  if (!ok && errno != ENODEV) unreadable(f, errno);
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

void StatsReader::example(CgroupFile f, std::string_view why) {
  const FileDef& def = kFiles[f];
  errors_.example = def.controller == kUnified ? layout_.unified : layout_.v1[def.controller];
  errors_.example.append(rel_);
  errors_.example.push_back('/');
  errors_.example.append(def.name);
  errors_.example.append(": ");
  errors_.example.append(why);
}

void StatsReader::malformed(CgroupFile f, std::string_view text) {
  ++errors_.malformed;
  // The start of the text, quoted, control and non-ASCII bytes as \xNN.
  std::string why = "cannot parse \"";
  for (size_t i = 0; i < text.size() && i < 40; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      why.push_back(char(c));
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      why.append(hex);
    }
  }
  why.append(text.size() > 40 ? "...\"" : "\"");
  example(f, why);
}

void StatsReader::unreadable(CgroupFile f, int err) {
  ++errors_.unreadable;
  example(f, std::strerror(err));
}

bool StatsReader::num(CgroupFile f, std::string_view text, uint64_t& v) {
  if (parse_u64(text, v)) return true;
  malformed(f, text);
  return false;
}

// A key missing from the file is not an error (kernels differ in keys).
bool StatsReader::key(CgroupFile f, std::string_view text, std::string_view k, uint64_t& v) {
  KeyFound r = find_key_value(text, k, v);
  if (r == KeyFound::kMalformed) malformed(f, text);
  return r == KeyFound::kFound;
}

// "max" (v2): unlimited, kept as UINT64_MAX; a v1 huge value is a number.
bool StatsReader::limit(CgroupFile f, std::string_view text, uint64_t& v) {
  if (trim(text) == "max") {
    v = UINT64_MAX;
    return true;
  }
  return num(f, text, v);
}

void StatsReader::read_psi(CgroupFds& fds, CgroupStats& out) {
  static constexpr CgroupFile kPsi[3] = {kCpuPressure, kMemPressure, kIoPressure};
  std::string_view text;
  for (int i = 0; i < 3; ++i)
    if (get(fds, kPsi[i], text) && !parse_psi(text, out.psi[i])) {
      out.psi[i] = PsiTotals{};  // a garbled file: none of its values
      malformed(kPsi[i], text);
    }
}

void StatsReader::read_v2(CgroupFds& fds, bool spec, CgroupStats& out) {
  std::string_view text;
  uint64_t v;
  if (get(fds, kV2CpuStat, text)) {
    out.any = true;
    if (key(kV2CpuStat, text, "usage_usec", v)) out.cpu_total_s = static_cast<double>(v) / 1e6;
    if (key(kV2CpuStat, text, "user_usec", v)) out.cpu_user_s = static_cast<double>(v) / 1e6;
    if (key(kV2CpuStat, text, "system_usec", v)) out.cpu_system_s = static_cast<double>(v) / 1e6;
    if (key(kV2CpuStat, text, "nr_periods", v)) out.cfs_periods = v;
    if (key(kV2CpuStat, text, "nr_throttled", v)) out.cfs_throttled_periods = v;
    if (key(kV2CpuStat, text, "throttled_usec", v))
      out.cfs_throttled_s = static_cast<double>(v) / 1e6;
  }
  if (spec && get(fds, kV2CpuMax, text)) {
    out.any = true;
    std::string_view rest = text;
    std::string_view quota = word(rest);
    std::string_view period = word(rest);
    if (quota == "max")
      out.cpu_quota = 0;  // unlimited, 0 as cAdvisor
    else if (num(kV2CpuMax, quota, v))
      out.cpu_quota = v;
    if (num(kV2CpuMax, period, v)) out.cpu_period = v;
  }
  if (spec && get(fds, kV2CpuWeight, text)) {
    out.any = true;
    // The kernel takes 1..10000; past it the formula below would overflow.
    if (!parse_u64(text, v) || v < 1 || v > 10000)
      malformed(kV2CpuWeight, text);
    else  // cAdvisor's inverse of the runc shares->weight mapping.
      out.cpu_shares = 2 + ((v - 1) * 262142) / 9999;
  }
  if (spec) {
    if (get(fds, kV2MemMax, text)) {
      out.any = true;
      if (limit(kV2MemMax, text, v)) out.mem_limit = v;
    }
    // As cAdvisor: reservation is memory.high, the swap limit memory.swap.max.
    if (get(fds, kV2MemHigh, text) && limit(kV2MemHigh, text, v)) out.mem_reservation = v;
    if (get(fds, kV2SwapMax, text) && limit(kV2SwapMax, text, v)) out.mem_swap_limit = v;
  }
  if (groups_.memory) {
    if (get(fds, kV2MemCurrent, text)) {
      out.any = true;
      if (num(kV2MemCurrent, text, v)) out.mem_usage = v;
    }
    if (get(fds, kV2MemPeak, text) && num(kV2MemPeak, text, v)) out.mem_max_usage = v;
    if (get(fds, kV2MemStat, text)) {
      out.any = true;
      // One pass over its ~40 lines (a lookup per key would rescan them).
      size_t bad = for_each_key_value(text, [&](std::string_view k, uint64_t val) {
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
      if (bad) malformed(kV2MemStat, text);
    }
    if (get(fds, kV2SwapCurrent, text)) {
      if (num(kV2SwapCurrent, text, v)) out.mem_swap = v;
    } else if (out.mem_rss) {
      out.mem_swap = 0;  // no swap controller
    }
  }
  if (groups_.memory || groups_.oom_event) {
    if (get(fds, kV2MemEvents, text)) {
      if (groups_.memory && key(kV2MemEvents, text, "max", v)) out.mem_failcnt = v;
      if (groups_.oom_event && key(kV2MemEvents, text, "oom_kill", v)) out.oom_kills = v;
    }
  }
  if (groups_.disk_io && get(fds, kV2IoStat, text)) {
    out.any = true;
    bool bad = false;
    for_each_line(text, [&](std::string_view line) {
      uint32_t ma, mi;
      if (!parse_devno(line, ma, mi)) {
        bad = true;
        return;
      }
      IoDevice& d = device(out.io, ma, mi);
      d.has_ops = true;
      while (!line.empty()) {
        std::string_view kv = word(line);
        if (kv.empty()) break;
        size_t eq = kv.find('=');
        if (eq == std::string_view::npos) {
          bad = true;
          continue;
        }
        // Only the keys used are checked: io.cost and io.latency add others
        // that are not integers ("cost.vrate=100.00", "depth=max").
        std::string_view k = kv.substr(0, eq);
        if (k != "rbytes" && k != "wbytes" && k != "rios" && k != "wios") continue;
        if (!parse_u64(kv.substr(eq + 1), v)) {
          bad = true;
          continue;
        }
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
    if (bad) malformed(kV2IoStat, text);
  }
  if (groups_.process) {
    if (get(fds, kV2PidsCurrent, text) && num(kV2PidsCurrent, text, v)) out.threads = v;
    if (spec && get(fds, kV2PidsMax, text) && limit(kV2PidsMax, text, v))
      out.threads_max = v == UINT64_MAX ? 0 : v;  // "max": 0, as cAdvisor
  }
}

void StatsReader::read_v1(CgroupFds& fds, unsigned mask, bool spec, CgroupStats& out) {
  auto in = [&](int c) { return (mask & (1u << c)) != 0 && !layout_.v1[c].empty(); };
  std::string_view text;
  uint64_t v;
  if (in(kCpuacct)) {
    if (get(fds, kCpuacctUsage, text)) {
      out.any = true;
      if (num(kCpuacctUsage, text, v)) out.cpu_total_s = static_cast<double>(v) / 1e9;
    }
    if (groups_.percpu && get(fds, kCpuacctPercpu, text)) {
      std::string_view rest = text;
      for (std::string_view w = word(rest); !w.empty(); w = word(rest)) {
        if (!parse_u64(w, v)) {
          // One bad word would shift every later CPU's index: none of them.
          out.percpu_ns.clear();
          malformed(kCpuacctPercpu, text);
          break;
        }
        out.percpu_ns.push_back(v);
      }
    }
    if (get(fds, kCpuacctStat, text)) {
      out.any = true;
      // USER_HZ ticks, as runc converts them.
      if (clk_tck_ <= 0) clk_tck_ = ::sysconf(_SC_CLK_TCK);
      double tick = clk_tck_ > 0 ? 1.0 / static_cast<double>(clk_tck_) : 0.01;
      if (key(kCpuacctStat, text, "user", v)) out.cpu_user_s = static_cast<double>(v) * tick;
      if (key(kCpuacctStat, text, "system", v)) out.cpu_system_s = static_cast<double>(v) * tick;
    }
  }
  if (in(kCpu)) {
    if (get(fds, kV1CpuStat, text)) {
      out.any = true;
      if (key(kV1CpuStat, text, "nr_periods", v)) out.cfs_periods = v;
      if (key(kV1CpuStat, text, "nr_throttled", v)) out.cfs_throttled_periods = v;
      if (key(kV1CpuStat, text, "throttled_time", v))
        out.cfs_throttled_s = static_cast<double>(v) / 1e9;
    }
    if (spec) {
      if (get(fds, kCfsQuota, text)) {
        if (trim(text) == "-1")
          out.cpu_quota = 0;  // unlimited, 0 as cAdvisor
        else if (num(kCfsQuota, text, v))
          out.cpu_quota = v;
      }
      if (get(fds, kCfsPeriod, text) && num(kCfsPeriod, text, v)) out.cpu_period = v;
      if (get(fds, kShares, text) && num(kShares, text, v)) out.cpu_shares = v;
    }
  }
  if (in(kMemory)) {
    if (spec) {
      if (get(fds, kMemLimit, text) && num(kMemLimit, text, v)) out.mem_limit = v;
      if (get(fds, kMemswLimit, text) && num(kMemswLimit, text, v)) out.mem_swap_limit = v;
      if (get(fds, kMemSoftLimit, text) && num(kMemSoftLimit, text, v)) out.mem_reservation = v;
    }
    if (groups_.memory) {
      if (get(fds, kMemUsage, text)) {
        out.any = true;
        if (num(kMemUsage, text, v)) out.mem_usage = v;
      }
      if (get(fds, kMemMaxUsage, text) && num(kMemMaxUsage, text, v)) out.mem_max_usage = v;
      if (get(fds, kV1MemStat, text)) {
        out.any = true;
        // The hierarchical total_* values, as cAdvisor reports for v1; faults
        // also of the cgroup alone. Swap is 0 without swap accounting (no
        // total_swap line), but only in a memory.stat that was understood.
        bool any_key = false;
        size_t bad = for_each_key_value(text, [&](std::string_view k, uint64_t val) {
          any_key = true;
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
        if (bad) malformed(kV1MemStat, text);
        if (any_key && !bad && !out.mem_swap) out.mem_swap = 0;
      }
      if (get(fds, kKmemUsage, text) && num(kKmemUsage, text, v)) out.mem_kernel = v;
      if (get(fds, kMemFailcnt, text) && num(kMemFailcnt, text, v)) out.mem_failcnt = v;
    }
    if (groups_.oom_event && get(fds, kMemOomControl, text) &&
        key(kMemOomControl, text, "oom_kill", v))
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
    if (get(fds, kV1PidsCurrent, text) && num(kV1PidsCurrent, text, v)) out.threads = v;
    if (spec && get(fds, kV1PidsMax, text) && limit(kV1PidsMax, text, v))
      out.threads_max = v == UINT64_MAX ? 0 : v;
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
