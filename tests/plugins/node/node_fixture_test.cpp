// The node plugin on a fixture procfs/sysfs/rootfs tree (tests/data/node):
// exact output against a golden file, sub-collector switches, config
// errors, failure isolation, counter monotonicity and a hung mount.
#include <gtest/gtest.h>

#include "node_test_util.hpp"
#include "plugin_harness.hpp"
#include "render.hpp"

#include <chrono>
#include <cstdlib>
#include <fcntl.h>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/mount.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>

namespace fs = std::filesystem;
using moni::testing::OwnedBatch;
using moni::testing::PluginHarness;
using moni::testing::plugin_path;

namespace {

const std::string kData = std::string(MONI_TEST_DATA_DIR) + "/node";
// The collectors added after expected.txt was written; they have their own
// fixtures and goldens (node_collectors2_test.cpp), so the original golden
// output is left as it was.
const std::string kWithoutNewer =
    "disable = ['arp', 'conntrack', 'netclass', 'selinux', 'softnet', 'textfile', 'timex', "
    "'udp_queues']\n";
constexpr int64_t kNow = 1700000000000;
using moni::node_test::load;
using moni::node_test::slurp;
using moni::node_test::value;
OwnedBatch collect(PluginHarness& p, int64_t now = kNow) {
  return moni::node_test::collect(p, now);
}


std::string roots(const std::string& base = kData) {
  return "procfs = '" + base + "/proc'\nsysfs = '" + base + "/sys'\nrootfs = '" + base +
         "/rootfs'\nudev_data = '" + base + "/udev'\n";
}

}  // namespace

class NodeFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("TZ", "UTC", 1);
    ::tzset();
  }
};

// The whole output on the fixture tree. Host-dependent values (statfs of the
// fixture's own filesystem, the clock, durations, uname) are masked; set
// MONI_UPDATE_GOLDEN=1 to rewrite tests/data/node/expected.txt deliberately.
TEST_F(NodeFixture, MatchesGoldenOutput) {
  auto p = load(roots() + kWithoutNewer);
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  for (const auto& s : b.samples) EXPECT_EQ(s.timestamp_ms, kNow) << s.name();
  std::string got = moni::node_test::render(
      b,
      {"node_filesystem_size_bytes", "node_filesystem_free_bytes", "node_filesystem_avail_bytes",
       "node_filesystem_files", "node_filesystem_files_free", "node_time_seconds",
       "node_scrape_collector_duration_seconds"},
      {"node_uname_info"});
  const std::string golden = kData + "/expected.txt";
  if (std::getenv("MONI_UPDATE_GOLDEN")) {
    std::ofstream(golden) << got;
    GTEST_SKIP() << "rewrote " << golden;
  }
  EXPECT_EQ(got, slurp(golden));
}

TEST_F(NodeFixture, FailingCollectorReportsZeroAndTheRestWork) {
  auto p = load(roots() + kWithoutNewer);
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  // proc/pressure/memory is missing from the fixture.
  EXPECT_EQ(value(b, "node_scrape_collector_success", "collector", "pressure"), 0);
  for (auto c : {"cpu", "cpufreq", "diskstats", "entropy", "filefd", "filesystem", "loadavg",
                 "meminfo", "netdev", "netstat", "os", "sockstat", "stat", "time", "uname",
                 "vmstat"})
    EXPECT_EQ(value(b, "node_scrape_collector_success", "collector", c), 1) << c;
  EXPECT_EQ(value(b, "node_memory_MemTotal_bytes"), 3742148.0 * 1024);
  EXPECT_EQ(b.find("node_scrape_collector_duration_seconds").size(), 17u);
}

