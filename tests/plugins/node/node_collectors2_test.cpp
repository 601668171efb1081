// The node plugin's textfile, timex, netclass, conntrack, softnet, arp,
// udp_queues and selinux sub-collectors on their own fixtures
// (tests/data/node/{textfile,netclass,conntrack,net2,selinux}),
// each with an exact golden output checked against what node_exporter 1.5
// prints for the same tree, and their odd cases.
#include <gtest/gtest.h>

#include "node_test_util.hpp"
#include "plugin_harness.hpp"
#include "render.hpp"

#include <moni/text_format.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/time.h>
#include <unistd.h>

namespace fs = std::filesystem;
using moni::testing::OwnedBatch;
using moni::testing::PluginHarness;
using moni::testing::plugin_path;

namespace {

const std::string kData = std::string(MONI_TEST_DATA_DIR) + "/node";
constexpr int64_t kNow = 1700000000000;
using moni::node_test::load;
using moni::node_test::slurp;
using moni::node_test::value;
OwnedBatch collect(PluginHarness& p, int64_t now = kNow) {
  return moni::node_test::collect(p, now);
}

constexpr time_t kMtime = 1700000100;

void replace_all(std::string& s, const std::string& from, const std::string& to) {
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size()))
    s.replace(p, from.size(), to);
}

// Compares with tests/data/node/<name>; MONI_UPDATE_GOLDEN=1 rewrites it.
void expect_golden(const std::string& got, const std::string& name) {
  const std::string golden = kData + "/" + name;
  if (std::getenv("MONI_UPDATE_GOLDEN")) {
    std::ofstream(golden) << got;
    return;
  }
  EXPECT_EQ(got, slurp(golden)) << "golden " << golden;
}

std::string only(const std::string& collector) {
  return "enable = ['" + collector + "']\n";
}

// The textfile fixture copied to a temporary directory with fixed mtimes,
// plus what git cannot hold: a dangling symlink (a file that cannot be
// opened, whoever runs the test) and a directory named *.prom.
class TextfileDir {
 public:
  TextfileDir() : dir_(fs::temp_directory_path() / ("moni-textfile-" + std::to_string(::getpid()))) {
    fs::remove_all(dir_);
    fs::copy(kData + "/textfile", dir_);
    fs::create_symlink(dir_ / "no-such-target", dir_ / "g_dangling.prom");
    fs::create_directory(dir_ / "h_dir.prom");
    for (const auto& e : fs::directory_iterator(dir_)) {
      if (e.is_symlink()) continue;
      struct timeval tv[2] = {{kMtime, 0}, {kMtime, 0}};
      ::utimes(e.path().c_str(), tv);
    }
  }
  ~TextfileDir() { fs::remove_all(dir_); }
  std::string path() const { return dir_.string(); }

 private:
  fs::path dir_;
};

}  // namespace

