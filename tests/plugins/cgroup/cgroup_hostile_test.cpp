// The cgroup collector against hostile v2 trees built on the spot: garbage,
// empty, overflowing and negative values, FIFOs, /dev/zero and directories
// in place of files, symlink loops, names that are hard on labels (quotes,
// newlines, invalid UTF-8), deep nesting, unreadable files, and a config
// with bad values. Never a crash, hang or wrong value: a bad file's values
// are skipped and counted in moni_cgroup_errors_total.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <moni/text_format.hpp>
#include <set>

#include "plugin_harness.hpp"

using moni::testing::plugin_path;
using moni::testing::PluginHarness;
namespace fs = std::filesystem;

namespace {

constexpr int64_t kNow = 1700000000000;

// A v2 host: <dir>/mountinfo says cgroup2 at /sys/fs/cgroup, re-rooted at
// <dir>/cgroup; procfs and the runtimes' state are empty directories.
class HostileTree {
 public:
  HostileTree() {
    // tmpfs when there is one: making thousands of cgroups on ext4 took 7 s.
    std::string tmpl = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm/moni-cgroup-hostile-XXXXXX"
                                                       : "/tmp/moni-cgroup-hostile-XXXXXX";
    dir_ = ::mkdtemp(tmpl.data());
    ::chmod(dir_.c_str(), 0755);
    for (const char* d : {"cgroup", "proc", "sys", "docker"})
      fs::create_directories(dir_ + "/" + d);
    write("mountinfo",
          "25 24 0:23 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:3 - cgroup2 "
          "cgroup2 rw\n");
    write("cgroup/cpu.stat", "usage_usec 1000000\nuser_usec 600000\nsystem_usec 400000\n");
  }
  ~HostileTree() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  const std::string& dir() const { return dir_; }
  // A cgroup (path relative to the cgroup root, no leading '/').
  std::string cgroup(const std::string& rel) {
    std::string d = dir_ + "/cgroup/" + rel;
    fs::create_directories(d);
    return d;
  }
  void write(const std::string& rel, const std::string& text) {
    std::ofstream(dir_ + "/" + rel, std::ios::binary) << text;
  }
  std::string config(const std::string& extra = "") const {
    return "root = \"" + dir_ + "/cgroup\"\nmountinfo = \"" + dir_ + "/mountinfo\"\nprocfs = \"" +
           dir_ + "/proc\"\nsysfs = \"" + dir_ + "/sys\"\ndocker_root = \"" + dir_ +
           "/docker\"\ncontainers_storage = \"" + dir_ + "/docker\"\ncontainerd_state = \"" + dir_ +
           "/docker\"\n" + extra;
  }

 private:
  std::string dir_;
};

std::unique_ptr<PluginHarness> load(const std::string& toml) {
  auto h = PluginHarness::load(plugin_path("cgroup"), toml);
  if (!h.ok()) {
    ADD_FAILURE() << h.error().message;
    return nullptr;
  }
  auto s = (*h)->start();
  if (!s.ok()) {
    ADD_FAILURE() << s.error().message;
    return nullptr;
  }
  return std::move(*h);
}

const moni::testing::OwnedSample* find(const moni::testing::OwnedBatch& b, const std::string& name,
                                       const std::string& id) {
  for (const auto& s : b.samples)
    if (s.name() == name && s.label("id") == id) return &s;
  return nullptr;
}

double errors(PluginHarness& p, const std::string& reason) {
  auto self = p.self_metrics();
  const auto* s = self.one("moni_cgroup_errors_total", "reason", reason);
  return s ? s->value : -1;
}

}  // namespace

