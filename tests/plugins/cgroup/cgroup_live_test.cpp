// The cgroup collector against this machine's real cgroupfs: a fresh cgroup
// with a memory limit and a CFS quota, a CPU+memory burner child inside, and
// the collector's view of it before and after it burnt 0.6 s of CPU (>= 1.2 s
// of wall time under the 50% quota).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "plugin_harness.hpp"

using moni::testing::plugin_path;
using moni::testing::PluginHarness;

namespace {

constexpr long kLimit = 256L << 20;
constexpr long kBurnBytes = 96L << 20;

bool write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  f.flush();
  return static_cast<bool>(f);
}

std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// The mount points of cgroup hierarchies holding `controller` (v1), and the
// cgroup2 mount, from /proc/self/mountinfo.
struct Mounts {
  std::string cpu, cpuacct, memory, pids, unified;
};
Mounts find_mounts() {
  Mounts m;
  std::istringstream in(slurp("/proc/self/mountinfo"));
  for (std::string line; std::getline(in, line);) {
    std::istringstream l(line);
    std::vector<std::string> f;
    for (std::string w; l >> w;) f.push_back(w);
    size_t dash = 0;
    while (dash < f.size() && f[dash] != "-") ++dash;
    if (dash + 3 >= f.size() || f.size() < 5) continue;
    const std::string& type = f[dash + 1];
    const std::string& point = f[4];
    if (type == "cgroup2") {
      if (m.unified.empty()) m.unified = point;
      continue;
    }
    if (type != "cgroup") continue;
    std::string opts = "," + f[dash + 3] + ",";
    auto has = [&](const char* c) {
      return opts.find(std::string(",") + c + ",") != std::string::npos;
    };
    if (has("cpu") && m.cpu.empty()) m.cpu = point;
    if (has("cpuacct") && m.cpuacct.empty()) m.cpuacct = point;
    if (has("memory") && m.memory.empty()) m.memory = point;
    if (has("pids") && m.pids.empty()) m.pids = point;
  }
  return m;
}

// A cgroup made for the test in every hierarchy it needs; removed at the end.
class LiveCgroup {
 public:
  std::string id;                 // "/moni-test-<pid>"
  std::vector<std::string> dirs;  // one per hierarchy
  bool v2 = false;
  std::string skip_reason;

  LiveCgroup() {
    id = "/moni-test-" + std::to_string(::getpid());
    Mounts m = find_mounts();
    if (!m.cpu.empty() && !m.cpuacct.empty() && !m.memory.empty()) {
      for (const std::string* base : {&m.cpu, &m.cpuacct, &m.memory, &m.pids}) {
        if (base->empty()) continue;
        std::string d = *base + id;
        bool dup = false;
        for (const auto& x : dirs) dup |= x == d;
        if (dup) continue;
        if (::mkdir(d.c_str(), 0755) != 0) {
          skip_reason = "cannot create " + d + ": " + std::strerror(errno) +
                        " (the v1 cgroup hierarchies are not writable here)";
          return;
        }
        dirs.push_back(d);
      }
      cpu_dir = m.cpu + id;
      memory_dir = m.memory + id;
      return;
    }
    if (!m.unified.empty()) {
      std::string controllers = slurp(m.unified + "/cgroup.subtree_control");
      if (controllers.find("cpu") == std::string::npos ||
          controllers.find("memory") == std::string::npos) {
        skip_reason =
            "cgroup2 at " + m.unified +
            " does not delegate the cpu and memory controllers (subtree_control: " + controllers +
            ")";
        return;
      }
      std::string d = m.unified + id;
      if (::mkdir(d.c_str(), 0755) != 0) {
        skip_reason = "cannot create " + d + ": " + std::strerror(errno);
        return;
      }
      dirs.push_back(d);
      v2 = true;
      cpu_dir = memory_dir = d;
      return;
    }
    skip_reason = "no cgroup hierarchy with cpu and memory controllers is mounted";
  }
  ~LiveCgroup() {
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) ::rmdir(it->c_str());
  }
  bool set_limits() {
    if (v2)
      return write_file(memory_dir + "/memory.max", std::to_string(kLimit)) &&
             write_file(cpu_dir + "/cpu.max", "50000 100000");
    return write_file(memory_dir + "/memory.limit_in_bytes", std::to_string(kLimit)) &&
           write_file(cpu_dir + "/cpu.cfs_period_us", "100000") &&
           write_file(cpu_dir + "/cpu.cfs_quota_us", "50000");
  }
  bool set_memory_limit(long bytes) {
    return write_file(memory_dir + (v2 ? "/memory.max" : "/memory.limit_in_bytes"),
                      std::to_string(bytes));
  }
  const std::string& memory() const { return memory_dir; }
  bool enter(pid_t pid) {
    for (const auto& d : dirs)
      if (!write_file(d + "/cgroup.procs", std::to_string(pid))) return false;
    return true;
  }

 private:
  std::string cpu_dir, memory_dir;
};

