// Differential test: every query of tests/data/promql/corpus.txt runs as
// instant and range queries against a real Prometheus 2.42 (data backfilled
// with promtool) and against the prom_api plugin (through the harness, over
// an in-memory store with the same data); results must agree: labels exact,
// values within 1e-9 relative, errors on both sides or neither.
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "memory_store.hpp"
#include "plugin_harness.hpp"
#include "prometheus_peer.hpp"
#include "response_compare.hpp"

namespace {

using moni::promql::test_support::compare_responses;
using moni::promql::test_support::MemoryStore;
using moni::promql::test_support::PrometheusPeer;
using moni::promql::test_support::read_file;
using nlohmann::json;

constexpr int64_t kT0 = 1700000000;

class PromqlDiff : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string data = std::string(MONI_TEST_DATA_DIR) + "/promql/data.om";
    store_ = new MemoryStore();
    store_->load_openmetrics(read_file(data));
    peer_ = new PrometheusPeer(data);
    auto h = moni::testing::PluginHarness::load(moni::testing::plugin_path("prom_api"), "");
    if (h) {
      harness_ = h.value().release();
      harness_->set_storage(store_->reader());
      (void)harness_->start();
    } else {
      load_error_ = h.error().message;
    }
  }
  static void TearDownTestSuite() {
    delete harness_;
    delete peer_;
    delete store_;
  }
  static inline MemoryStore* store_ = nullptr;
  static inline PrometheusPeer* peer_ = nullptr;
  static inline moni::testing::PluginHarness* harness_ = nullptr;
  static inline std::string load_error_;
};

struct Case {
  std::string target;  // path and query string
  bool ordered;
};