// Every single-value and key-value file with text no kernel writes: the
// value is skipped (not read as 0, not wrapped, not "unlimited"), the good
// values of the same cgroup still come out, and each bad file is counted.
TEST(CgroupHostile, MalformedValuesAreSkippedAndCounted) {
  HostileTree t;
  std::string g = t.cgroup("garbage");
  t.write("cgroup/garbage/cpu.stat", "usage_usec 12abc\nuser_usec 5000000\nsystem_usec x\n");
  t.write("cgroup/garbage/memory.current", "lots\n");
  t.write("cgroup/garbage/memory.max", "unlimited\n");    // not "max"
  t.write("cgroup/garbage/memory.high", "-1\n");          // negative
  t.write("cgroup/garbage/cpu.max", "bogus 100000\n");    // quota not "max"
  t.write("cgroup/garbage/cpu.weight", "99999999999\n");  // past 10000: overflowed the formula
  t.write("cgroup/garbage/pids.max", "max max\n");
  t.write("cgroup/garbage/pids.current", "7 8\n");  // two numbers
  t.write("cgroup/garbage/io.stat", "8:0 rbytes=1x wbytes=20\n4294967296:0 rbytes=1\n");
  t.write("cgroup/garbage/cpu.pressure", "some avg10=0.00 total=oops\n");
  t.cgroup("overflow");
  t.write("cgroup/overflow/cpu.stat", "usage_usec 18446744073709551616\nuser_usec 1\n");
  t.write("cgroup/overflow/memory.current", "99999999999999999999999\n");
  t.write("cgroup/overflow/memory.stat", "anon 18446744073709551616\nfile 4096\n");
  t.write("cgroup/overflow/memory.swap.current", "-4096\n");
  t.write("cgroup/overflow/pids.current", "18446744073709551615\n");  // UINT64_MAX is a value
  t.cgroup("empty");
  t.write("cgroup/empty/cpu.stat", "");
  t.write("cgroup/empty/memory.current", "");
  t.write("cgroup/empty/memory.max", "");
  t.write("cgroup/empty/memory.stat", "\n\n");
  t.cgroup("max");
  t.write("cgroup/max/cpu.stat", "usage_usec 1\n");
  t.write("cgroup/max/memory.max", "max\n");
  t.write("cgroup/max/cpu.max", "max 100000\n");
  t.write("cgroup/max/pids.max", "max\n");
  t.write("cgroup/max/memory.current", "0\n");
  // Keys of io.cost and io.latency that are not integers are no error.
  t.write("cgroup/max/io.stat",
          "8:16 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0 cost.vrate=100.00 "
          "cost.usage=12 depth=max avg_lat=0 win=0\n");

  auto p = load(t.config());
  ASSERT_TRUE(p);
  auto b = p->collect(kNow);
  ASSERT_TRUE(b.ok()) << b.error().message;

  // garbage: only the good numbers.
  EXPECT_EQ(find(*b, "container_cpu_usage_seconds_total", "/garbage"), nullptr);
  ASSERT_NE(find(*b, "container_cpu_user_seconds_total", "/garbage"), nullptr);
  EXPECT_EQ(find(*b, "container_cpu_user_seconds_total", "/garbage")->value, 5);
  EXPECT_EQ(find(*b, "container_cpu_system_seconds_total", "/garbage"), nullptr);
  for (const char* absent :
       {"container_memory_usage_bytes", "container_spec_memory_limit_bytes",
        "container_spec_memory_reservation_limit_bytes", "container_spec_cpu_quota",
        "container_spec_cpu_shares", "container_threads_max", "container_threads",
        "container_pressure_cpu_waiting_seconds_total"})
    EXPECT_EQ(find(*b, absent, "/garbage"), nullptr) << absent;
  EXPECT_EQ(find(*b, "container_spec_cpu_period", "/garbage")->value, 100000);
  // io.stat: the device's good wbytes, nothing of the line with a major past
  // 32 bits (was truncated to device 0:0).
  const auto* w = find(*b, "container_fs_writes_bytes_total", "/garbage");
  ASSERT_NE(w, nullptr);
  EXPECT_EQ(w->label("device"), "8:0");
  EXPECT_EQ(w->value, 20);
  EXPECT_EQ(b->find("container_fs_writes_bytes_total", "device", "0:0").size(), 0u);

  // overflow: numbers past UINT64_MAX were wrapped; now skipped.
  EXPECT_EQ(find(*b, "container_cpu_usage_seconds_total", "/overflow"), nullptr);
  EXPECT_EQ(find(*b, "container_memory_usage_bytes", "/overflow"), nullptr);
  EXPECT_EQ(find(*b, "container_memory_rss", "/overflow"), nullptr);
  EXPECT_EQ(find(*b, "container_memory_cache", "/overflow")->value, 4096);
  EXPECT_EQ(find(*b, "container_memory_swap", "/overflow"), nullptr);  // was 0
  EXPECT_EQ(find(*b, "container_threads", "/overflow")->value, 18446744073709551615.0);

  // empty files: no values, the cgroup still seen.
  EXPECT_NE(find(*b, "container_last_seen", "/empty"), nullptr);
  EXPECT_EQ(find(*b, "container_memory_usage_bytes", "/empty"), nullptr);
  EXPECT_EQ(find(*b, "container_spec_memory_limit_bytes", "/empty"), nullptr);

  // "max" is unlimited: 0, as cAdvisor.
  EXPECT_EQ(find(*b, "container_spec_memory_limit_bytes", "/max")->value, 0);
  EXPECT_EQ(find(*b, "container_threads_max", "/max")->value, 0);
  EXPECT_EQ(find(*b, "container_spec_cpu_quota", "/max"), nullptr);
  EXPECT_EQ(find(*b, "container_memory_usage_bytes", "/max")->value, 0);
  ASSERT_NE(find(*b, "container_fs_reads_bytes_total", "/max"), nullptr);
  EXPECT_EQ(find(*b, "container_fs_reads_bytes_total", "/max")->value, 4096);

  // garbage: cpu.stat (2 keys), memory.current, memory.max, memory.high,
  // cpu.max, cpu.weight, pids.max, pids.current, io.stat, cpu.pressure (11);
  // overflow: cpu.stat, memory.current, memory.stat, memory.swap.current;
  // empty: memory.current, memory.max, memory.stat.
  EXPECT_EQ(errors(*p, "malformed_file"), 17);
  EXPECT_EQ(errors(*p, "unreadable_file"), 0);
  auto logs = p->logs();
  ASSERT_EQ(logs.size(), 2u) << ::testing::PrintToString(logs);
  EXPECT_NE(logs[1].find("17 malformed"), std::string::npos) << logs[1];
  EXPECT_NE(logs[1].find("cannot parse"), std::string::npos) << logs[1];
  // Counted again at the next collection (limits are read only at first
  // sight), logged again only after 10 minutes.
  ASSERT_TRUE(p->collect(kNow + 15000).ok());
  EXPECT_GT(errors(*p, "malformed_file"), 17);
  EXPECT_EQ(p->logs().size(), 2u);
  ASSERT_TRUE(p->collect(kNow + 615000).ok());
  EXPECT_EQ(p->logs().size(), 3u);
}