constexpr double kBurnCpuSeconds = 0.6;

// Child: waits for the go byte, touches kBurnBytes, spins until it has used
// kBurnCpuSeconds of CPU (CPU time, not wall time, so a loaded machine only
// makes it slower), reports done, then sleeps holding the memory until killed.
[[noreturn]] void burner(int go_fd, int done_fd) {
  char c;
  if (::read(go_fd, &c, 1) != 1) ::_exit(1);
  std::vector<char> mem(static_cast<size_t>(kBurnBytes));
  for (size_t i = 0; i < mem.size(); i += 4096) mem[i] = static_cast<char>(i);
  volatile uint64_t x = 0;
  for (;;) {
    struct timespec ts {};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    if (static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9 >= kBurnCpuSeconds)
      break;
    for (int i = 0; i < 100000; ++i) x = x + static_cast<uint64_t>(i) * 7;
  }
  if (::write(done_fd, "d", 1) != 1) ::_exit(1);
  for (;;) ::pause();
}

double value(const moni::testing::OwnedBatch& b, const std::string& name) {
  const auto* s = b.one(name);
  return s ? s->value : -1;
}

}  // namespace

TEST(CgroupLive, BurnerInRealCgroupRaisesCountersAndReportsLimits) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
  LiveCgroup cg;
  if (!cg.skip_reason.empty()) GTEST_SKIP() << cg.skip_reason;
  ASSERT_TRUE(cg.set_limits()) << "cannot set limits in " << cg.dirs[0];

  auto h = PluginHarness::load(plugin_path("cgroup"), "include = ['^" + cg.id + "$']\n");
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& p = **h;
  ASSERT_TRUE(p.start().ok());

  int go[2], done[2];
  ASSERT_EQ(::pipe(go), 0);
  ASSERT_EQ(::pipe(done), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::close(go[1]);
    ::close(done[0]);
    burner(go[0], done[1]);
  }
  ::close(go[0]);
  ::close(done[1]);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{child};
  // A delegated or namespaced cgroup tree may refuse moving a process to a
  // cgroup outside it: an environment limit, not a collector failure.
  if (!cg.enter(child))
    GTEST_SKIP() << "cannot move a process into " << cg.dirs[0]
                 << "/cgroup.procs: " << std::strerror(errno);

  auto before = p.collect(1000);
  ASSERT_TRUE(before.ok()) << before.error().message;
  ASSERT_NE(before->one("container_last_seen"), nullptr)
      << "the test cgroup " << cg.id << " was not reported";
  EXPECT_EQ(before->one("container_last_seen")->label("id"), cg.id);
  EXPECT_EQ(value(*before, "container_processes"), 1);
  double cpu0 = value(*before, "container_cpu_user_seconds_total") +
                value(*before, "container_cpu_system_seconds_total");
  double mem0 = value(*before, "container_memory_usage_bytes");

  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(::write(go[1], "g", 1), 1);
  ::close(go[1]);
  struct pollfd pfd {
    done[0], POLLIN, 0
  };
  ASSERT_EQ(::poll(&pfd, 1, 20000), 1) << "the burner did not finish within 20 s";
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(done[0]);

  auto after = p.collect(3200);
  ASSERT_TRUE(after.ok()) << after.error().message;
  double usage = value(*after, "container_cpu_usage_seconds_total");
  double cpu1 = value(*after, "container_cpu_user_seconds_total") +
                value(*after, "container_cpu_system_seconds_total");
  double mem1 = value(*after, "container_memory_usage_bytes");
  // The burner used kBurnCpuSeconds; the 50% quota means it took at least
  // twice that in wall time (one period of slack).
  EXPECT_GE(usage, kBurnCpuSeconds - 0.05);  // cpuacct and the process clock differ a little
  EXPECT_LT(usage, kBurnCpuSeconds + 0.3);
  EXPECT_GE(cpu1 - cpu0, kBurnCpuSeconds - 0.1);  // USER_HZ ticks are coarser
  EXPECT_GE(elapsed, 2 * kBurnCpuSeconds - 0.15) << "the CFS quota was not enforced";
  EXPECT_GE(mem1 - mem0, 0.8 * kBurnBytes) << "before " << mem0 << " after " << mem1;
  EXPECT_LE(mem1, kLimit);
  EXPECT_GE(value(*after, "container_memory_working_set_bytes"), 0.8 * kBurnBytes);
  EXPECT_GE(value(*after, "container_memory_rss"), 0.8 * kBurnBytes);
  EXPECT_EQ(value(*after, "container_spec_memory_limit_bytes"), kLimit);
  EXPECT_EQ(value(*after, "container_spec_cpu_quota"), 50000);
  EXPECT_EQ(value(*after, "container_spec_cpu_period"), 100000);
  // Whether it was throttled depends on how busy the machine is: only the
  // counters' presence and consistency are certain.
  double periods = value(*after, "container_cpu_cfs_periods_total");
  EXPECT_GE(periods, 2 * kBurnCpuSeconds / 0.1 - 2);  // 100 ms periods
  EXPECT_GE(value(*after, "container_cpu_cfs_throttled_periods_total"), 0);
  EXPECT_LE(value(*after, "container_cpu_cfs_throttled_periods_total"), periods);
  EXPECT_GE(value(*after, "container_cpu_cfs_throttled_seconds_total"), 0);
  EXPECT_EQ(value(*after, "container_processes"), 1);
  // Host network namespace: no network series for a plain cgroup.
  EXPECT_TRUE(after->find("container_network_receive_bytes_total").empty());
  // The peak (v1 max_usage_in_bytes, v2 memory.peak where the kernel has it)
  // saw the burner's memory.
  double peak = value(*after, "container_memory_max_usage_bytes");
  if (peak >= 0) {
    EXPECT_GE(peak, mem1);
  }
  EXPECT_FALSE(after->find("container_memory_failures_total").empty());
  // Both collections read through kept-open files (pread from offset 0).
  EXPECT_GT(p.self_metrics().one("moni_cgroup_open_files")->value, 3);

  // Per-CPU usage (v1 only): the per-CPU series add up to the total.
  if (!cg.v2) {
    auto hp = PluginHarness::load(plugin_path("cgroup"),
                                  "include = ['^" + cg.id + "$']\nenable_metrics = ['percpu']\n");
    ASSERT_TRUE(hp.ok()) << hp.error().message;
    ASSERT_TRUE((*hp)->start().ok());
    auto b = (*hp)->collect(3300);
    ASSERT_TRUE(b.ok()) << b.error().message;
    double sum = 0;
    size_t n = 0;
    for (const auto& s : b->find("container_cpu_usage_seconds_total")) {
      EXPECT_EQ(s.label("cpu").substr(0, 3), "cpu");
      EXPECT_NE(s.label("cpu"), "total");
      sum += s.value;
      ++n;
    }
    EXPECT_GE(n, 1u);
    EXPECT_NEAR(sum, usage, 0.05);
  }
}