TEST_F(NodeFixture, OddMountsAndDevices) {
  auto p = load(roots());
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  // "\040" in /proc/mounts is a space; the directory exists.
  EXPECT_EQ(value(b, "node_filesystem_device_error", "mountpoint", "/srv/with space"), 0);
  EXPECT_EQ(value(b, "node_filesystem_readonly", "mountpoint", "/srv/with space"), 0);
  // Read-only mount.
  EXPECT_EQ(value(b, "node_filesystem_readonly", "mountpoint", "/ro"), 1);
  // Unreadable (missing) mount points: only device_error, set to 1.
  EXPECT_EQ(value(b, "node_filesystem_device_error", "mountpoint", "/gone"), 1);
  EXPECT_EQ(b.find("node_filesystem_size_bytes", "mountpoint", "/gone").size(), 0u);
  EXPECT_EQ(value(b, "node_filesystem_device_error", "mountpoint", "/srv/tab\tgone"), 1);
  // "/" is listed twice but reported once; excluded mounts are absent.
  EXPECT_EQ(b.find("node_filesystem_device_error", "mountpoint", "/").size(), 1u);
  EXPECT_EQ(b.find("node_filesystem_device_error", "mountpoint", "/proc").size(), 0u);
  EXPECT_EQ(b.find("node_filesystem_device_error", "fstype", "overlay").size(), 0u);
  // Disk names with '!' and an old 11-field kernel line.
  EXPECT_EQ(value(b, "node_disk_written_bytes_total", "device", "cciss!c0d0"), 1600.0 * 512);
  EXPECT_EQ(b.find("node_disk_discards_completed_total", "device", "sda").size(), 0u);
  EXPECT_EQ(b.find("node_disk_reads_completed_total", "device", "sda1").size(), 0u);
  EXPECT_EQ(value(b, "node_disk_flush_requests_total", "device", "dm-0"), 1700);
  // Interface names with '-', '_' and '.'; lo excluded by default.
  EXPECT_EQ(value(b, "node_network_receive_bytes_total", "device", "docker_0-x.1"), 0);
  EXPECT_EQ(value(b, "node_network_receive_bytes_total", "device", "eth0"), 12345678901.0);
  EXPECT_EQ(b.find("node_network_receive_bytes_total", "device", "lo").size(), 0u);
  EXPECT_EQ(value(b, "node_network_receive_nohandler_total", "device", "eth0"), 42);
}

TEST_F(NodeFixture, FilesystemSizesAreTheMountsStatfs) {
  auto p = load(roots());
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  struct statfs st;
  ASSERT_EQ(::statfs((kData + "/rootfs/srv/with space").c_str(), &st), 0);
  EXPECT_EQ(value(b, "node_filesystem_size_bytes", "mountpoint", "/srv/with space"),
            static_cast<double>(st.f_blocks) * static_cast<double>(st.f_bsize));
  EXPECT_EQ(value(b, "node_filesystem_files", "mountpoint", "/srv/with space"),
            static_cast<double>(st.f_files));
}