// A FIFO (open blocked forever), /dev/zero (the buffer grew without end), a
// directory in place of files, symlinks to the cgroup itself and its
// parent: the collection finishes at once, none of them is a cgroup.
TEST(CgroupHostile, OddFilesAndSymlinkLoopsNeitherHangNorGrow) {
  HostileTree t;
  std::string d = t.cgroup("odd");
  t.write("cgroup/odd/cpu.stat", "usage_usec 1000\n");
  ASSERT_EQ(::mkfifo((d + "/memory.current").c_str(), 0644), 0);
  ASSERT_EQ(::mkfifo((d + "/memory.max").c_str(), 0644), 0);
  fs::create_symlink("/dev/zero", d + "/memory.stat");
  fs::create_directories(d + "/pids.current");  // a directory: a cgroup without files
  fs::create_directory_symlink(".", d + "/self");
  fs::create_directory_symlink("..", d + "/up");
  fs::create_directory_symlink(d, t.dir() + "/cgroup/loop");
  auto p = load(t.config());
  ASSERT_TRUE(p);
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) {
    auto b = p->collect(kNow + i * 15000);
    ASSERT_TRUE(b.ok()) << b.error().message;
    EXPECT_NE(find(*b, "container_cpu_usage_seconds_total", "/odd"), nullptr);
    EXPECT_EQ(find(*b, "container_memory_usage_bytes", "/odd"), nullptr);
    EXPECT_EQ(find(*b, "container_spec_memory_limit_bytes", "/odd"), nullptr);
    EXPECT_EQ(find(*b, "container_memory_rss", "/odd"), nullptr);
    std::set<std::string> ids;
    for (const auto& s : b->samples) ids.insert(s.label("id"));
    EXPECT_EQ(ids, (std::set<std::string>{"/", "/odd"}));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
  // FIFO reads fail (ESPIPE), /dev/zero is past 64 MiB (EFBIG), the
  // directory is EISDIR: all counted as unreadable, every collection.
  EXPECT_GE(errors(*p, "unreadable_file"), 3);
}