// node_exporter 1.5 on the same directory prints the same families, series,
// types, HELP texts and values (checked when the golden was written): a
// file with bad syntax, a timestamp or that cannot be opened is skipped
// whole and sets node_textfile_scrape_error; the others are exported; a
// duplicate series keeps the first file's value; a family keeps its first
// file's type and HELP; *.txt files are ignored.
TEST(NodeTextfile, MatchesNodeExporterRules) {
  TextfileDir d;
  auto p = load(only("textfile") + "textfile.directory = '" + d.path() + "'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  std::string got = moni::node_test::render(b, {"node_scrape_collector_duration_seconds"}, {});
  replace_all(got, d.path(), "<dir>");
  expect_golden(got, "textfile_expected.txt");
  EXPECT_EQ(value(b, "node_textfile_scrape_error"), 1);
  EXPECT_EQ(value(b, "dup_metric", "x", "1"), 5);
  EXPECT_EQ(b.find("from_bad_file").size(), 0u);
  EXPECT_EQ(b.find("with_timestamp").size(), 0u);
  EXPECT_EQ(b.find("ignored_not_prom").size(), 0u);
  EXPECT_EQ(b.find("node_textfile_mtime_seconds", "file", d.path() + "/c_bad.prom").size(), 0u);
  EXPECT_EQ(value(b, "node_textfile_mtime_seconds", "file", d.path() + "/f_empty.prom"), kMtime);
  EXPECT_EQ(value(b, "node_scrape_collector_success", "collector", "textfile"), 1);
}

TEST(NodeTextfile, GoodFilesOnlyMeanNoErrorAndChangesAreSeen) {
  TextfileDir d;
  for (auto f : {"c_bad.prom", "e_timestamp.prom", "g_dangling.prom"}) fs::remove(d.path() + "/" + f);
  auto p = load(only("textfile") + "textfile.directory = '" + d.path() + "'\n");
  ASSERT_TRUE(p);
  EXPECT_EQ(value(collect(*p), "node_textfile_scrape_error"), 0);
  std::ofstream(d.path() + "/a.prom") << "plain 42\n";
  OwnedBatch b = collect(*p);
  EXPECT_EQ(value(b, "plain"), 42);
  // Now b.prom is the first file with the family: its type and series win.
  EXPECT_EQ(b.find("cron_last_success_seconds").size(), 1u);
  EXPECT_EQ(value(b, "cron_last_success_seconds", "job", "other"), 1);
  std::ofstream(d.path() + "/a.prom") << "plain{ 42\n";
  b = collect(*p);
  EXPECT_EQ(value(b, "node_textfile_scrape_error"), 1);
  EXPECT_EQ(b.find("plain").size(), 0u);
  EXPECT_EQ(value(b, "dup_metric", "x", "1"), 6);  // b.prom's now
}

// Why a file is skipped is logged as a warning naming the file and quoting
// the parser's error (node_exporter logs it every scrape), but only when the
// file's problem first appears or changes: a file that stays broken is not
// logged again; its recovery is logged once at info, and breaking it again
// afterwards logs again. A file name that is not UTF-8 is logged escaped.
TEST(NodeTextfile, SkippedFileIsLoggedOncePerDistinctErrorAndItsRecovery) {
  fs::path dir = fs::temp_directory_path() / ("moni-textfile-log-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string bad = (dir / "b_bad.prom").string();
  const std::string body1 = "broken{ 1\n";
  const std::string body2 = "# TYPE x gauge\nx 1\nx 2 3 4\n";
  std::ofstream(dir / "a_good.prom") << "ok_metric 1\n";
  std::ofstream(bad) << body1;
  std::ofstream(dir / "c_\xe9.prom") << "ts_metric 1 1700000000000\n";  // Latin-1 name
  auto parse_error = [](const std::string& body) {
    moni::text::Parser parser;
    auto r = parser.parse(body);
    EXPECT_FALSE(r.ok()) << body;
    return r.ok() ? std::string() : r.error().message;
  };
  const std::string err1 = parse_error(body1), err2 = parse_error(body2);
  ASSERT_NE(err1, err2);
  EXPECT_NE(err1.find("\"broken{ 1\""), std::string::npos) << err1;  // quotes the line
  auto p = load(only("textfile") + "textfile.directory = '" + dir.string() + "'\n");
  ASSERT_TRUE(p);
  auto logs_at = [&](char level) {
    std::vector<std::string> out;
    for (const auto& l : p->logs())
      if (l.size() > 2 && l[0] == level && l[1] == ' ') out.push_back(l.substr(2));
    return out;
  };
  const std::string warn1 = "node: textfile: " + bad + ": skipped, cannot parse: " + err1;
  const std::string warn_ts = "node: textfile: " + dir.string() +
                              "/c_\\xe9.prom: skipped, has client-side timestamps (not supported)";

  EXPECT_EQ(value(collect(*p), "node_textfile_scrape_error"), 1);
  EXPECT_EQ(logs_at('2'), (std::vector<std::string>{warn1, warn_ts}));
  for (const auto& l : p->logs())
    EXPECT_TRUE(moni::text::detail::valid_utf8(l)) << moni::text::escape_for_log(l);

  // Same broken files: nothing new is logged.
  OwnedBatch b = collect(*p);
  EXPECT_EQ(value(b, "node_textfile_scrape_error"), 1);
  EXPECT_EQ(value(b, "ok_metric"), 1);
  EXPECT_EQ(p->logs().size(), 2u);

  // b_bad.prom's error changes: one new warning, with the new error.
  std::ofstream(bad) << body2;
  EXPECT_EQ(value(collect(*p), "node_textfile_scrape_error"), 1);
  const std::string warn2 = "node: textfile: " + bad + ": skipped, cannot parse: " + err2;
  EXPECT_EQ(logs_at('2'), (std::vector<std::string>{warn1, warn_ts, warn2}));
  collect(*p);
  EXPECT_EQ(p->logs().size(), 3u);

  // Fixed: its recovery at info, once; broken again: logged again.
  std::ofstream(bad) << "x 1\n";
  collect(*p);
  collect(*p);
  EXPECT_EQ(logs_at('1'),
            (std::vector<std::string>{"node: textfile: " + bad + ": read fine again"}));
  EXPECT_EQ(logs_at('2').size(), 3u);
  std::ofstream(bad) << body1;
  collect(*p);
  EXPECT_EQ(logs_at('2'), (std::vector<std::string>{warn1, warn_ts, warn2, warn1}));
  EXPECT_EQ(p->logs().size(), 5u);
  fs::remove_all(dir);
}

// A *.prom file with a label value that is not UTF-8 fails to parse, like
// bad syntax: node_textfile_scrape_error is 1, nothing of that file (not
// even its mtime) is exported, the other files are, and nothing node emits
// or logs carries the raw byte; the parser's error for that file is valid
// UTF-8 and shows the byte as \xff. A file whose *name* is not UTF-8 but
// parses is exported, its mtime sample with the raw name (the host drops
// that one sample, moni_samples_dropped_total{reason="invalid_utf8"}), and
// so is the default HELP "Metric read from <file>" (the host empties it).
TEST(NodeTextfile, LabelValueNotUtf8FailsItsFileAndNothingRawIsEmitted) {
  fs::path dir = fs::temp_directory_path() / ("moni-textfile-utf8-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  const std::string bad_body = "# TYPE mount_info gauge\nmount_info{path=\"/mnt/\xff\"} 1\n";
  std::ofstream(dir / "a_good.prom") << "good_metric{path=\"/mnt/Gr\xc3\xbc\xc3\x9f"
                                        "e\"} 1\n";
  std::ofstream(dir / "b_bad.prom") << bad_body;
  const std::string odd_name = "c_\xe9t\xe9.prom";  // Latin-1 file name
  std::ofstream(dir / odd_name) << "odd_name_metric 7\n";
  auto p = load(only("textfile") + "textfile.directory = '" + dir.string() + "'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(value(b, "node_textfile_scrape_error"), 1);
  EXPECT_EQ(value(b, "node_scrape_collector_success", "collector", "textfile"), 1);
  EXPECT_EQ(value(b, "good_metric", "path",
                  "/mnt/Gr\xc3\xbc\xc3\x9f"
                  "e"),
            1);
  EXPECT_EQ(b.find("mount_info").size(), 0u);
  EXPECT_EQ(b.find("node_textfile_mtime_seconds", "file", (dir / "b_bad.prom").string()).size(),
            0u);
  EXPECT_EQ(b.find("node_textfile_mtime_seconds", "file", (dir / "a_good.prom").string()).size(),
            1u);
  EXPECT_EQ(value(b, "odd_name_metric"), 7);
  const std::string odd_path = (dir / odd_name).string();
  EXPECT_EQ(b.find("node_textfile_mtime_seconds", "file", odd_path).size(), 1u);
  for (const auto& s : b.samples)
    for (const auto& l : s.labels) {
      if (l.value == odd_path) continue;  // the host's check drops this one
      EXPECT_TRUE(moni::text::detail::valid_utf8(l.name) && moni::text::detail::valid_utf8(l.value))
          << moni::text::escape_for_log(l.name) << "=" << moni::text::escape_for_log(l.value);
    }
  for (const auto& m : b.metadata) {
    // The default HELP names the file: the host empties that HELP text.
    if (m.family == "odd_name_metric")
      EXPECT_EQ(m.help, "Metric read from " + odd_path);
    else
      EXPECT_TRUE(moni::text::detail::valid_utf8(m.help)) << moni::text::escape_for_log(m.help);
  }
  for (const auto& l : p->logs())
    EXPECT_TRUE(moni::text::detail::valid_utf8(l)) << moni::text::escape_for_log(l);
  // What the textfile collector's parser says about b_bad.prom.
  moni::text::Parser parser;
  auto r = parser.parse(bad_body);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(moni::text::detail::valid_utf8(r.error().message))
      << moni::text::escape_for_log(r.error().message);
  EXPECT_EQ(
      r.error().message,
      "line 2, column 18: invalid UTF-8 in label value: \"mount_info{path=\\\"/mnt/\\xff\\\"} 1\"");
  fs::remove_all(dir);
}

TEST(NodeTextfile, NoDirectoryAndMissingDirectory) {
  auto p = load(only("textfile"));  // default: no directory, like upstream
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(value(b, "node_textfile_scrape_error"), 0);
  EXPECT_EQ(b.find("node_textfile_mtime_seconds").size(), 0u);
  auto p2 = load(only("textfile") + "textfile.directory = '" + kData + "/no-such-dir'\n");
  ASSERT_TRUE(p2);
  OwnedBatch b2 = collect(*p2);
  EXPECT_EQ(value(b2, "node_textfile_scrape_error"), 1);
  EXPECT_EQ(value(b2, "node_scrape_collector_success", "collector", "textfile"), 1);
}

// A physical NIC, a virtual one without speed and duplex, a down link
// without carrier and speed -1, lo, and bonding_masters (a regular file,
// not an interface); same output as node_exporter --path.sysfs on it.
TEST(NodeNetclass, MatchesNodeExporterOnFixture) {
  auto p = load(only("netclass") + "sysfs = '" + kData + "/netclass/sys'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  expect_golden(moni::node_test::render(b, {"node_scrape_collector_duration_seconds"}, {}),
                "netclass_expected.txt");
  EXPECT_EQ(b.find("node_network_speed_bytes", "device", "veth-a").size(), 0u);
  EXPECT_EQ(value(b, "node_network_speed_bytes", "device", "eth0"), 1.25e9);
  EXPECT_EQ(value(b, "node_network_speed_bytes", "device", "down0"), -125000);
  EXPECT_EQ(b.find("node_network_carrier", "device", "down0").size(), 0u);
  EXPECT_EQ(value(b, "node_network_up", "device", "down0"), 0);
  EXPECT_EQ(value(b, "node_network_flags", "device", "eth0"), 0x1003);
  EXPECT_EQ(b.find("node_network_up", "device", "bonding_masters").size(), 0u);
}

size_t open_fds() {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/self/fd")) ++n;
  return n;
}

// Attribute files are kept open between cycles: values that change are
// seen, removed interfaces disappear and their descriptors are closed, new
// ones appear.
TEST(NodeNetclass, InterfacesComeAndGoWithoutLeakingDescriptors) {
  fs::path tmp = fs::temp_directory_path() / ("moni-netclass-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::copy(kData + "/netclass", tmp, fs::copy_options::recursive);
  fs::path net = tmp / "sys/class/net";
  auto p = load(only("netclass") + "sysfs = '" + (tmp / "sys").string() + "'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(value(b, "node_network_mtu_bytes", "device", "eth0"), 9000);
  size_t fds = open_fds();
  std::ofstream(net / "eth0/mtu") << "1500\n";  // rewritten in place, as sysfs changes
  std::ofstream(net / "eth0/operstate") << "down\n";
  fs::remove_all(net / "veth-a");
  fs::copy(net / "down0", net / "veth-b", fs::copy_options::recursive);
  b = collect(*p);
  EXPECT_EQ(value(b, "node_network_mtu_bytes", "device", "eth0"), 1500);
  EXPECT_EQ(value(b, "node_network_up", "device", "eth0"), 0);
  EXPECT_EQ(b.find("node_network_up", "device", "veth-a").size(), 0u);
  EXPECT_EQ(value(b, "node_network_iface_id", "device", "veth-b"), 3);
  EXPECT_EQ(b.find("node_network_up").size(), 4u);
  for (int i = 0; i < 5; ++i) {
    fs::remove_all(net / "veth-b");
    collect(*p);
    fs::copy(net / "down0", net / "veth-b", fs::copy_options::recursive);
    collect(*p);
  }
  EXPECT_LE(open_fds(), fds + 25);  // veth-b's files once, not once per re-creation
  fs::remove_all(tmp);
}

TEST(NodeNetclass, IgnoredDevicesAndInvalidSpeed) {
  auto p = load(only("netclass") + "sysfs = '" + kData +
                "/netclass/sys'\nnetclass.ignored_devices = '^(lo|veth.*)$'\n"
                "netclass.ignore_invalid_speed = true\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(b.find("node_network_up").size(), 2u);  // eth0, down0
  EXPECT_EQ(b.find("node_network_speed_bytes").size(), 1u);
  auto p2 = load(only("netclass") + "sysfs = '" + kData + "/no-such-sys'\n");
  ASSERT_TRUE(p2);
  EXPECT_EQ(value(collect(*p2), "node_scrape_collector_success", "collector", "netclass"), 0);
}

TEST(NodeConntrack, SumsPerCpuStatsLikeNodeExporter) {
  auto p = load(only("conntrack") + "procfs = '" + kData + "/conntrack/proc'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  expect_golden(moni::node_test::render(b, {"node_scrape_collector_duration_seconds"}, {}),
                "conntrack_expected.txt");
  EXPECT_EQ(value(b, "node_nf_conntrack_stat_found"), 0xa + 0x14);
}

// No netfilter module: node_exporter reports the collector failed and emits
// no conntrack family; so does moni.
TEST(NodeConntrack, MissingFilesFailTheCollector) {
  auto p = load(only("conntrack") + "procfs = '" + kData + "/proc'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(value(b, "node_scrape_collector_success", "collector", "conntrack"), 0);
  EXPECT_EQ(b.find("node_nf_conntrack_entries").size(), 0u);
}

TEST(NodeTimex, AllFamiliesWithSaneValues) {
  auto p = load(only("timex"));
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  size_t families = 0;
  for (const auto& m : b.metadata)
    if (m.family.rfind("node_timex_", 0) == 0) ++families;
  EXPECT_EQ(families, 17u);
  double sync = value(b, "node_timex_sync_status");
  EXPECT_TRUE(sync == 0 || sync == 1);
  EXPECT_GT(value(b, "node_timex_tick_seconds"), 0);
  EXPECT_NEAR(value(b, "node_timex_frequency_adjustment_ratio"), 1.0, 0.001);
  EXPECT_EQ(value(b, "node_scrape_collector_success", "collector", "timex"), 1);
}

// softnet_stat with two CPUs, an arp table with two interfaces (an
// incomplete entry counts, as in 1.5), udp without udp6 (IPv6 off): the
// v4 series only. Same output as node_exporter --path.procfs on it.
TEST(NodeNet2, SoftnetArpUdpQueuesMatchNodeExporterOnFixture) {
  auto p = load("enable = ['softnet', 'arp', 'udp_queues']\nprocfs = '" + kData + "/net2/proc'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  expect_golden(moni::node_test::render(b, {"node_scrape_collector_duration_seconds"}, {}),
                "net2_expected.txt");
  EXPECT_EQ(value(b, "node_arp_entries", "device", "eth0"), 3);
  EXPECT_EQ(value(b, "node_udp_queues", "queue", "rx"), 0xa00 + 0x200);
  EXPECT_EQ(b.find("node_udp_queues", "ip", "v6").size(), 0u);
  auto p2 = load("enable = ['arp']\narp.device_include = '^docker'\nprocfs = '" + kData +
                 "/net2/proc'\n");
  ASSERT_TRUE(p2);
  OwnedBatch b2 = collect(*p2);
  EXPECT_EQ(b2.find("node_arp_entries").size(), 1u);
  EXPECT_EQ(value(b2, "node_arp_entries", "device", "docker0"), 1);
}

// Without the files node_exporter 1.5 reports all three failed.
TEST(NodeNet2, MissingFilesFailTheCollectors) {
  auto p = load("enable = ['softnet', 'arp', 'udp_queues']\nprocfs = '" + kData + "/proc'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  for (auto c : {"softnet", "arp", "udp_queues"})
    EXPECT_EQ(value(b, "node_scrape_collector_success", "collector", c), 0) << c;
  EXPECT_EQ(b.find("node_udp_queues").size(), 0u);
}

TEST(NodeSelinux, EnabledAndDisabled) {
  auto p = load("enable = ['selinux']\nsysfs = '" + kData + "/selinux/sys'\nrootfs = '" + kData +
                "/selinux/rootfs'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(value(b, "node_selinux_enabled"), 1);
  EXPECT_EQ(value(b, "node_selinux_config_mode"), 0);   // SELINUX=permissive
  EXPECT_EQ(value(b, "node_selinux_current_mode"), 1);  // enforce: 1
  auto p2 = load("enable = ['selinux']\nsysfs = '" + kData + "/sys'\n");
  ASSERT_TRUE(p2);
  OwnedBatch b2 = collect(*p2);
  EXPECT_EQ(value(b2, "node_selinux_enabled"), 0);
  EXPECT_EQ(b2.find("node_selinux_config_mode").size(), 0u);
  EXPECT_EQ(value(b2, "node_scrape_collector_success", "collector", "selinux"), 1);
}

TEST(NodeNewCollectors, OnByDefaultAndSwitchable) {
  auto p = load("procfs = '" + kData + "/proc'\nsysfs = '" + kData + "/netclass/sys'\n" +
                "disable = ['textfile']\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(b.find("node_scrape_collector_success", "collector", "textfile").size(), 0u);
  for (auto c : {"timex", "netclass", "conntrack", "softnet", "arp", "udp_queues", "selinux"})
    EXPECT_EQ(b.find("node_scrape_collector_success", "collector", c).size(), 1u) << c;
  auto h = PluginHarness::load(plugin_path("node"), "netclass.ignored_devices = '('\n");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("netclass.ignored_devices: invalid regular expression"),
            std::string::npos)
      << h.error().message;
}

// netdev keeps each device's rx_nohandler open between cycles; a device
// that leaves /proc/net/dev (a container's veth) must have it closed, or a
// host with churning containers runs out of descriptors.
TEST(NodeNetdev, DevicesThatGoAwayHaveTheirFilesClosed) {
  fs::path tmp = fs::temp_directory_path() / ("moni-netdev-" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  fs::create_directories(tmp / "proc/net");
  auto write_dev = [&](int first, int count) {
    std::ofstream f(tmp / "proc/net/dev");
    f << "Inter-|   Receive                                                |  Transmit\n"
         " face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets "
         "errs drop fifo colls carrier compressed\n";
    for (int i = first; i < first + count; ++i) {
      std::string name = "veth" + std::to_string(i);
      fs::create_directories(tmp / "sys/class/net" / name / "statistics");
      std::ofstream(tmp / "sys/class/net" / name / "statistics/rx_nohandler") << i << "\n";
      f << "  " << name << ": " << i << " 1 0 0 0 0 0 0 " << i << " 1 0 0 0 0 0 0\n";
    }
  };
  write_dev(0, 30);
  auto p = load(only("netdev") + "procfs = '" + (tmp / "proc").string() + "'\nsysfs = '" +
                (tmp / "sys").string() + "'\n");
  ASSERT_TRUE(p);
  OwnedBatch b = collect(*p);
  EXPECT_EQ(value(b, "node_network_receive_nohandler_total", "device", "veth7"), 7);
  size_t fds = open_fds();
  for (int round = 1; round <= 5; ++round) {  // 30 new devices replace the old ones
    write_dev(round * 30, 30);
    b = collect(*p);
    EXPECT_EQ(b.find("node_network_receive_bytes_total").size(), 30u);
    EXPECT_EQ(value(b, "node_network_receive_nohandler_total", "device",
                    "veth" + std::to_string(round * 30 + 7)),
              round * 30 + 7);
  }
  EXPECT_LE(open_fds(), fds + 2);  // before the fix: +150
  fs::remove_all(tmp);
}

// cpufreq lists <sysfs>/devices/system/cpu again only when the directory's
// link count changes (a cpuN directory came or went), and looks for
// cpuN/cpufreq again only when cpu/cpufreq's count changes (a policy
// directory came or went) once no CPU had one; the frequencies themselves
// are read on every collection, from descriptors kept open.
TEST(NodeCpufreq, SeesCpusAndPoliciesThatComeAndGo) {
  char tmpl[] = "/tmp/moni-cpufreq-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const fs::path root(tmpl);
  const fs::path cpu = root / "devices/system/cpu";
  auto put = [](const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
  };
  put(cpu / "present", "0\n");
  put(cpu / "cpu0/cpufreq/scaling_cur_freq", "1000\n");
  fs::create_directories(cpu / "cpufreq");
  auto p = load("sysfs = '" + root.string() + "'\n" + only("cpufreq"));
  ASSERT_TRUE(p);
  auto b = collect(*p);
  EXPECT_EQ(value(b, "node_cpu_scaling_frequency_hertz", "cpu", "0"), 1e6);
  put(cpu / "cpu0/cpufreq/scaling_cur_freq", "1500\n");  // rewritten in place, as sysfs does
  b = collect(*p);
  EXPECT_EQ(value(b, "node_cpu_scaling_frequency_hertz", "cpu", "0"), 1.5e6);
  put(cpu / "cpu1/cpufreq/scaling_cur_freq", "2000\n");  // a CPU was added
  b = collect(*p);
  EXPECT_EQ(value(b, "node_cpu_scaling_frequency_hertz", "cpu", "0"), 1.5e6);
  EXPECT_EQ(value(b, "node_cpu_scaling_frequency_hertz", "cpu", "1"), 2e6);

  // The driver goes away: no frequencies, several quiet cycles.
  fs::remove_all(cpu / "cpu0/cpufreq");
  fs::remove_all(cpu / "cpu1/cpufreq");
  for (int i = 0; i < 3; ++i) {
    b = collect(*p);
    EXPECT_TRUE(b.find("node_cpu_scaling_frequency_hertz").empty());
  }
  // A driver is loaded: a policy directory appears under cpu/cpufreq and
  // cpuN/cpufreq with it (a directory here; a link to the policy on Linux).
  fs::create_directories(cpu / "cpufreq/policy0");
  put(cpu / "cpu1/cpufreq/scaling_cur_freq", "2500\n");
  put(cpu / "cpu1/cpufreq/cpuinfo_max_freq", "3000\n");
  b = collect(*p);
  EXPECT_EQ(value(b, "node_cpu_scaling_frequency_hertz", "cpu", "1"), 2.5e6);
  EXPECT_EQ(value(b, "node_cpu_frequency_max_hertz", "cpu", "1"), 3e6);
  EXPECT_EQ(b.one("node_cpu_scaling_frequency_hertz", "cpu", "0"), nullptr);
  // ...and unloaded again.
  fs::remove_all(cpu / "cpufreq/policy0");
  fs::remove_all(cpu / "cpu1/cpufreq");
  b = collect(*p);
  EXPECT_TRUE(b.find("node_cpu_scaling_frequency_hertz").empty());
  EXPECT_TRUE(b.find("node_cpu_frequency_max_hertz").empty());
  p.reset();
  fs::remove_all(root);
}