// Kept-open files must not stand in the way of a runtime removing a cgroup,
// and are closed once it is gone.
TEST(CgroupLive, KeptOpenFilesDoNotBlockRemoval) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
  LiveCgroup cg;
  if (!cg.skip_reason.empty()) GTEST_SKIP() << cg.skip_reason;
  auto h = PluginHarness::load(plugin_path("cgroup"), "include = ['^" + cg.id + "$']\n");
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& p = **h;
  ASSERT_TRUE(p.start().ok());
  auto b1 = p.collect(1000);
  ASSERT_TRUE(b1.ok()) << b1.error().message;
  ASSERT_NE(b1->one("container_last_seen"), nullptr);
  double open1 = p.self_metrics().one("moni_cgroup_open_files")->value;
  EXPECT_GT(open1, 0);
  // Every cgroup the walk sees is watched, the test's one in each hierarchy
  // with its limit files.
  double watches1 = p.self_metrics().one("moni_cgroup_watches")->value;
  const double made = static_cast<double>(cg.dirs.size());
  for (auto it = cg.dirs.rbegin(); it != cg.dirs.rend(); ++it)
    ASSERT_EQ(::rmdir(it->c_str()), 0) << *it << ": " << std::strerror(errno);
  cg.dirs.clear();
  auto b2 = p.collect(16000);
  ASSERT_TRUE(b2.ok()) << b2.error().message;
  EXPECT_EQ(b2->one("container_last_seen"), nullptr);
  EXPECT_EQ(p.self_metrics().one("moni_cgroup_open_files")->value, 0);
  // Its inotify watches went with it (a watch would pin the removed inodes).
  // (one per directory, plus its limit files: at least one per cgroup).
  EXPECT_GE(watches1 - p.self_metrics().one("moni_cgroup_watches")->value, made + 1);
}