TEST_F(NodeFixture, EnableAndDisableSelectSubCollectors) {
  auto p = load(roots() + "enable = ['loadavg', 'meminfo', 'stat']\ndisable = ['meminfo']\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(value(b, "node_load1"), 0.21);
  EXPECT_EQ(value(b, "node_forks_total"), 26442);
  EXPECT_EQ(b.find("node_memory_MemTotal_bytes").size(), 0u);
  EXPECT_EQ(b.find("node_cpu_seconds_total").size(), 0u);
  EXPECT_EQ(b.find("node_scrape_collector_success").size(), 2u);
}

// Patterns are searched anywhere in the name, as node_exporter's flags are,
// so a pattern copied from a node_exporter command line keeps its meaning.
TEST_F(NodeFixture, PatternsAreUnanchoredSearchesLikeNodeExporter) {
  auto p = load(roots() +
                "enable = ['netdev', 'vmstat']\nnetdev.device_include = 'eth'\n"
                "vmstat.fields = 'pgp'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(b.find("node_network_receive_bytes_total").size(), 1u);  // "eth" finds "eth0"
  EXPECT_EQ(b.find("node_network_receive_bytes_total", "device", "eth0").size(), 1u);
  EXPECT_EQ(b.find("node_vmstat_pgpgin").size(), 1u);
  auto p2 = load(roots() + "enable = ['netdev']\nnetdev.device_include = '^eth$'\n");
  ASSERT_TRUE(p2);
  OwnedBatch b2 = collect(*p2);
  EXPECT_EQ(b2.find("node_network_receive_bytes_total").size(), 0u);  // anchored: "eth" != "eth0"
  auto p3 = load(roots() + "enable = ['netdev']\nnetdev.device_include = 'eth.*|lo'\n");
  ASSERT_TRUE(p3);
  EXPECT_EQ(collect(*p3).find("node_network_receive_bytes_total").size(), 2u);  // eth0 and lo
}

TEST_F(NodeFixture, RejectsUnknownCollectorsAndBadOptions) {
  auto h = PluginHarness::load(plugin_path("node"),
                               "enable = ['cpu', 'bogus']\n"
                               "diskstats.device_exclude = '('\n"
                               "netdev.device_include = 'a'\nnetdev.device_exclude = 'b'\n"
                               "filesystem.mount_timeout = '0s'\ncolour = 1\n");
  ASSERT_FALSE(h.ok());
  const std::string& m = h.error().message;
  EXPECT_NE(m.find("enable: unknown collector \"bogus\""), std::string::npos) << m;
  EXPECT_NE(m.find("diskstats.device_exclude: invalid regular expression"), std::string::npos) << m;
  EXPECT_NE(m.find("device_include and device_exclude are mutually exclusive"), std::string::npos)
      << m;
  EXPECT_NE(m.find("mount_timeout must be > 0"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown option 'colour'"), std::string::npos) << m;
}

// Counters that the kernel reports slightly lower than before keep their
// previous value; a large drop of idle (CPU hotplug) resets the CPU.
TEST_F(NodeFixture, CpuCountersDoNotGoBackwards) {
  fs::path tmp = fs::temp_directory_path() / ("moni-node-cpu-" + std::to_string(::getpid()));
  fs::create_directories(tmp / "proc");
  auto write_stat = [&](const char* cpu0) {
    std::ofstream(tmp / "proc" / "stat")
        << "cpu  1 1 1 1 1 1 1 1 0 0\n" << cpu0 << "\nintr 1\nctxt 1\nbtime 1\nprocesses 1\n"
        << "procs_running 1\nprocs_blocked 0\n";
  };
  auto p = load("procfs = '" + tmp.string() + "/proc'\nenable = ['cpu']\n");
  ASSERT_TRUE(p);
  write_stat("cpu0 1000 0 500 100000 0 0 0 0 0 0");
  OwnedBatch b1 = collect(*p);
  EXPECT_EQ(value(b1, "node_cpu_seconds_total", "mode", "user"), 10);
  write_stat("cpu0 990 0 600 99900 0 0 0 0 0 0");  // user and idle jitter back
  OwnedBatch b2 = collect(*p);
  EXPECT_EQ(value(b2, "node_cpu_seconds_total", "mode", "user"), 10);
  EXPECT_EQ(value(b2, "node_cpu_seconds_total", "mode", "system"), 6);
  EXPECT_EQ(value(b2, "node_cpu_seconds_total", "mode", "idle"), 1000);
  write_stat("cpu0 5 0 5 50 0 0 0 0 0 0");  // hotplug: idle fell by ~1000 s
  OwnedBatch b3 = collect(*p);
  EXPECT_EQ(value(b3, "node_cpu_seconds_total", "mode", "idle"), 0.5);
  fs::remove_all(tmp);
}

// A FUSE mount whose daemon never answers hangs statfs(2) forever. Run in a
// child with a private mount namespace so nothing else on the machine sees
// it; it vanishes when the child exits.
TEST_F(NodeFixture, HungMountTimesOutAndOthersAreStillReported) {
  if (::geteuid() != 0 || ::access("/dev/fuse", R_OK | W_OK) != 0)
    GTEST_SKIP() << "needs root and /dev/fuse";
  fs::path tmp = fs::temp_directory_path() / ("moni-node-hang-" + std::to_string(::getpid()));
  fs::create_directories(tmp / "proc" / "1");
  fs::create_directories(tmp / "root" / "hung");
  fs::create_directories(tmp / "root" / "ok");
  std::ofstream(tmp / "proc" / "1" / "mounts")
      << "moni-hang /hung fuse rw 0 0\n/dev/x /ok ext4 rw 0 0\n";
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto fail = [](const char* what) {
      std::fprintf(stderr, "child: %s\n", what);
      ::_exit(2);
    };
    if (::unshare(CLONE_NEWNS) != 0) ::_exit(77);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) ::_exit(77);
    int fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC);
    if (fd < 0) ::_exit(77);
    std::string opts = "fd=" + std::to_string(fd) + ",rootmode=40000,user_id=0,group_id=0";
    if (::mount("moni-hang", (tmp / "root" / "hung").c_str(), "fuse", MS_NOSUID | MS_NODEV,
                opts.c_str()) != 0)
      ::_exit(77);
    auto h = PluginHarness::load(plugin_path("node"),
                                 "procfs = '" + (tmp / "proc").string() + "'\nrootfs = '" +
                                     (tmp / "root").string() +
                                     "'\nenable = ['filesystem']\n"
                                     "filesystem.mount_timeout = '300ms'\n");
    if (!h.ok() || !(*h)->start().ok()) fail("load");
    for (int round = 0; round < 2; ++round) {
      auto t0 = std::chrono::steady_clock::now();
      auto b = (*h)->collect(kNow);
      double secs =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (!b.ok()) fail("collect");
      // First round waits for the deadline; later rounds skip the stuck mount.
      if (secs > (round == 0 ? 2.0 : 0.2)) fail("collect took too long");
      const auto* e = b->one("node_filesystem_device_error", "mountpoint", "/hung");
      if (!e || e->value != 1) fail("hung mount not reported as device_error 1");
      const auto* ok = b->one("node_filesystem_device_error", "mountpoint", "/ok");
      if (!ok || ok->value != 0) fail("healthy mount not reported");
      if (!b->one("node_filesystem_size_bytes", "mountpoint", "/ok")) fail("no size of /ok");
      const auto* s = b->one("node_scrape_collector_success", "collector", "filesystem");
      if (!s || s->value != 1) fail("filesystem collector failed");
    }
    ::close(fd);  // aborts the FUSE connection: the blocked statfs returns
    ::_exit(0);
  }
  int status = 0;
  for (int i = 0; i < 300 && ::waitpid(pid, &status, WNOHANG) == 0; ++i) ::usleep(50000);
  if (::waitpid(pid, &status, WNOHANG) == 0) {
    ::kill(pid, SIGKILL);
    ::waitpid(pid, &status, 0);
    FAIL() << "child hung";
  }
  fs::remove_all(tmp);
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "cannot mount FUSE here";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Patterns are RE2 syntax matched with std::regex: the RE2-only forms people
// copy from node_exporter flags work, and what cannot be translated is
// refused at load with the option's name.
TEST_F(NodeFixture, Re2SyntaxPatternsWithoutRe2) {
  for (const char* re : {"(?i)ETH", "(?P<dev>eth)\\d\\z", "\\Aeth\\x{30}", "\\Qeth0\\E",
                         "^[[:alpha:]]+[[:digit:]]$", "[]x]|eth"}) {
    auto p = load(roots() + "enable = ['netdev']\nnetdev.device_include = '" + re + "'\n");
    ASSERT_TRUE(p) << re;
    OwnedBatch b = collect(*p);
    EXPECT_EQ(b.find("node_network_receive_bytes_total", "device", "eth0").size(), 1u) << re;
    EXPECT_EQ(b.find("node_network_receive_bytes_total", "device", "lo").size(), 0u) << re;
  }
  for (const char* re : {"\\pL", "(a)\\1", "(?=eth)", "(?s).", "[abc"}) {
    auto h = PluginHarness::load(plugin_path("node"),
                                 roots() + "netdev.device_include = '" + re + "'\n");
    ASSERT_FALSE(h.ok()) << re;
    EXPECT_NE(h.error().message.find("netdev.device_include: invalid regular expression"),
              std::string::npos)
        << h.error().message;
  }
}

// Files that rarely change are cached (os-release by stat, udev's database
// by its directory's mtime, since udev replaces files by rename) and must
// still be re-read when they do change.
TEST_F(NodeFixture, CachedFilesAreReadAgainWhenTheyChange) {
  fs::path tmp = fs::temp_directory_path() / ("moni-node-cache-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::copy(kData, tmp, fs::copy_options::recursive);
  auto p = load(roots(tmp.string()) + "enable = ['os', 'diskstats']\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(b.find("node_os_info", "version_id", "12").size(), 1u);
  EXPECT_EQ(b.find("node_disk_info", "model", "Samsung_SSD_860").size(), 1u);
  b = collect(*p);  // unchanged: same output from the cache
  EXPECT_EQ(b.find("node_os_info", "version_id", "12").size(), 1u);
  EXPECT_EQ(b.find("node_disk_info", "model", "Samsung_SSD_860").size(), 1u);

  std::ofstream(tmp / "rootfs" / "etc" / "os-release.new") << "ID=debian\nVERSION_ID=\"13\"\n";
  fs::rename(tmp / "rootfs" / "etc" / "os-release.new", tmp / "rootfs" / "etc" / "os-release");
  std::ofstream(tmp / "udev" / "b8:0.tmp") << "E:ID_MODEL=Other_Disk\n";
  ::usleep(20000);  // a later directory mtime than the first collection saw
  fs::rename(tmp / "udev" / "b8:0.tmp", tmp / "udev" / "b8:0");
  b = collect(*p);
  EXPECT_EQ(b.find("node_os_info", "version_id", "13").size(), 1u);
  EXPECT_EQ(b.find("node_os_version", "id", "debian").size(), 1u);
  EXPECT_EQ(value(b, "node_os_version", "id", "debian"), 13);
  EXPECT_EQ(b.find("node_disk_info", "model", "Other_Disk").size(), 1u);
  EXPECT_EQ(b.find("node_disk_info", "model", "Samsung_SSD_860").size(), 0u);
  fs::remove_all(tmp);
}

// netstat, vmstat and meminfo remember what they derived from each key by
// position (filter verdict, metric name, HELP) and netstat whole header
// lines: after the kernel's key lists change (an IcmpMsg section appears, a
// header loses a column, keys are inserted and removed, a values line is
// cut short), a warm instance reports exactly what a fresh one does.
TEST_F(NodeFixture, WarmInstanceFollowsChangedKeysLikeAFreshOne) {
  fs::path tmp = fs::temp_directory_path() / ("moni-node-keys-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::copy(kData, tmp, fs::copy_options::recursive);
  const std::string cfg = roots(tmp.string()) + "enable = ['netstat', 'vmstat', 'meminfo']\n";
  auto warm = load(cfg);
  ASSERT_TRUE(warm);
  collect(*warm);
  OwnedBatch before = collect(*warm);
  EXPECT_EQ(value(before, "node_netstat_Tcp_ActiveOpens"), 100);
  EXPECT_EQ(value(before, "node_vmstat_pswpin"), 4823);

  const fs::path proc = tmp / "proc";
  std::ofstream(proc / "net" / "snmp")
      << "Ip: Forwarding DefaultTTL InReceives InHdrErrors\nIp: 1 64 2001 0\n"
         "Icmp: InMsgs InErrors OutMsgs\nIcmp: 11 1 12\n"
         "IcmpMsg: InType3 OutType3\nIcmpMsg: 4 5\n"
         "Tcp: MaxConn ActiveOpens PassiveOpens InErrs CurrEstab InSegs OutSegs RetransSegs "
         "OutRsts\nTcp: -1 101 200 3 4 5000 6000 7 8\n"
         "Udp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\n"
         "Udp: 21 22\n";
  std::ofstream(proc / "net" / "snmp6") << "Ip6InDiscards                   \t9\n"
                                           "Ip6InReceives                   \t2000\n"
                                           "Ip6InOctets                     \t3001\n"
                                           "Icmp6InMsgs                     \t5\n"
                                           "Udp6InDatagrams                 \t7\n"
                                           "Udp6InErrors                    \t17\n";
  std::ofstream(proc / "vmstat") << "nr_zspages 1\nnr_free_pages 56437\npgpgin 2342341\n"
                                    "pgpgout 8023416\npswpout 271829\npgfault_extra 5\n"
                                    "pgfault 51328741\noom_kill 4\n";
  std::ofstream(proc / "meminfo") << "Zswap:                10 kB\nMemTotal:        3742148 kB\n"
                                     "HugePages_Total:       3\nMemFree:          225473 kB\n";
  const std::set<std::string> masked = {"node_scrape_collector_duration_seconds"};
  OwnedBatch got = collect(*warm);
  auto fresh = load(cfg);
  ASSERT_TRUE(fresh);
  OwnedBatch want = collect(*fresh);
  EXPECT_EQ(moni::node_test::render(got, masked, {}), moni::node_test::render(want, masked, {}));
  EXPECT_EQ(value(got, "node_netstat_Tcp_ActiveOpens"), 101);  // one column to the left
  EXPECT_EQ(value(got, "node_netstat_Udp_NoPorts"), 22);
  EXPECT_EQ(got.one("node_netstat_Udp_InErrors"), nullptr);  // values line cut short
  EXPECT_EQ(value(got, "node_netstat_Udp6_InErrors"), 17);
  EXPECT_EQ(got.one("node_netstat_Icmp6_InErrors"), nullptr);
  EXPECT_EQ(value(got, "node_vmstat_pgfault_extra"), 5);
  EXPECT_EQ(got.one("node_vmstat_pswpin"), nullptr);
  EXPECT_EQ(value(got, "node_memory_Zswap_bytes"), 10240);
  EXPECT_EQ(value(got, "node_memory_HugePages_Total"), 3);
  EXPECT_EQ(got.one("node_memory_MemAvailable_bytes"), nullptr);
  // And again, now warm on the new lists.
  EXPECT_EQ(moni::node_test::render(collect(*warm), masked, {}),
            moni::node_test::render(collect(*fresh), masked, {}));
  fs::remove_all(tmp);
}

// os-release is stat()ed only after inotify reports a change to the file or
// its directories: edits in place, a replaced link target and edits of the
// new target are all seen at the next collection.
TEST_F(NodeFixture, OsReleaseChangesAreSeenThroughLinks) {
  fs::path tmp = fs::temp_directory_path() / ("moni-node-os-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "etc");
  fs::create_directories(tmp / "usr" / "lib");
  std::ofstream(tmp / "usr" / "lib" / "os-release") << "ID=debian\nVERSION_ID=\"12\"\n";
  fs::create_symlink("../usr/lib/os-release", tmp / "etc" / "os-release");
  auto p = load("rootfs = '" + tmp.string() + "'\nenable = ['os']\n");
  ASSERT_TRUE(p);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(value(collect(*p), "node_os_version", "id", "debian"), 12);
  // Same size, rewritten in place (a stat() could not tell within the same
  // timestamp tick).
  std::ofstream(tmp / "usr" / "lib" / "os-release") << "ID=debian\nVERSION_ID=\"13\"\n";
  EXPECT_EQ(value(collect(*p), "node_os_version", "id", "debian"), 13);
  EXPECT_EQ(value(collect(*p), "node_os_version", "id", "debian"), 13);
  // The link is pointed elsewhere (replaced by rename, as package managers do).
  std::ofstream(tmp / "usr" / "lib" / "os-release.new") << "ID=other\nVERSION_ID=\"2.5\"\n";
  fs::create_symlink("../usr/lib/os-release.new", tmp / "etc" / "os-release.tmp");
  fs::rename(tmp / "etc" / "os-release.tmp", tmp / "etc" / "os-release");
  EXPECT_EQ(value(collect(*p), "node_os_version", "id", "other"), 2.5);
  collect(*p);
  std::ofstream(tmp / "usr" / "lib" / "os-release.new") << "ID=other\nVERSION_ID=\"3.5\"\n";
  EXPECT_EQ(value(collect(*p), "node_os_version", "id", "other"), 3.5);
  fs::remove_all(tmp);
}
