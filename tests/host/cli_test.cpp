// The real moni binary as a subprocess: CLI, HTTP, signals (SIGHUP reload
// with good and bad configs, SIGTERM flush), failing plugins, sd_notify,
// offline storage commands, and an out-of-tree plugin built against the
// installed SDK.
#include <gtest/gtest.h>
#include <moni/plugin_abi.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include "subprocess.hpp"

using namespace moni::test;
namespace fs = std::filesystem;

namespace {

const std::string kMoni = MONI_BIN;
const std::string kPlugins = HOST_TEST_PLUGIN_DIR;
const std::string kAbi = std::to_string(MONI_ABI_MAJOR) + "." + std::to_string(MONI_ABI_MINOR);

std::string host_table(const std::string& extra_dir = "") {
  return "[host]\nlisten = \"127.0.0.1:0\"\nplugin_dirs = [\"" + kPlugins + "\"" +
         (extra_dir.empty() ? "" : ", \"" + extra_dir + "\"") + "]\n";
}

std::string runs(const std::string& inst, const std::string& plugin = "test_collector") {
  return "moni_collector_runs_total{instance_name=\"" + inst + "\",plugin=\"" + plugin + "\"}";
}

// Polls /metrics until `series` reaches `at_least` (returns the last body).
std::string wait_metric(int port, const std::string& series, double at_least,
                        int timeout_ms = 8000) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  std::string body;
  while (std::chrono::steady_clock::now() < end) {
    body = http_get(port, "/metrics").body;
    if (metric(body, series) >= at_least) return body;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return body;
}

}  // namespace