// On the real cgroupfs, a limit written by another process shows at the very
// next collection (inotify on the cgroup's directories, not polling every
// 4th), and a cgroup made below the leaf appears at the next one too.
TEST(CgroupLive, WrittenLimitAndNewChildShowAtTheNextCollection) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
  LiveCgroup cg;
  if (!cg.skip_reason.empty()) GTEST_SKIP() << cg.skip_reason;
  auto h = PluginHarness::load(plugin_path("cgroup"), "include = ['^" + cg.id + "(/|$)']\n");
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& p = **h;
  ASSERT_TRUE(p.start().ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(p.collect(1000 + i * 15000).ok());
  EXPECT_GE(p.self_metrics().one("moni_cgroup_watches")->value, double(cg.dirs.size()));
  for (int i = 1; i <= 5; ++i) {
    const long limit = kLimit + i * (1L << 20);
    pid_t writer = ::fork();  // another process writes, as runc or systemd would
    if (writer == 0) ::_exit(cg.set_memory_limit(limit) ? 0 : 1);
    int status = 0;
    ASSERT_EQ(::waitpid(writer, &status, 0), writer);
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "cannot write the limit";
    auto b = p.collect(46000 + i * 15000);
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_EQ(value(*b, "container_spec_memory_limit_bytes"), limit) << "collection " << i;
  }
  // A child cgroup in the memory hierarchy (where the limit lives).
  std::string child = cg.memory() + "/child";
  ASSERT_EQ(::mkdir(child.c_str(), 0755), 0) << child << ": " << std::strerror(errno);
  auto b = p.collect(200000);
  ::rmdir(child.c_str());
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_NE(b->one("container_last_seen", "id", cg.id + "/child"), nullptr);
}

TEST(CgroupLive, WholeHostCollectsEveryCgroupWithoutErrors) {
  if (find_mounts().unified.empty() && find_mounts().memory.empty())
    GTEST_SKIP() << "no cgroup hierarchy is mounted";
  auto h = PluginHarness::load(plugin_path("cgroup"), "");
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& p = **h;
  ASSERT_TRUE(p.start().ok());
  for (int64_t t : {1000, 16000}) {
    auto b = p.collect(t);
    ASSERT_TRUE(b.ok()) << b.error().message;
    const auto* root = b->one("container_last_seen", "id", "/");
    ASSERT_NE(root, nullptr) << "the root cgroup was not reported";
    EXPECT_EQ(root->value, t / 1000);
    const auto* procs = b->one("container_processes", "id", "/");
    ASSERT_NE(procs, nullptr);
    EXPECT_GE(procs->value, 1);  // this test process at least
    auto cpu = b->find("container_cpu_usage_seconds_total", "id", "/");
    if (!cpu.empty()) {
      EXPECT_GT(cpu[0].value, 0);
    }
    // Every sample has an id; no family is emitted without its metadata.
    for (const auto& s : b->samples) {
      EXPECT_FALSE(s.label("id").empty()) << s.name();
      EXPECT_NE(b->meta(s.name()), nullptr) << s.name();
    }
  }
  EXPECT_LE(p.logs().size(), 1u);
}