// Names a shell or a label parser would choke on: kept exactly as the id
// label and escaped by the exposition; a path that is not UTF-8 (Prometheus
// fails the whole scrape on one such label value) is not reported, counted.
TEST(CgroupHostile, HostileNamesRoundTripThroughTheExposition) {
  HostileTree t;
  const std::vector<std::string> names = {"with space",     "quo\"te",   "back\\slash",
                                          "new\nline",      "tab\there", "{a=\"b\"},}",
                                          "üñí©ødé ☃ 日本", "#comment",  "trailing\\"};
  for (const auto& n : names) {
    t.cgroup(n);
    t.write("cgroup/" + n + "/cpu.stat", "usage_usec 2000000\n");
  }
  t.cgroup("bad\xff\xfeutf8/child");
  t.write("cgroup/bad\xff\xfeutf8/cpu.stat", "usage_usec 1\n");
  auto p = load(t.config());
  ASSERT_TRUE(p);
  auto b = p->collect(kNow);
  ASSERT_TRUE(b.ok()) << b.error().message;
  for (const auto& n : names) {
    const auto* s = find(*b, "container_cpu_usage_seconds_total", "/" + n);
    ASSERT_NE(s, nullptr) << n;
    EXPECT_EQ(s->value, 2);
  }
  for (const auto& s : b->samples)
    EXPECT_EQ(s.label("id").find("bad"), std::string::npos) << s.label("id");
  EXPECT_EQ(errors(*p, "invalid_utf8_path"), 2);  // it and its child
  auto logs = p->logs();
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_NE(logs[1].find("/bad\\xff\\xfeutf8"), std::string::npos) << logs[1];

  // Through the exposition renderer and back through the strict parser (it
  // checks escapes and UTF-8 as Prometheus does): every id intact.
  moni::Batch out;
  for (const auto& m : b->metadata) out.describe(m.family, m.type, m.help);
  for (const auto& s : b->samples) {
    std::vector<moni::LabelRef> ls;
    for (const auto& l : s.labels)
      if (l.name != "__name__") ls.push_back({l.name, l.value});
    out.add(s.name(), std::span<const moni::LabelRef>(ls), s.value);
  }
  std::string text;
  moni::text::Renderer r;
  r.render(out.view(), text);
  moni::Batch back;
  auto parsed = moni::text::parse(text, back);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  std::set<std::string> ids;
  for (auto s : moni::BatchView(back.view())) ids.insert(std::string(s.label("id")));
  for (const auto& n : names) EXPECT_EQ(ids.count("/" + n), 1u) << n;
}

// Hundreds of levels: the walk stops at 64 (no stack or path blow-up), the
// cut is counted once and named; everything above it is reported.
TEST(CgroupHostile, DeepNestingIsCutAtDepth64AndCounted) {
  HostileTree t;
  std::string rel = "deep";
  for (int i = 0; i < 300; ++i) {
    t.cgroup(rel);
    t.write("cgroup/" + rel + "/cpu.stat", "usage_usec 1\n");
    rel += "/d";
  }
  auto p = load(t.config());
  ASSERT_TRUE(p);
  for (int i = 0; i < 3; ++i) {
    auto b = p->collect(kNow + i * 15000);
    ASSERT_TRUE(b.ok()) << b.error().message;
    size_t deepest = 0;
    for (const auto& s : b->find("container_last_seen")) {
      const std::string id = s.label("id");
      deepest = std::max<size_t>(deepest, size_t(std::count(id.begin(), id.end(), '/')));
    }
    EXPECT_EQ(deepest, 64u);  // "/deep" is depth 1, 64 the last one walked
  }
  EXPECT_EQ(errors(*p, "too_deep"), 1);
  auto logs = p->logs();
  ASSERT_EQ(logs.size(), 2u);
  EXPECT_NE(logs[1].find("is 64 levels deep"), std::string::npos) << logs[1];
}

