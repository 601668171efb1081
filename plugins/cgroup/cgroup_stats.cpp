#include "cgroup_stats.hpp"

#include <fcntl.h>
#include <unistd.h>

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
  io.push_back(IoDevice{major, minor, 0, 0});
  return io.back();
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
  std::vector<IoDevice> keep = std::move(io);
  keep.clear();
  *this = CgroupStats{};
  io = std::move(keep);
}

bool StatsReader::read_file(std::string_view dir, const char* file, std::string_view& text) {
  if (dirfd_ < 0 || open_dir_ != dir) {
    close_dir();
    open_dir_.assign(dir);
    dirfd_ = open_below_base();
    if (dirfd_ < 0) return false;
  }
  return reader_.read_at(dirfd_, file, text);
}

// Opens open_dir_ relative to its hierarchy's root, kept open: the path walk
// through /sys/fs/cgroup/<controller> is a good part of an open's cost.
int StatsReader::open_below_base() {
  constexpr int kFlags = O_PATH | O_DIRECTORY | O_CLOEXEC;
  std::string_view dir = open_dir_;
  for (auto& [base, fd] : base_fds_) {
    if (dir.size() < base.size() || dir.compare(0, base.size(), base) != 0) continue;
    if (dir.size() > base.size() && dir[base.size()] != '/') continue;
    if (fd < 0) break;
    return ::openat(fd, dir.size() == base.size() ? "." : open_dir_.c_str() + base.size() + 1,
                    kFlags);
  }
  return ::open(open_dir_.c_str(), kFlags);
}