// The real cgroupfs under attack: cgroups made and removed in a loop by
// another thread while collections run (in every v1 hierarchy, so a cgroup
// can vanish between the walk and its reads, or between hierarchies), names
// the kernel accepts but labels find hard (a space, a quote, UTF-8, bytes
// that are not UTF-8), and a chain 100 levels deep. Every collection
// succeeds with finite, non-negative values; the name that is not UTF-8 is
// counted and not reported; nothing is left open once it is all gone.
TEST(CgroupLive, ChurnHostileNamesAndDepthOnRealCgroupfs) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to create cgroups";
  Mounts m = find_mounts();
  std::vector<std::string> bases;
  for (const std::string* b : {&m.cpu, &m.cpuacct, &m.memory, &m.pids})
    if (!b->empty() && std::find(bases.begin(), bases.end(), *b) == bases.end())
      bases.push_back(*b);
  if (bases.empty() && !m.unified.empty()) bases.push_back(m.unified);
  if (bases.empty()) GTEST_SKIP() << "no cgroup hierarchy is mounted";
  const std::string id = "/moni-hostile-" + std::to_string(::getpid());
  std::vector<std::string> made;  // removed in reverse order
  auto mk = [&](const std::string& rel) {
    for (const auto& b : bases) {
      std::string d = b + id + rel;
      if (::mkdir(d.c_str(), 0755) != 0) return false;
      made.push_back(d);
    }
    return true;
  };
  if (!mk("")) {
    for (auto it = made.rbegin(); it != made.rend(); ++it) ::rmdir(it->c_str());
    GTEST_SKIP() << "cannot create cgroups under " << bases[0] << ": " << std::strerror(errno);
  }
  const std::vector<std::string> names = {"/with space", "/quo\"te", "/üñí ☃", "/bad\xff\xfe"};
  for (const auto& n : names) ASSERT_TRUE(mk(n)) << n << ": " << std::strerror(errno);
  std::string deep;
  for (int i = 0; i < 100; ++i) {
    deep += "/d";
    std::string d = bases[0] + id + deep;
    ASSERT_EQ(::mkdir(d.c_str(), 0755), 0) << std::strerror(errno);
    made.push_back(d);
  }
  std::atomic<bool> stop{false};
  std::atomic<int> churned{0};
  std::thread churn([&] {
    for (int i = 0; !stop.load(); ++i) {
      std::string rel = id + "/churn" + std::to_string(i % 7);
      for (const auto& b : bases) ::mkdir((b + rel).c_str(), 0755);
      for (auto it = bases.rbegin(); it != bases.rend(); ++it) ::rmdir((*it + rel).c_str());
      churned.fetch_add(1);
    }
  });
  auto h = PluginHarness::load(plugin_path("cgroup"), "include = ['^" + id + "(/|$)']\n");
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto& p = **h;
  ASSERT_TRUE(p.start().ok());
  size_t deepest = 0;
  for (int i = 0; i < 40; ++i) {
    auto b = p.collect(1000 + i * 15000);
    ASSERT_TRUE(b.ok()) << b.error().message;
    for (const auto& s : b->samples) {
      EXPECT_TRUE(std::isfinite(s.value) && s.value >= 0) << s.name() << " " << s.value;
      const std::string sid = s.label("id");
      ASSERT_EQ(sid.rfind(id, 0), 0u) << sid;
      EXPECT_EQ(sid.find("bad"), std::string::npos);
      deepest = std::max<size_t>(deepest, size_t(std::count(sid.begin(), sid.end(), '/')));
    }
    if (i != 0) continue;
    for (const auto& n : names) {
      if (n.find("bad") == std::string::npos) {
        EXPECT_NE(b->one("container_last_seen", "id", id + n), nullptr) << n;
      }
    }
  }
  stop = true;
  churn.join();
  EXPECT_GT(churned.load(), 10);
  EXPECT_EQ(deepest, 64u);
  auto self = p.self_metrics();
  EXPECT_EQ(self.one("moni_cgroup_errors_total", "reason", "invalid_utf8_path")->value, 1);
  EXPECT_EQ(self.one("moni_cgroup_errors_total", "reason", "malformed_file")->value, 0);
  EXPECT_EQ(self.one("moni_cgroup_errors_total", "reason", "unreadable_file")->value, 0);
  EXPECT_GE(self.one("moni_cgroup_errors_total", "reason", "too_deep")->value, 1);
  for (auto it = made.rbegin(); it != made.rend(); ++it)
    EXPECT_EQ(::rmdir(it->c_str()), 0) << *it << ": " << std::strerror(errno);
  auto b = p.collect(1000000);
  ASSERT_TRUE(b.ok());
  EXPECT_TRUE(b->samples.empty());
  EXPECT_EQ(p.self_metrics().one("moni_cgroup_open_files")->value, 0);
}
