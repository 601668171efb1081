// Samples Prometheus would refuse (label values that are not UTF-8, bad
// metric or label names, no metric name) emitted by a collector and by a
// processor, next to good ones, through the real moni binary and the real
// prom_exposition plugin: the good ones reach /metrics, the bad are dropped
// and counted in moni_samples_dropped_total, the body passes `promtool check
// metrics`, and a real Prometheus 2.42 scrapes it (one such label, or a HELP
// text that is not UTF-8, fails its whole scrape: "invalid UTF-8 label value",
// "help text is not a valid utf8 string").
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <moni/text_format.hpp>
#include <string>
#include <thread>

#include "subprocess.hpp"

using namespace moni::test;

namespace {

bool have(const char* path) { return access(path, X_OK) == 0 || access(path, R_OK) == 0; }

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '_') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// The value of a query's only series from Prometheus's /api/v1/query, or "".
std::string prom_value(int port, const std::string& query) {
  auto r = http_get(port, "/api/v1/query?query=" + url_encode(query));
  if (r.status != 200) return "";
  size_t v = r.body.find("\"value\":[");
  if (v == std::string::npos || r.body.find("\"value\":[", v + 1) != std::string::npos) return "";
  size_t q = r.body.find(",\"", v);
  size_t e = r.body.find('"', q + 2);
  if (q == std::string::npos || e == std::string::npos) return "";
  return r.body.substr(q + 2, e - q - 2);
}

bool wait_until(const std::function<bool()>& f, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return f();
}

std::string dropped(const std::string& inst, const std::string& plugin, const std::string& reason) {
  return "moni_samples_dropped_total{instance_name=\"" + inst + "\",plugin=\"" + plugin +
         "\",reason=\"" + reason + "\"}";
}

const std::string kUtf8Path =
    "/mnt/Gr\xc3\xbc\xc3\x9f"
    "e \xe2\x9c\x93 \xf0\x9f\x98\x80";

}  // namespace