// A file the collector may not read (as a non-root user): skipped, counted,
// the rest of the cgroup reported. Run in a child that drops to nobody.
TEST(CgroupHostile, UnreadableFileIsSkippedAndCounted) {
  HostileTree t;
  t.cgroup("locked");
  t.write("cgroup/locked/cpu.stat", "usage_usec 3000000\n");
  t.write("cgroup/locked/memory.current", "4096\n");
  ::chmod((t.dir() + "/cgroup/locked/memory.current").c_str(), 0);
  for (const auto& e : fs::recursive_directory_iterator(t.dir()))
    if (e.is_directory()) ::chmod(e.path().c_str(), 0755);
  ::chmod((t.dir() + "/cgroup").c_str(), 0755);
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to another user";
  pid_t pid = ::fork();
  if (pid == 0) {
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) ::_exit(10);
    auto h = PluginHarness::load(plugin_path("cgroup"), t.config());
    if (!h.ok() || !(*h)->start().ok()) ::_exit(11);
    auto b = (*h)->collect(kNow);
    if (!b.ok()) ::_exit(12);
    const auto* cpu = find(*b, "container_cpu_usage_seconds_total", "/locked");
    if (!cpu || cpu->value != 3) ::_exit(13);
    if (find(*b, "container_memory_usage_bytes", "/locked")) ::_exit(14);
    if (errors(**h, "unreadable_file") != 1) ::_exit(15);
    auto logs = (*h)->logs();
    if (logs.size() != 2 || logs[1].find("memory.current: Permission denied") == std::string::npos)
      ::_exit(16);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "failed check " << WEXITSTATUS(status);
}

// Thousands of cgroups appear and go: state, open files and watches follow
// the tree down again (nothing kept for cgroups that are gone).
TEST(CgroupHostile, ThousandsOfCgroupsComeAndGoWithBoundedState) {
  HostileTree t;
  for (int i = 0; i < 3000; ++i) {
    std::string n = "many/c" + std::to_string(i);
    t.cgroup(n);
    t.write("cgroup/" + n + "/memory.current", "4096\n");
  }
  auto t1 = std::chrono::steady_clock::now();
  auto p = load(t.config("max_open_files = 1000\nmax_watches = 2000\n"));
  ASSERT_TRUE(p);
  auto b = p->collect(kNow);
  ASSERT_TRUE(b.ok());
  auto t2 = std::chrono::steady_clock::now();
  EXPECT_EQ(b->find("container_memory_usage_bytes").size(), 3000u);
  std::printf("3000 cgroups collected in %.0f ms (ASan build)\n",
              std::chrono::duration<double, std::milli>(t2 - t1).count());
  auto self = p->self_metrics();
  EXPECT_EQ(self.one("moni_cgroup_tracked_cgroups")->value, 3002);
  EXPECT_LE(self.one("moni_cgroup_open_files")->value, 1000);
  EXPECT_LE(self.one("moni_cgroup_watches")->value, 2000);
  fs::remove_all(t.dir() + "/cgroup/many");
  b = p->collect(kNow + 15000);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->find("container_last_seen").size(), 1u);
  self = p->self_metrics();
  EXPECT_EQ(self.one("moni_cgroup_tracked_cgroups")->value, 1);
  EXPECT_EQ(self.one("moni_cgroup_open_files")->value, 1);  // the root's cpu.stat
  EXPECT_LE(self.one("moni_cgroup_watches")->value, 1);
}

// A `root` that holds none of the hierarchies the mount table names made a
// collector that started and reported nothing, silently; a wrong `procfs`
// lost the network metrics silently.
TEST(CgroupHostile, PathOptionsThatLeadNowhereAreNamed) {
  HostileTree t;
  auto h = PluginHarness::load(
      plugin_path("cgroup"),
      "root = \"" + t.dir() + "/nowhere\"\nmountinfo = \"" + t.dir() + "/mountinfo\"\n");
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto s = (*h)->start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cannot open the cgroup hierarchies " + t.dir() +
                                   "/nowhere: No such file or directory (root = \""),
            std::string::npos)
      << s.error().message;
  auto m = PluginHarness::load(plugin_path("cgroup"), "mountinfo = \"" + t.dir() + "/none\"\n");
  ASSERT_TRUE(m.ok());
  s = (*m)->start();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("/none\": No such file or directory (set `mountinfo`)"),
            std::string::npos)
      << s.error().message;
  std::string cfg = t.config();
  cfg.replace(cfg.find(t.dir() + "/proc"), t.dir().size() + 5, t.dir() + "/noproc");
  auto p = load(cfg);
  ASSERT_TRUE(p);
  auto logs = p->logs();
  ASSERT_EQ(logs.size(), 2u) << ::testing::PrintToString(logs);
  EXPECT_NE(
      (logs[0] + logs[1]).find("cannot open procfs \"" + t.dir() + "/noproc\": no network metrics"),
      std::string::npos)
      << logs[0];
}
