// End to end: the real moni host with lmdb_tsdb and prom_api, loaded with
// `moni import` from the same OpenMetrics file that promtool backfills into
// Prometheus 2.42. The corpus runs against both over HTTP, and
// `promtool query instant|range|series|labels` must print the same for both.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "prometheus_peer.hpp"
#include "response_compare.hpp"

namespace {

using namespace moni::promql::test_support;
using nlohmann::json;

constexpr int64_t kT0 = 1700000000;

class MoniServer {
 public:
  explicit MoniServer(const std::string& data) {
    char tmpl[] = "/tmp/moni-promql-e2e-XXXXXX";
    dir_ = mkdtemp(tmpl);
    port_ = free_port();
    config_ = dir_ + "/moni.toml";
    std::ofstream(config_)
        << "[host]\nlisten = \"127.0.0.1:" << port_ << "\"\ndata_dir = \"" << dir_
        << "\"\n\n[storage.tsdb]\nplugin = \"lmdb_tsdb\"\nretention = \"100y\"\n\n"
           "[outputs.api]\nplugin = \"prom_api\"\n";
    std::string out;
    int rc = run({moni(), "import", "--config", config_, "--storage", "tsdb", data}, &out);
    if (rc != 0) {
      error_ = "moni import failed (" + std::to_string(rc) + "): " + out;
      return;
    }
    pid_ = spawn({moni(), "run", "--config", config_}, dir_ + "/moni.log");
    if (!wait_http_ok(port_, "/api/v1/status/buildinfo", 30))
      error_ = "moni did not serve /api/v1/status/buildinfo: see " + dir_ + "/moni.log";
  }
  ~MoniServer() {
    stop(pid_);
    if (error_.empty()) std::filesystem::remove_all(dir_);
  }
  static std::string moni() { return std::string(MONI_BINARY_DIR) + "/bin/moni"; }
  int port() const { return port_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_, config_, error_;
  int port_ = 0;
  pid_t pid_ = -1;
};

TEST(PromqlEndToEnd, MoniHostAnswersLikePrometheus) {
  std::string data = std::string(MONI_TEST_DATA_DIR) + "/promql/data.om";
  MoniServer moni(data);
  ASSERT_TRUE(moni.error().empty()) << moni.error();
  PrometheusPeer prom(data);
  ASSERT_TRUE(prom.ok()) << prom.error();

  std::ifstream f(std::string(MONI_TEST_DATA_DIR) + "/promql/corpus.txt");
  std::vector<std::string> queries;
  for (std::string line; std::getline(f, line);)
    if (!line.empty() && line[0] != '#') queries.push_back(line);
  size_t agree = 0, total = 0;
  for (const auto& q : queries) {
    for (const std::string& target :
         {"/api/v1/query?query=" + url_encode(q) + "&time=" + std::to_string(kT0 + 1800),
          "/api/v1/query_range?query=" + url_encode(q) + "&start=" + std::to_string(kT0) +
              "&end=" + std::to_string(kT0 + 3900) + "&step=60"}) {
      ++total;
      json p = json::parse(http_get(prom.port(), target).body, nullptr, false);
      json m = json::parse(http_get(moni.port(), target).body, nullptr, false);
      std::string diff =
          p.is_discarded() || m.is_discarded()
              ? "unparsable response"
              : compare_responses(
                    p, m, q.rfind("sort", 0) == 0 && target.find("range") == std::string::npos);
      if (diff.empty())
        ++agree;
      else
        ADD_FAILURE() << target << ": " << diff;
    }
  }
  std::cout << "[promql-e2e] requests: " << total << ", agreeing: " << agree << "\n";
  EXPECT_EQ(agree, total);

  // promtool's own client and printing, against both servers.
  auto promtool = [](int port, std::vector<std::string> args) {
    std::vector<std::string> argv = {"/usr/bin/promtool", "query"};
    argv.push_back(args[0]);
    argv.push_back("http://127.0.0.1:" + std::to_string(port));
    argv.insert(argv.end(), args.begin() + 1, args.end());
    std::string out;
    int rc = run(argv, &out);
    return std::to_string(rc) + "\n" + out;
  };
  const std::string t = std::to_string(kT0 + 1800);
  const std::vector<std::vector<std::string>> cases = {
      {"instant", "--time=" + t, "up"},
      {"instant", "--time=" + t, "rate(http_requests_total{job=\"api\"}[5m])"},
      {"instant", "--time=" + t, "1+1"},
      {"range", "--start=" + t, "--end=" + std::to_string(kT0 + 2400), "--step=1m",
       "sum by (mode) (rate(node_cpu_seconds_total[5m]))"},
      {"series", "--match=up", "--start=" + std::to_string(kT0),
       "--end=" + std::to_string(kT0 + 3600)},
      {"labels", "--start=" + std::to_string(kT0), "--end=" + std::to_string(kT0 + 3600), "job"},
  };
  for (const auto& c : cases) {
    std::string p = promtool(prom.port(), c), m = promtool(moni.port(), c);
    EXPECT_EQ(p.substr(0, 2), "0\n") << c[0] << ": " << p;
    EXPECT_EQ(m, p) << "promtool query " << c[0] << " " << c.back();
  }
}

}  // namespace