TEST(InvalidLabels, DroppedBeforeAnySinkCountedAndTheRestScrapedByPrometheus) {
  if (!have(MONI_PLUGIN_BUILD_DIR "/moni-prom_exposition.so")) GTEST_SKIP() << "no prom_exposition";
  TempDir d;
  d.write("m.toml",
          std::string("[host]\nlisten = \"127.0.0.1:0\"\nplugin_dirs = [\"") +
              HOST_TEST_PLUGIN_DIR + "\", \"" + HOST_HOSTILE_PLUGIN_DIR +
              "\"]\n"
              "[collectors.h]\nplugin = \"test_hostile\"\ninterval = \"1h\"\n"
              "[collectors.c]\nplugin = \"test_collector\"\ninterval = \"1h\"\n"
              "[collectors.self]\ninterval = \"200ms\"\n"
              "[processors.hp]\nplugin = \"test_hostile_processor\"\n"
              "[outputs.metrics]\nplugin = \"prom_exposition\"\n"
              "[pipelines.direct]\ncollectors = [\"h\", \"self\"]\nsinks = [\"metrics\"]\n"
              "[pipelines.processed]\ncollectors = [\"c\"]\nprocessors = [\"hp\"]\n"
              "sinks = [\"metrics\"]\n");
  Child moni({MONI_BIN, "run", "--config", d.file("m.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  std::string body;
  ASSERT_TRUE(wait_until(
      [&] {
        body = http_get(port, "/metrics").body;
        return metric(body, dropped("hp", "test_hostile_processor", "invalid_name")) == 6 &&
               metric(body, dropped("h", "test_hostile", "invalid_name")) == 6;
      },
      10000))
      << body << moni.err();

  for (std::string by : {"h", "hp"}) {
    SCOPED_TRACE(by);
    EXPECT_EQ(metric(body, "hostile_good{by=\"" + by + "\",path=\"/\"}"), 1);
    EXPECT_EQ(metric(body, "hostile_good{by=\"" + by + "\",path=\"" + kUtf8Path + "\"}"), 2);
    EXPECT_EQ(metric(body, "hostile_good:ratio{by=\"" + by + "\"}"), 3);
    EXPECT_EQ(metric(body, "hostile_good_unsorted{by=\"" + by + "\",zone=\"a\"}"), 12);
  }
  EXPECT_EQ(metric(body, "test_value{instance=\"c\"}"), 1);  // passed through hp
  EXPECT_EQ(metric(body, dropped("h", "test_hostile", "invalid_utf8")), 3);
  EXPECT_EQ(metric(body, dropped("hp", "test_hostile_processor", "invalid_utf8")), 3);
  EXPECT_EQ(metric(body, dropped("c", "test_collector", "invalid_utf8")), 0);
  EXPECT_EQ(metric(body, dropped("c", "test_collector", "invalid_name")), 0);
  EXPECT_EQ(metric(body, dropped("self", "self", "invalid_name")), 0);
  for (const char* gone :
       {"hostile_bad", "hostile-bad", "0hostile", "dev-ice", "a:b", "job=\"x\"", "hostile_dup"})
    EXPECT_EQ(body.find(gone), std::string::npos) << gone << "\n" << body;
  EXPECT_TRUE(moni::text::detail::valid_utf8(body)) << body;
  EXPECT_NE(body.find("# TYPE hostile_good gauge"), std::string::npos) << body;

  // One warning per instance, naming it, the counter and the first drop escaped.
  std::string log = moni.err();
  EXPECT_NE(
      log.find(
          "h (test_hostile): dropped 9 of 13 sample(s) with an invalid name or a label "
          "value that is not UTF-8 (moni_samples_dropped_total); sorted the labels of 1 sample(s); "
          "repaired 2 metadata record(s); first: metric "
          "\"hostile_bad_utf8\": label \"path\" has a value that is not valid UTF-8: "
          "\"/mnt/\\xff\\xfe\""),
      std::string::npos)
      << log;
  EXPECT_NE(log.find("hp (test_hostile_processor): dropped 9 of 14 sample(s)"), std::string::npos)
      << log;
  EXPECT_TRUE(moni::text::detail::valid_utf8(log)) << log;

  d.write("metrics.txt", body);
  // Exit code 3: lint findings only (hostile_good's HELP was emptied, and
  // hostile_good:ratio has a colon); 1 would be a body it cannot parse.
  auto p = run({"/bin/sh", "-c", "promtool check metrics < " + d.file("metrics.txt")});
  EXPECT_TRUE(p.exit_code == 0 || p.exit_code == 3) << p.exit_code << p.out << p.err;
  EXPECT_EQ((p.out + p.err).find("error"), std::string::npos) << p.out << p.err;
  EXPECT_NE((p.out + p.err).find("hostile_good no help text"), std::string::npos) << p.out << p.err;

  if (!have("/usr/bin/prometheus")) GTEST_SKIP() << "no prometheus";
  int prom_port = free_port();
  d.write("prometheus.yml",
          "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
          "scrape_configs:\n  - job_name: moni\n    honor_labels: true\n"
          "    static_configs:\n      - targets: ['127.0.0.1:" +
              std::to_string(port) + "']\n");
  Child prom({"/usr/bin/prometheus", "--config.file=" + d.file("prometheus.yml"),
              "--storage.tsdb.path=" + d.file("tsdb"),
              "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)});
  bool ok = wait_until(
      [&] {
        return prom_value(prom_port, "up{job=\"moni\"}") == "1" &&
               prom_value(prom_port, "hostile_good{by=\"h\",path=\"" + kUtf8Path + "\"}") == "2";
      },
      20000);
  EXPECT_TRUE(ok) << http_get(prom_port, "/api/v1/targets").body << "\n" << prom.err();
  EXPECT_EQ(prom_value(prom_port, dropped("h", "test_hostile", "invalid_utf8")), "3");
}

// The kernel allows any byte but '/' and NUL in a file name, so a mount
// point (or a device name) need not be UTF-8. The real node plugin reads
// such a mount from a procfs fixture: its samples are dropped and counted
// under the node instance, the other mount's reach /metrics.
TEST(InvalidLabels, NodeMountPointNotUtf8IsDroppedAndCounted) {
  if (!have(MONI_PLUGIN_BUILD_DIR "/moni-prom_exposition.so") ||
      !have(MONI_PLUGIN_BUILD_DIR "/moni-node.so"))
    GTEST_SKIP() << "node or prom_exposition not built";
  TempDir d;
  const std::string bad = "bad\xfe\xff";
  ASSERT_EQ(::mkdir(d.file("proc").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(d.file("root").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(d.file("root/good").c_str(), 0755), 0);
  ASSERT_EQ(::mkdir(d.file("root/" + bad).c_str(), 0755), 0);
  d.write("proc/mounts",
          "/dev/sda1 /good ext4 rw,relatime 0 0\n/dev/sd\xff /" + bad + " ext4 rw,relatime 0 0\n");
  d.write("m.toml",
          "[host]\nlisten = \"127.0.0.1:0\"\n"
          "[collectors.node]\ninterval = \"1h\"\nenable = [\"filesystem\"]\n"
          "procfs = \"" +
              d.file("proc") + "\"\nrootfs = \"" + d.file("root") +
              "\"\n"
              "[collectors.self]\ninterval = \"200ms\"\n"
              "[outputs.metrics]\nplugin = \"prom_exposition\"\n"
              "[pipelines.p]\ncollectors = [\"node\", \"self\"]\nsinks = [\"metrics\"]\n");
  Child moni({MONI_BIN, "run", "--config", d.file("m.toml"), "--data-dir", d.path});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  std::string body;
  const std::string counter = dropped("node", "node", "invalid_utf8");
  ASSERT_TRUE(wait_until(
      [&] {
        body = http_get(port, "/metrics").body;
        return metric(body, counter) > 0;
      },
      10000))
      << body << moni.err();
  // One sample per family for each mount: as many dropped as the good one has.
  size_t good = 0;
  for (size_t at = 0; (at = body.find("mountpoint=\"/good\"", at)) != std::string::npos; ++at)
    ++good;
  EXPECT_GE(good, 6u) << body;
  EXPECT_EQ(metric(body, counter), static_cast<double>(good)) << body;
  EXPECT_EQ(metric(body, dropped("node", "node", "invalid_name")), 0);
  EXPECT_GT(metric(body,
                   "node_filesystem_size_bytes{device=\"/dev/sda1\",fstype=\"ext4\","
                   "mountpoint=\"/good\"}"),
            0)
      << body;
  EXPECT_EQ(body.find("bad"), std::string::npos) << body;
  EXPECT_TRUE(moni::text::detail::valid_utf8(body));
  EXPECT_NE(moni.err().find("node: dropped " + std::to_string(good) + " of "), std::string::npos)
      << moni.err();
  EXPECT_NE(
      moni.err().find("label \"device\" has a value that is not valid UTF-8: \"/dev/sd\\xff\""),
      std::string::npos)
      << moni.err();
}