TEST(Cli, VersionHelpAndUsageErrors) {
  auto v = run({kMoni, "--version"});
  EXPECT_EQ(v.exit_code, 0);
  EXPECT_TRUE(v.out.starts_with("moni 0.1.0 (plugin ABI " + kAbi + ")")) << v.out;
  auto h = run({kMoni, "help"});
  EXPECT_EQ(h.exit_code, 0);
  EXPECT_NE(h.out.find("check-config FILE"), std::string::npos);
  auto r = run({kMoni, "run"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("run: --config FILE is required"), std::string::npos) << r.err;
  r = run({kMoni, "run", "--config", "x.toml", "--bogus"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown option '--bogus'"), std::string::npos) << r.err;
  r = run({kMoni, "frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("unknown command 'frobnicate'"), std::string::npos) << r.err;
  r = run({kMoni, "run", "--config", "/nonexistent.toml"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("/nonexistent.toml: cannot read the config file"), std::string::npos)
      << r.err;
}

TEST(Cli, CheckConfigAcceptsTheDefaultAndReportsPositions) {
  TempDir d;
  auto ok = run({kMoni, "check-config", MONI_SOURCE_DIR "/config/moni.toml", "--data-dir", d.path});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  d.write("bad.toml", host_table() +
                          "[collectors.c]\nplugin = \"test_collector\"\nmode = 7\n"
                          "[collectors.n]\nplugin = \"node_exporter_clone\"\n");
  auto r = run({kMoni, "check-config", d.file("bad.toml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(d.file("bad.toml") + ":8:10: collectors.n: unknown plugin "
                                            "'node_exporter_clone'"),
            std::string::npos)
      << r.err;
  d.write("bad2.toml", host_table() + "[collectors.c]\nplugin = \"test_collector\"\nmode = 7\n");
  r = run({kMoni, "check-config", d.file("bad2.toml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(
      r.err.find(d.file("bad2.toml") + ":6:8: test_collector: mode must be a string, got integer"),
      std::string::npos)
      << r.err;
}

TEST(Cli, PluginsListsNameKindVersionAbiAndFile) {
  TempDir d;
  d.write("c.toml", host_table());
  auto r = run({kMoni, "plugins", "--config", d.file("c.toml")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("test_sink        output     0.0.2      " + kAbi + "  " + kPlugins +
                       "/moni-test_sink.so"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("hello            collector"), std::string::npos) << "built-in:\n" << r.out;
  d.write("bad.toml", "[host]\nplugin_dirs = [\"" HOST_BAD_PLUGIN_DIR "\"]\n");
  r = run({kMoni, "plugins", "--config", d.file("bad.toml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.out.find("newer            collector  9.9        1.7"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find(HOST_BAD_PLUGIN_DIR "/moni-abi_major2.so: refused: plugin ABI 2.3"),
            std::string::npos)
      << r.err;
}

// `moni rules ...` reaches the rules plugin's offline command without a
// config (the plugin's defaults) and reports its errors without crashing.
TEST(Cli, RulesImportConvertsAPrometheusRuleFile) {
  TempDir d;
  d.write("r.yml",
          "groups:\n  - name: g\n    rules:\n      - record: job:up:sum\n"
          "        expr: sum by (job) (up)\n");
  auto r = run({kMoni, "rules", "import", d.file("r.yml"), "--out", d.file("r.toml")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string toml = read_file(d.file("r.toml"));
  EXPECT_NE(toml.find("record = \"job:up:sum\""), std::string::npos) << toml;
  EXPECT_NE(toml.find("expr = \"sum by (job) (up)\""), std::string::npos) << toml;
  r = run({kMoni, "rules", "import", d.file("missing.yml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(d.file("missing.yml")), std::string::npos) << r.err;
  d.write("bad.yml", "groups:\n  - name: g\n    rules:\n      - record: x\n        bogus: 1\n");
  r = run({kMoni, "rules", "import", d.file("bad.yml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("bad.yml:5:"), std::string::npos) << r.err;
}

TEST(Run, ServesHealthReadyAndPromtoolCleanMetrics) {
  TempDir d;
  d.write("c.toml", host_table() + R"(
[collectors.c]
plugin = "test_collector"
interval = "100ms"
[pipelines.p]
collectors = ["c", "self"]
)");
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.file("data")});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  auto h = http_get(port, "/-/healthy");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.body, "moni is Healthy.\n");
  EXPECT_EQ(http_get(port, "/-/ready").status, 200);
  EXPECT_EQ(http_get(port, "/no/such/route").status, 404);
  std::string body = wait_metric(port, "moni_pipeline_samples_total{pipeline=\"p\"}", 2);
  auto m = http_get(port, "/metrics");
  EXPECT_NE(m.headers.find("text/plain; version=0.0.4"), std::string::npos) << m.headers;
  EXPECT_EQ(metric(m.body, "moni_build_info{abi_version=\"" + kAbi + "\",version=\"0.1.0\"}"), 1);
  EXPECT_GE(metric(m.body, runs("c")), 1);
  EXPECT_GE(metric(m.body, runs("self", "self")), 1);
  EXPECT_EQ(metric(m.body, "moni_plugin_load_failures_total"), 0);
  d.write("metrics.txt", m.body);
  auto p = run({"/bin/sh", "-c", "promtool check metrics < " + d.file("metrics.txt")});
  EXPECT_EQ(p.exit_code, 0) << p.out << p.err << "\n" << m.body;
  EXPECT_TRUE(fs::is_directory(d.file("data")));
  moni.signal(SIGINT);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
}

// The host loads the plugins its config names, not every file it finds:
// the built-in plugins and the broken files of a plugin dir stay unmapped
// and unreported; a reload loads what the new config names and keeps the
// rest; a configured file that fails is an error naming the file and cause.
TEST(Run, LoadsOnlyTheConfiguredPluginsAndMoreOnReload) {
  TempDir d;
  auto config = [&](const std::string& more) {
    return host_table(HOST_BAD_PLUGIN_DIR) +
           "[collectors.c]\nplugin = \"test_collector\"\ninterval = \"100ms\"\n" + more +
           "[pipelines.p]\ncollectors = [\"c\", \"self\"]\n";
  };
  d.write("c.toml", config(""));
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  auto maps = [&] { return read_file("/proc/" + std::to_string(moni.pid()) + "/maps"); };
  std::string m = maps();
  EXPECT_NE(m.find(kPlugins + "/moni-test_collector.so"), std::string::npos) << m;
  EXPECT_EQ(m.find(kPlugins + "/moni-test_sink.so"), std::string::npos);
  EXPECT_EQ(m.find(MONI_PLUGIN_BUILD_DIR "/"), std::string::npos) << "no built-in plugin:\n" << m;
  EXPECT_EQ(m.find(HOST_BAD_PLUGIN_DIR "/"), std::string::npos);
  EXPECT_EQ(moni.err().find("refused"), std::string::npos) << moni.err();
  std::string body = wait_metric(port, runs("c"), 1);
  EXPECT_EQ(metric(body, "moni_plugin_load_failures_total"), 0) << body;

  // A new name loads its plugin; the running instance keeps its own.
  d.write("c.toml", config("[outputs.out]\nplugin = \"test_sink\"\npath = \"/dev/null\"\n"));
  moni.signal(SIGHUP);
  ASSERT_TRUE(moni.wait_for_log("configuration reloaded", 10000)) << moni.err();
  m = maps();
  EXPECT_NE(m.find(kPlugins + "/moni-test_sink.so"), std::string::npos) << m;
  EXPECT_EQ(m.find(MONI_PLUGIN_BUILD_DIR "/"), std::string::npos) << m;

  // A broken file that the config names: the reload fails saying why. A
  // name no file has lists what is available.
  d.write("c.toml", config("[collectors.x]\nplugin = \"abi_major2\"\n"
                           "[collectors.y]\nplugin = \"no_such_plugin\"\n"));
  moni.signal(SIGHUP);
  ASSERT_TRUE(moni.wait_for_log("reload failed", 10000)) << moni.err();
  std::string err = moni.err();
  EXPECT_NE(err.find(d.file("c.toml") + ":8:10: collectors.x: unknown plugin 'abi_major2': " +
                     HOST_BAD_PLUGIN_DIR "/moni-abi_major2.so: refused: plugin ABI 2.3"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("collectors.y: unknown plugin 'no_such_plugin': no plugin named "
                     "'no_such_plugin' (no loadable moni-no_such_plugin.so in "),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("available: "), std::string::npos) << err;
  EXPECT_NE(err.find(", test_collector, test_processor, test_sink, test_store"), std::string::npos)
      << err;
  // Tried and refused: abi_major2, then no_entry and small_struct while
  // looking for a file that declares no_such_plugin.
  body = http_get(port, "/metrics").body;
  EXPECT_EQ(metric(body, "moni_plugin_load_failures_total"), 3) << body;
  EXPECT_EQ(metric(body, "moni_config_reloads_total{result=\"failure\"}"), 1) << body;
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
}

TEST(Run, SigtermDrainsAndFlushesSinks) {
  TempDir d;
  d.write("c.toml", host_table() + R"(
[collectors.c]
plugin = "test_collector"
interval = "50ms"
[outputs.out]
plugin = "test_sink"
path = ")" + d.file("flushed.txt") +
                        R"("
route = "/test/count"
[pipelines.p]
collectors = ["c"]
sinks = ["out"]
)");
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  int seen = 0;
  for (int i = 0; i < 200 && seen < 3; ++i) {
    seen = std::atoi(http_get(port, "/test/count").body.c_str());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE(seen, 3) << moni.err();
  EXPECT_EQ(read_file(d.file("flushed.txt")), "") << "the sink writes only when flushed";
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
  std::string flushed = read_file(d.file("flushed.txt"));
  size_t lines = static_cast<size_t>(std::count(flushed.begin(), flushed.end(), '\n'));
  EXPECT_GE(lines, static_cast<size_t>(seen)) << flushed;
  EXPECT_NE(flushed.find("test_value 1.000000\n"), std::string::npos) << flushed;
}

TEST(Run, SighupAppliesAGoodConfigAndKeepsRunningOnABadOne) {
  TempDir d;
  auto config = [&](const std::string& name, const std::string& sink_file) {
    return host_table() + "[collectors." + name +
           "]\nplugin = \"test_collector\"\n"
           "interval = \"100ms\"\n[outputs.out]\nplugin = \"test_sink\"\npath = \"" +
           d.file(sink_file) + "\"\n[pipelines.p]\ncollectors = [\"" + name +
           "\"]\nsinks = [\"out\"]\n";
  };
  d.write("c.toml", config("tick_a", "a.txt"));
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  std::string body = wait_metric(port, runs("tick_a"), 2);
  ASSERT_GE(metric(body, runs("tick_a")), 2) << body << moni.err();

  // A good config: a renamed collector and a sink writing elsewhere.
  d.write("c.toml", config("tick_b", "b.txt"));
  moni.signal(SIGHUP);
  ASSERT_TRUE(moni.wait_for_log("configuration reloaded", 10000)) << moni.err();
  body = wait_metric(port, runs("tick_b"), 2);
  EXPECT_GE(metric(body, runs("tick_b")), 2) << body;
  EXPECT_EQ(metric(body, runs("tick_a")), -1) << body;
  EXPECT_EQ(metric(body, "moni_config_reloads_total{result=\"success\"}"), 1) << body;
  EXPECT_NE(read_file(d.file("a.txt")).find("test_value"), std::string::npos)
      << "the replaced sink was flushed before it stopped";

  // A bad config: rejected with its position, the running pipelines stay.
  d.write("c.toml", config("tick_c", "c.txt") + "[collectors.x]\nplugin = \"missing\"\n");
  moni.signal(SIGHUP);
  ASSERT_TRUE(moni.wait_for_log("reload failed", 10000)) << moni.err();
  EXPECT_NE(moni.err().find(d.file("c.toml") + ":14:10: collectors.x: unknown plugin 'missing'"),
            std::string::npos)
      << moni.err();
  double before = metric(http_get(port, "/metrics").body, runs("tick_b"));
  body = wait_metric(port, runs("tick_b"), before + 2);
  EXPECT_GE(metric(body, runs("tick_b")), before + 2) << body;
  EXPECT_EQ(metric(body, runs("tick_c")), -1);
  EXPECT_EQ(metric(body, "moni_config_reloads_total{result=\"failure\"}"), 1) << body;
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
  EXPECT_NE(read_file(d.file("b.txt")).find("test_value"), std::string::npos);
}

TEST(Run, FailingThrowingAndSlowCollectorsDoNotStopTheOthers) {
  TempDir d;
  d.write("c.toml", host_table() + R"(
[collectors.thrower]
plugin = "test_collector"
mode = "throw"
interval = "100ms"
[collectors.failer]
plugin = "test_collector"
mode = "fail"
interval = "100ms"
[collectors.slow]
plugin = "test_collector"
sleep = "450ms"
interval = "100ms"
[collectors.fast]
plugin = "test_collector"
interval = "100ms"
[pipelines.p]
collectors = ["thrower", "failer", "slow", "fast"]
)");
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  std::string body = wait_metric(port, runs("fast"), 10);
  EXPECT_GE(metric(body, runs("fast")), 10) << body;
  EXPECT_GE(
      metric(body, "moni_collector_errors_total{instance_name=\"thrower\",plugin=\"test_collector\"}"),
      3)
      << body;
  EXPECT_GE(
      metric(body, "moni_collector_errors_total{instance_name=\"failer\",plugin=\"test_collector\"}"), 3)
      << body;
  EXPECT_EQ(
      metric(body, "moni_collector_errors_total{instance_name=\"fast\",plugin=\"test_collector\"}"), 0)
      << body;
  EXPECT_GE(
      metric(body, "moni_collector_skipped_total{instance_name=\"slow\",plugin=\"test_collector\"}"), 3)
      << body;
  // 450 ms collections on a 100 ms interval: about one run per five ticks,
  // whatever the machine's speed; piled-up runs would match the fast one.
  EXPECT_LE(metric(body, runs("slow")) * 3, metric(body, runs("fast")))
      << "a slow collection is skipped, not piled up\n"
      << body;
  EXPECT_NE(moni.err().find(
                "thrower (test_collector): collect failed: exception: asked to throw in collect"),
            std::string::npos)
      << moni.err();
  EXPECT_EQ(http_get(port, "/-/healthy").status, 200);
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
}

// The only collector, while fast, is collected on the io thread its timer
// woke (no hop to a worker). One that turns slow there still has the slots
// that passed during its collection counted as skipped, keeps being
// collected, and does not stop HTTP.
TEST(Run, ASingleCollectorTurningSlowHasItsMissedSlotsSkipped) {
  TempDir d;
  d.write("c.toml", host_table() + R"(
[collectors.turns_slow]
plugin = "test_collector"
sleep = "1s"
sleep_after = 5
interval = "50ms"
[pipelines.p]
collectors = ["turns_slow"]
)");
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  // Runs 2-5 were fast, so run 6 (the first slow one) ran on the io thread.
  std::string body = wait_metric(port, runs("turns_slow"), 6);
  ASSERT_GE(metric(body, runs("turns_slow")), 6) << body;
  // The ~20 slots of its 1 s are counted as soon as it returns (on the
  // pool, each slot is counted as it passes).
  const std::string skipped =
      "moni_collector_skipped_total{instance_name=\"turns_slow\",plugin=\"test_collector\"}";
  if (metric(body, runs("turns_slow")) < 7) {
    EXPECT_GE(metric(body, skipped), 10) << body;
  }
  EXPECT_NE(moni.err().find("turns_slow (test_collector): previous collection still running; "
                            "skipping "),
            std::string::npos)
      << moni.err();
  EXPECT_NE(moni.err().find(" collection(s)"), std::string::npos) << moni.err();
  // Later runs go to the pool and keep coming; HTTP is served meanwhile.
  body = wait_metric(port, runs("turns_slow"), 7, 10000);
  EXPECT_GE(metric(body, runs("turns_slow")), 7) << body;
  EXPECT_EQ(http_get(port, "/-/healthy").status, 200);
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
}

TEST(Run, StartFailureIsReportedAndExitsNonZero) {
  TempDir d;
  d.write("c.toml", host_table() + R"(
[collectors.c]
plugin = "test_collector"
mode = "throw_start"
[pipelines.p]
collectors = ["c"]
)");
  auto r = run({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("c (test_collector): start failed: exception: asked to throw in start"),
            std::string::npos)
      << r.err;
}

TEST(Run, NotifiesSystemd) {
  TempDir d;
  std::string sock = d.file("notify");
  int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::snprintf(a.sun_path, sizeof a.sun_path, "%s", sock.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  d.write("c.toml", host_table() + "[pipelines.p]\ncollectors = [\"self\"]\n");
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path},
             {{"NOTIFY_SOCKET", sock}});
  char buf[256] = {};
  ssize_t n = ::recv(fd, buf, sizeof buf - 1, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "READY=1");
  moni.signal(SIGTERM);
  n = ::recv(fd, buf, sizeof buf - 1, 0);
  EXPECT_EQ(std::string(buf, n > 0 ? static_cast<size_t>(n) : 0), "STOPPING=1");
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
  ::close(fd);
}

TEST(Cli, OfflineStorageCommandsRunOnACreatedInstance) {
  TempDir d;
  d.write("c.toml", host_table() + "[storage.db]\nplugin = \"test_store\"\n");
  auto r = run(
      {kMoni, "backup", "--config", d.file("c.toml"), "--data-dir", d.path, "/x/out", "--full"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_file(d.file("db.cmd")), "backup /x/out --full\n");
  r = run({kMoni, "restore", "--config", d.file("c.toml"), "--storage", "db", "/x/in"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("moni restore: db (test_store): restore: restore is not supported"),
            std::string::npos)
      << r.err;
  r = run({kMoni, "backup", "--config", d.file("c.toml"), "--storage", "nope"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("no storage instance 'nope'"), std::string::npos) << r.err;
}

TEST(Sdk, OutOfTreePluginBuildsAgainstTheInstalledSdkAndLoads) {
  TempDir d;
  const std::string cmake = CMAKE_COMMAND_PATH;
  auto r = run(
      {cmake, "--install", MONI_BINARY_DIR, "--component", "dev", "--prefix", d.file("prefix")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(fs::exists(d.file("prefix/include/moni/sdk.hpp")));
  // Ninja: tools/deps.sh installs ninja-build, not make.
  r = run({cmake, "-S", MONI_SOURCE_DIR "/sdk/examples/hello_collector", "-B", d.file("build"),
           "-G", "Ninja", "-DCMAKE_PREFIX_PATH=" + d.file("prefix"), "-DCMAKE_BUILD_TYPE=Release"});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  r = run({cmake, "--build", d.file("build")});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  ASSERT_TRUE(fs::exists(d.file("build/moni-hello.so")));
  // A moni without built-in plugins next to it, so the out-of-tree "hello"
  // is the only one of that name.
  fs::create_directories(d.file("bin"));
  std::error_code ec;
  fs::create_hard_link(kMoni, d.file("bin/moni"), ec);
  if (ec) fs::copy_file(kMoni, d.file("bin/moni"));
  d.write("c.toml",
          "[host]\nlisten = \"127.0.0.1:0\"\nplugin_dirs = [\"build\"]\n"
          "[collectors.hello]\ninterval = \"100ms\"\nvalue = 3.0\n"
          "[pipelines.p]\ncollectors = [\"hello\"]\n");
  r = run({d.file("bin/moni"), "plugins", "--config", d.file("c.toml")});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string row = "hello            collector  1.0.0      " + kAbi + "  ";
  EXPECT_NE(r.out.find(row + d.file("build/moni-hello.so")), std::string::npos) << r.out;
  Child moni({d.file("bin/moni"), "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  std::string body = wait_metric(port, runs("hello", "hello"), 2);
  EXPECT_GE(metric(body, runs("hello", "hello")), 2) << body << moni.err();
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
}

TEST(Run, StorageReadersAreHandedOutByNameOrWhenUnambiguous) {
  TempDir d;
  d.write("c.toml", host_table() + R"(
[storage.db1]
plugin = "test_store"
[storage.db2]
plugin = "test_store"
[outputs.by_name]
plugin = "test_sink"
path = "/dev/null"
route = "/probe/by_name"
probe_storage = "db2"
[outputs.ambiguous]
plugin = "test_sink"
path = "/dev/null"
route = "/probe/ambiguous"
probe_storage = ""
[outputs.missing]
plugin = "test_sink"
path = "/dev/null"
route = "/probe/missing"
probe_storage = "nope"
)");
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  EXPECT_EQ(http_get(port, "/probe/by_name").body, "0 storage=1\n");
  EXPECT_EQ(http_get(port, "/probe/ambiguous").body, "0 storage=0\n");
  EXPECT_EQ(http_get(port, "/probe/missing").body, "0 storage=0\n");
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
}

// ABI 1.2 listen_urls: a plugin learns in start() where the host serves
// HTTP, with the port actually bound (the config says port 0).
TEST(Run, PluginsLearnTheListenUrls) {
  TempDir d;
  d.write("c.toml", host_table() + R"(
[outputs.o]
plugin = "test_sink"
path = "/dev/null"
urls_route = "/urls"
)");
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  EXPECT_EQ(http_get(port, "/urls").body, "http://127.0.0.1:" + std::to_string(port) + "\n");
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
}

TEST(Run, RouteConflictsAreStartErrors) {
  TempDir d;
  d.write("c.toml", host_table() + R"(
[outputs.a]
plugin = "test_sink"
path = "/dev/null"
route = "/same"
[outputs.b]
plugin = "test_sink"
path = "/dev/null"
route = "/same"
)");
  auto r = run({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(
      r.err.find("b (test_sink): start failed: route /same is already served by instance 'a'"),
      std::string::npos)
      << r.err;
}

TEST(Run, BasicAuthProtectsEveryRouteWhenConfigured) {
  TempDir d;
  // bcrypt (cost 4) of "secret"
  d.write("c.toml", host_table() + R"(
[host.web.basic_auth_users]
alice = "$2b$04$hqF/T4/VkePcw93Hpdt4HuAMGNjDrnNHEHlMFMfyBEpP6oyM40BQi"
[pipelines.p]
collectors = ["self"]
)");
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  auto r = http_get(port, "/-/healthy");
  EXPECT_EQ(r.status, 401);
  EXPECT_NE(r.headers.find("WWW-Authenticate: Basic realm=\"moni\""), std::string::npos)
      << r.headers;
  EXPECT_EQ(http_get(port, "/metrics", "Authorization: Basic YWxpY2U6d3Jvbmc=\r\n").status, 401);
  EXPECT_EQ(http_get(port, "/metrics", "Authorization: Basic YWxpY2U6c2VjcmV0\r\n").status, 200);
  EXPECT_EQ(http_get(port, "/-/healthy", "Authorization: Basic YWxpY2U6c2VjcmV0\r\n").status, 200);
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();

  d.write("bad.toml", "[host.web.basic_auth_users]\nbob = \"hunter2\"\n[host.web]\n");
  auto c = run({kMoni, "check-config", d.file("bad.toml")});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE(c.err.find(":2:7: host.web.basic_auth_users.bob must be a password hash"),
            std::string::npos)
      << c.err;
}

// Every mapped library is resident memory of each moni process (#3's RSS
// budget): the binary links neither Boost.Filesystem (plugins are dlopen'ed
// directly) nor toml++'s shared library (compiled in), and libcrypt is
// loaded only once a config has [host.web] users.
TEST(Run, LibrariesTheConfigDoesNotNeedAreNotMapped) {
  auto ldd = run({"/usr/bin/ldd", kMoni});
  ASSERT_EQ(ldd.exit_code, 0) << ldd.err;
  for (const char* lib : {"libboost_filesystem", "libtomlplusplus", "libcrypt"})
    EXPECT_EQ(ldd.out.find(lib), std::string::npos) << lib << " in\n" << ldd.out;
  auto maps_of = [](int pid) {
    std::ifstream f("/proc/" + std::to_string(pid) + "/maps");
    return std::string(std::istreambuf_iterator<char>(f), {});
  };
  TempDir d;
  d.write("plain.toml", host_table() + "[pipelines.p]\ncollectors = [\"self\"]\n");
  {
    Child moni({kMoni, "run", "--config", d.file("plain.toml"), "--data-dir", d.path});
    int port = moni.port();
    ASSERT_GT(port, 0) << moni.err();
    EXPECT_EQ(http_get(port, "/-/healthy").status, 200);
    EXPECT_EQ(maps_of(moni.pid()).find("/libcrypt.so"), std::string::npos);
  }
  d.write("auth.toml", host_table() + R"(
[host.web.basic_auth_users]
alice = "$2b$04$hqF/T4/VkePcw93Hpdt4HuAMGNjDrnNHEHlMFMfyBEpP6oyM40BQi"
[pipelines.p]
collectors = ["self"]
)");
  Child moni({kMoni, "run", "--config", d.file("auth.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  EXPECT_EQ(http_get(port, "/-/healthy", "Authorization: Basic YWxpY2U6c2VjcmV0\r\n").status, 200);
  EXPECT_NE(maps_of(moni.pid()).find("/libcrypt.so"), std::string::npos);
}

TEST(Run, ProcessorsRunInOrderAndForwardedPipelinesGetProcessedBatches) {
  TempDir d;
  d.write("c.toml", host_table() + R"(
[collectors.c]
plugin = "test_collector"
interval = "50ms"
value = 5.0
[collectors.dropped]
plugin = "test_collector"
interval = "50ms"
value = 13.0
[processors.proc]
plugin = "test_processor"
drop_value = 13.0
[processors.twice]
plugin = "test_processor"
[outputs.first]
plugin = "test_sink"
path = ")" + d.file("first.txt") +
                        R"("
labels = true
route = "/count/first"
[outputs.second]
plugin = "test_sink"
path = ")" + d.file("second.txt") +
                        R"("
labels = true
[pipelines.p]
collectors = ["c", "dropped"]
processors = ["proc", "twice"]
sinks = ["first"]
forward = ["q"]
[pipelines.q]
processors = ["proc"]
sinks = ["second"]
)");
  Child moni({kMoni, "run", "--config", d.file("c.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  for (int i = 0; i < 200 && std::atoi(http_get(port, "/count/first").body.c_str()) < 3; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  moni.signal(SIGTERM);
  ASSERT_EQ(moni.wait(10000), 0) << moni.err();
  std::string first = read_file(d.file("first.txt")), second = read_file(d.file("second.txt"));
  EXPECT_NE(first.find("test_value{hops=\"2\",instance=\"c\"} 5.000000\n"), std::string::npos)
      << first;
  // The forwarded pipeline re-enters the same "proc" instance: one more hop.
  EXPECT_NE(second.find("test_value{hops=\"3\",instance=\"c\"} 5.000000\n"), std::string::npos)
      << second;
  EXPECT_EQ(first.find("13.0"), std::string::npos) << first;
  EXPECT_EQ(second.find("13.0"), std::string::npos) << second;
}