StatsReader::StatsReader(const CgroupLayout& layout) : layout_(layout) {
  auto add = [&](const std::string& base) {
    if (base.empty()) return;
    for (const auto& b : base_fds_)
      if (b.first == base) return;
    base_fds_.emplace_back(base, ::open(base.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  };
  add(layout_.unified);
  for (const auto& d : layout_.v1) add(d);
}

StatsReader::~StatsReader() {
  close_dir();
  for (auto& b : base_fds_)
    if (b.second >= 0) ::close(b.second);
}

void StatsReader::close_dir() {
  if (dirfd_ >= 0) ::close(dirfd_);
  dirfd_ = -1;
  open_dir_.clear();
}

std::string& StatsReader::dir_of(const std::string& base, std::string_view rel) {
  dir_.assign(base);
  dir_.append(rel);
  return dir_;
}

void StatsReader::read(std::string_view rel, unsigned v1_mask, bool spec, CgroupStats& out) {
  out.reset();
  struct Closer {
    StatsReader* r;
    ~Closer() { r->close_dir(); }
  } closer{this};
  if (layout_.mode == CgroupLayout::Mode::V2) {
    read_v2(dir_of(layout_.unified, rel), spec, out);
    read_psi(dir_, out);
    return;
  }
  read_v1(rel, v1_mask, spec, out);
  // Hybrid: controllers live on v1, but PSI only exists in the unified tree.
  if (layout_.mode == CgroupLayout::Mode::Hybrid && out.any) {
    bool any = out.any;
    read_psi(dir_of(layout_.unified, rel), out);
    out.any = any;
  }
}

void StatsReader::read_psi(std::string_view dir, CgroupStats& out) {
  static constexpr const char* kFiles[3] = {"cpu.pressure", "memory.pressure", "io.pressure"};
  std::string_view text;
  for (int i = 0; i < 3; ++i)
    if (read_file(dir, kFiles[i], text)) parse_psi(text, out.psi[i]);
}

void StatsReader::read_v2(std::string_view dir, bool spec, CgroupStats& out) {
  std::string_view text;
  uint64_t v;
  if (read_file(dir, "cpu.stat", text)) {
    out.any = true;
    if (find_key(text, "usage_usec", v)) out.cpu_total_s = static_cast<double>(v) / 1e6;
    if (find_key(text, "user_usec", v)) out.cpu_user_s = static_cast<double>(v) / 1e6;
    if (find_key(text, "system_usec", v)) out.cpu_system_s = static_cast<double>(v) / 1e6;
    if (find_key(text, "nr_periods", v)) out.cfs_periods = v;
    if (find_key(text, "nr_throttled", v)) out.cfs_throttled_periods = v;
    if (find_key(text, "throttled_usec", v)) out.cfs_throttled_s = static_cast<double>(v) / 1e6;
  }
  if (spec && read_file(dir, "cpu.max", text)) {
    out.any = true;
    std::string_view rest = text;
    std::string_view quota = word(rest);
    std::string_view period = word(rest);
    out.cpu_quota = parse_u64(quota, v) ? v : 0;  // "max": unlimited, 0 as cAdvisor
    if (parse_u64(period, v)) out.cpu_period = v;
  }
  if (spec && read_file(dir, "cpu.weight", text) && parse_u64(text, v) && v >= 1) {
    out.any = true;
    // cAdvisor's inverse of the runc shares->weight mapping.
    out.cpu_shares = 2 + ((v - 1) * 262142) / 9999;
  }
  if (read_file(dir, "memory.current", text) && parse_u64(text, v)) {
    out.any = true;
    out.mem_usage = v;
  }
  if (read_file(dir, "memory.stat", text)) {
    out.any = true;
    if (find_key(text, "anon", v)) out.mem_rss = v;
    if (find_key(text, "file", v)) out.mem_cache = v;
    if (find_key(text, "inactive_file", v)) out.mem_inactive_file = v;
  }
  if (spec && read_file(dir, "memory.max", text)) {
    out.any = true;
    out.mem_limit = parse_u64(text, v) ? v : UINT64_MAX;
  }
  if (read_file(dir, "memory.swap.current", text) && parse_u64(text, v))
    out.mem_swap = v;
  else if (out.mem_rss)
    out.mem_swap = 0;
  if (read_file(dir, "memory.events", text)) {
    if (find_key(text, "max", v)) out.mem_failcnt = v;
    if (find_key(text, "oom_kill", v)) out.oom_kills = v;
  }
  if (read_file(dir, "io.stat", text)) {
    out.any = out.has_io = true;
    for_each_line(text, [&](std::string_view line) {
      uint32_t ma, mi;
      if (!parse_devno(line, ma, mi)) return;
      IoDevice& d = device(out.io, ma, mi);
      while (!line.empty()) {
        std::string_view kv = word(line);
        if (kv.empty()) break;
        if (kv.substr(0, 7) == "rbytes=" && parse_u64(kv.substr(7), v))
          d.read_bytes = v;
        else if (kv.substr(0, 7) == "wbytes=" && parse_u64(kv.substr(7), v))
          d.write_bytes = v;
      }
    });
  }
  if (read_file(dir, "pids.current", text) && parse_u64(text, v)) out.threads = v;
}

void StatsReader::read_v1(std::string_view rel, unsigned mask, bool spec, CgroupStats& out) {
  auto in = [&](int c) { return (mask & (1u << c)) != 0 && !layout_.v1[c].empty(); };
  std::string_view text;
  uint64_t v;
  if (in(kCpuacct)) {
    const std::string& dir = dir_of(layout_.v1[kCpuacct], rel);
    if (read_file(dir, "cpuacct.usage", text) && parse_u64(text, v)) {
      out.any = true;
      out.cpu_total_s = static_cast<double>(v) / 1e9;
    }
    if (read_file(dir, "cpuacct.stat", text)) {
      out.any = true;
      // USER_HZ ticks, as runc converts them.
      if (clk_tck_ <= 0) clk_tck_ = ::sysconf(_SC_CLK_TCK);
      double tick = clk_tck_ > 0 ? 1.0 / static_cast<double>(clk_tck_) : 0.01;
      if (find_key(text, "user", v)) out.cpu_user_s = static_cast<double>(v) * tick;
      if (find_key(text, "system", v)) out.cpu_system_s = static_cast<double>(v) * tick;
    }
  }
  if (in(kCpu)) {
    const std::string& dir = dir_of(layout_.v1[kCpu], rel);
    if (read_file(dir, "cpu.stat", text)) {
      out.any = true;
      if (find_key(text, "nr_periods", v)) out.cfs_periods = v;
      if (find_key(text, "nr_throttled", v)) out.cfs_throttled_periods = v;
      if (find_key(text, "throttled_time", v)) out.cfs_throttled_s = static_cast<double>(v) / 1e9;
    }
    if (spec) {
      if (read_file(dir, "cpu.cfs_quota_us", text))
        out.cpu_quota = parse_u64(text, v) ? v : 0;  // "-1": unlimited, 0 as cAdvisor
      if (read_file(dir, "cpu.cfs_period_us", text) && parse_u64(text, v)) out.cpu_period = v;
      if (read_file(dir, "cpu.shares", text) && parse_u64(text, v)) out.cpu_shares = v;
    }
  }
  if (in(kMemory)) {
    const std::string& dir = dir_of(layout_.v1[kMemory], rel);
    if (read_file(dir, "memory.usage_in_bytes", text) && parse_u64(text, v)) {
      out.any = true;
      out.mem_usage = v;
    }
    if (read_file(dir, "memory.stat", text)) {
      out.any = true;
      // The hierarchical total_* values, as cAdvisor reports for v1.
      if (find_key(text, "total_rss", v)) out.mem_rss = v;
      if (find_key(text, "total_cache", v)) out.mem_cache = v;
      out.mem_swap = find_key(text, "total_swap", v) ? v : 0;
      if (find_key(text, "total_inactive_file", v)) out.mem_inactive_file = v;
    }
    if (spec && read_file(dir, "memory.limit_in_bytes", text) && parse_u64(text, v))
      out.mem_limit = v;
    if (read_file(dir, "memory.failcnt", text) && parse_u64(text, v)) out.mem_failcnt = v;
    if (read_file(dir, "memory.oom_control", text) && find_key(text, "oom_kill", v))
      out.oom_kills = v;
  }
  if (in(kBlkio)) {
    const std::string& dir = dir_of(layout_.v1[kBlkio], rel);
    bool ok = read_file(dir, "blkio.throttle.io_service_bytes_recursive", text);
    if (!ok) ok = read_file(dir, "blkio.io_service_bytes_recursive", text);
    if (ok) {
      out.any = out.has_io = true;
      for_each_line(text, [&](std::string_view line) {
        uint32_t ma, mi;
        if (!parse_devno(line, ma, mi)) return;  // also skips the final "Total N"
        std::string_view op = word(line);
        if (!parse_u64(line, v)) return;
        if (op == "Read")
          device(out.io, ma, mi).read_bytes = v;
        else if (op == "Write")
          device(out.io, ma, mi).write_bytes = v;
      });
    }
  }
  // Threads come from the pids controller only, as cAdvisor's: `tasks` lists
  // the cgroup's own threads, not its descendants'.
  if (in(kPids)) {
    if (read_file(dir_of(layout_.v1[kPids], rel), "pids.current", text) && parse_u64(text, v))
      out.threads = v;
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