TEST_F(PromqlDiff, CorpusAgreesWithPrometheus) {
  ASSERT_TRUE(peer_->ok()) << peer_->error();
  ASSERT_NE(harness_, nullptr) << load_error_;
  std::ifstream f(std::string(MONI_TEST_DATA_DIR) + "/promql/corpus.txt");
  std::string line;
  std::vector<std::string> queries;
  while (std::getline(f, line))
    if (!line.empty() && line[0] != '#') queries.push_back(line);
  ASSERT_GE(queries.size(), 300u);
  // The shipped Grafana dashboards' expressions are corpus lines too
  // (dashboard_exprs_test checks that none is missing).
  const int64_t instants[] = {kT0 + 1800, kT0 + 3600 + 120, kT0 + 617, kT0 + 3000, kT0 + 5};
  struct Range {
    int64_t start, end, step;
  };
  const Range ranges[] = {{kT0, kT0 + 3600 + 300, 60}, {kT0 + 100, kT0 + 2000, 37}};
  size_t agree = 0, total = 0, query_agree = 0;
  std::vector<std::string> failures;
  auto t0 = std::chrono::steady_clock::now();
  for (const auto& q : queries) {
    bool ordered = q.rfind("sort", 0) == 0;
    std::vector<std::string> targets;
    for (int64_t t : instants)
      targets.push_back("/api/v1/query?query=" + moni::promql::test_support::url_encode(q) +
                        "&time=" + std::to_string(t));
    for (const auto& r : ranges)
      targets.push_back("/api/v1/query_range?query=" + moni::promql::test_support::url_encode(q) +
                        "&start=" + std::to_string(r.start) + "&end=" + std::to_string(r.end) +
                        "&step=" + std::to_string(r.step));
    bool all = true;
    for (const auto& target : targets) {
      ++total;
      auto pr = moni::promql::test_support::http_get(peer_->port(), target);
      auto mr = harness_->http("GET", target);
      json pj = json::parse(pr.body, nullptr, false);
      json mj = json::parse(mr.body, nullptr, false);
      std::string diff;
      if (pj.is_discarded())
        diff = "prometheus body is not JSON: " + pr.body.substr(0, 200);
      else if (mj.is_discarded())
        diff = "moni body is not JSON: " + mr.body.substr(0, 200);
      else
        diff =
            compare_responses(pj, mj, ordered && target.find("query_range") == std::string::npos);
      if (diff.empty() && pj.is_object() && pj["status"] == "error" &&
          (static_cast<unsigned>(pr.status) != mr.status))
        diff = "HTTP status " + std::to_string(pr.status) + " vs " + std::to_string(mr.status) +
               " (" + pj.dump() + " / " + mj.dump() + ")";
      if (diff.empty()) {
        ++agree;
      } else {
        all = false;
        failures.push_back(target.substr(0, target.find("query=")) + " " + q + ": " + diff);
      }
    }
    if (all) ++query_agree;
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::cout << "[promql-diff] queries: " << queries.size() << ", agreeing queries: " << query_agree
            << ", requests: " << total << ", agreeing requests: " << agree << ", seconds: " << secs
            << "\n";
  for (const auto& fl : failures) ADD_FAILURE() << fl;
}

// compare_responses() compares values as numbers and errors by status: here
// whole response bodies must be the same bytes (value strings such as 1e+21
// or 1e-07, \ufffd for invalid UTF-8, HTML-escaped characters, runtime
// error messages).
TEST_F(PromqlDiff, BodiesByteForByte) {
  ASSERT_TRUE(peer_->ok()) << peer_->error();
  ASSERT_NE(harness_, nullptr) << load_error_;
  const std::string queries[] = {
      "vector(1e21)",
      "vector(-1e21)",
      "vector(9.99999e20)",
      "vector(123456789012345678901)",
      "vector(1e20)",
      "vector(1e-5)",
      "vector(1e-6)",
      "vector(1e-7)",
      "vector(-1.5e-7)",
      "vector(0.000001234)",
      "vector(1e-6*0.99999)",
      "vector(-0)",
      "vector(NaN)",
      "vector(Inf)",
      "vector(-Inf)",
      "vector(5e-324)",
      "vector(1.7976931348623157e308)",
      "vector(-1e300)",
      "scalar(vector(1e21))",
      "scalar(vector(1e-7))",
      "-1e300",
      "5e-324",
      "1.7976931348623157e308",
      "sum(up) * 1e30",
      "sum(up) / 1e30",
      R"("a\xffb\xc3(\xe2\x82<>&\u2028\u2029\b\f\x01\x7f é\U0001F600\xed\xa0\x80")",
      "\"raw \xff\xfe bytes\"",
      "`raw \xff`",
      "up{a=\"\xff\"}",
      "vector(1) + \xff",
      "vector(1) + \xc3\xa9",
      "\"\xef\xbf\xbd\"",
      R"q(label_replace(vector(1), "x", "\xff$1\xc3", "", "(.*)"))q",
      "topk(1e300, up)",
      "bottomk(-1e19, up)",
      "topk(NaN, up)",
      "topk(Inf, up)",
      "bottomk(-Inf, up)",
      "topk(9223372036854775807, up)",
      "topk(9.3e18, up)",
      "topk(9223372036854774784, up)",
      "count_values(\"a-b\", up)",
      "count_values(\"\", up)"};
  std::vector<std::string> failures;
  for (const auto& q : queries) {
    std::string enc = moni::promql::test_support::url_encode(q);
    for (const std::string& target :
         {"/api/v1/query?query=" + enc + "&time=" + std::to_string(kT0 + 1800),
          "/api/v1/query_range?query=" + enc + "&start=" + std::to_string(kT0 + 1800) +
              "&end=" + std::to_string(kT0 + 1860) + "&step=30"}) {
      auto pr = moni::promql::test_support::http_get(peer_->port(), target);
      auto mr = harness_->http("GET", target);
      if (pr.body != mr.body || static_cast<unsigned>(pr.status) != mr.status)
        failures.push_back(q + " (" + target.substr(0, target.find('?')) + "): prometheus " +
                           std::to_string(pr.status) + " " + pr.body.substr(0, 300) + "\n moni " +
                           std::to_string(mr.status) + " " + mr.body.substr(0, 300));
    }
  }
  for (const auto& fl : failures) ADD_FAILURE() << fl;
}

}  // namespace
