// /api/v1/rules and /api/v1/alerts with strings hard on JSON encoders
// (tests/data/rules/hostile/hostile.yml: quotes, backslashes, control
// characters, HTML characters, U+2028/9, emoji, a label value that is not
// UTF-8, an error message about one), served by moni's rules plugin and by
// a real Prometheus 2.42 from the same rule file: both bodies must be JSON
// a strict parser takes, with the same strings.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "memory_store.hpp"
#include "plugin_harness.hpp"
#include "prometheus_peer.hpp"

namespace {

namespace ts = moni::promql::test_support;
using moni::promql::test_support::MemoryStore;
using moni::testing::PluginHarness;
using nlohmann::json;

const std::string kRules = std::string(MONI_SOURCE_DIR) + "/tests/data/rules/hostile/hostile.yml";

// The body parsed strictly (nlohmann refuses invalid UTF-8 and raw control
// characters in strings, as Go's and browsers' parsers do).
json strict(const std::string& body) {
  json j = json::parse(body, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << "not JSON: " << body;
  return j;
}

// What a client reads of /api/v1/rules: the strings, not timings.
json rules_view(const json& r) {
  json out = json::array();
  for (const auto& g : r["data"]["groups"]) {
    json rules = json::array();
    for (const auto& x : g["rules"]) {
      json v = {{"name", x["name"]}, {"type", x["type"]}, {"health", x["health"]}};
      for (const char* k : {"labels", "annotations", "state"})
        if (x.contains(k)) v[k] = x[k];
      if (x.contains("alerts")) {
        v["alerts"] = json::array();
        for (const auto& a : x["alerts"])
          v["alerts"].push_back({{"labels", a["labels"]},
                                 {"annotations", a["annotations"]},
                                 {"state", a["state"]},
                                 {"value", a["value"]}});
      }
      rules.push_back(v);
    }
    out.push_back({{"name", g["name"]}, {"rules", rules}});
  }
  return out;
}

json alerts_view(const json& r) {
  json out = json::array();
  for (const auto& a : r["data"]["alerts"])
    out.push_back({{"labels", a["labels"]},
                   {"annotations", a["annotations"]},
                   {"state", a["state"]},
                   {"value", a["value"]}});
  return out;
}

struct Bodies {
  std::string rules, alerts, bad_type, upper_type;
};

Bodies from_prometheus() {
  Bodies b;
  char tmpl[] = "/tmp/moni-rules-hostile-XXXXXX";
  if (!mkdtemp(tmpl)) return b;
  std::string dir = tmpl;
  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  evaluation_interval: 1s\nrule_files:\n  - " << kRules << "\n";
  int port = ts::free_port();
  pid_t pid = ts::spawn({"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
                         "--storage.tsdb.path=" + dir + "/data",
                         "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                        dir + "/prometheus.log");
  if (pid > 0 && ts::wait_http_ok(port, "/-/ready", 60)) {
    // The first evaluation fires the alert (no `for`).
    for (int i = 0; i < 100; ++i) {
      b.alerts = ts::http_get(port, "/api/v1/alerts").body;
      if (b.alerts.find("firing") != std::string::npos) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    b.rules = ts::http_get(port, "/api/v1/rules").body;
    b.bad_type = ts::http_get(port, "/api/v1/rules?type=a%22b%01%5C").body;
    b.upper_type = ts::http_get(port, "/api/v1/rules?type=ALERT").body;
  }
  ts::stop(pid);
  std::filesystem::remove_all(dir);
  return b;
}

Bodies from_moni() {
  Bodies b;
  MemoryStore store;
  auto h = PluginHarness::load(
      moni::testing::plugin_path("rules"),
      "interval = \"1s\"\nevaluation_interval = \"1s\"\nrule_files = [\"" + kRules + "\"]\n");
  EXPECT_TRUE(h) << h.error().message;
  if (!h) return b;
  (*h)->set_storage(store.reader());
  EXPECT_TRUE((*h)->start().ok());
  const int64_t t0 = 1'700'000'000'000;
  for (int i = 0; i < 4; ++i) EXPECT_TRUE((*h)->collect(t0 + i * 1000).ok());
  b.rules = (*h)->http("GET", "/api/v1/rules").body;
  b.alerts = (*h)->http("GET", "/api/v1/alerts").body;
  b.bad_type = (*h)->http("GET", "/api/v1/rules?type=a%22b%01%5C").body;
  b.upper_type = (*h)->http("GET", "/api/v1/rules?type=ALERT").body;
  return b;
}

}  // namespace

TEST(RulesHostileJson, SameStringsAsPrometheus) {
  Bodies m = from_moni();
  json mr = strict(m.rules), ma = strict(m.alerts);
  // moni alone: the bodies hold no raw control character, and the label
  // value that is not UTF-8 is U+FFFD per byte (Go's encoding/json).
  // HTML characters escaped everywhere, as Prometheus' encoder does (names
  // and the query were written raw, labels escaped).
  for (const std::string* body : {&m.rules, &m.alerts}) {
    for (char c : *body) EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20) << *body;
    EXPECT_EQ(body->find_first_of("<>&"), std::string::npos) << *body;
  }
  // The template's Go escape "\x01" (a rule file Prometheus loads; moni
  // refused it: unknown escape sequence \x).
  EXPECT_EQ(ma["data"]["alerts"][0]["annotations"]["value"], "1 \x01");
  ASSERT_EQ(ma["data"]["alerts"].size(), 1u) << m.alerts;
  EXPECT_EQ(ma["data"]["alerts"][0]["labels"]["bad"], "\xEF\xBF\xBD\xEF\xBF\xBD");
  // An unknown type is a JSON error naming it; the type is case-blind.
  json bad = strict(m.bad_type);
  EXPECT_EQ(bad["errorType"], "bad_data");
  EXPECT_EQ(bad["error"], "invalid parameter \"type\": not supported value \"a\\\"b\\x01\\\\\"");
  json upper = strict(m.upper_type);
  EXPECT_EQ(upper["status"], "success") << m.upper_type;

  if (access("/usr/bin/prometheus", X_OK) != 0) GTEST_SKIP() << "prometheus missing";
  Bodies p = from_prometheus();
  ASSERT_FALSE(p.rules.empty()) << "prometheus did not answer";
  json pr = strict(p.rules), pa = strict(p.alerts);
  EXPECT_EQ(rules_view(mr).dump(1), rules_view(pr).dump(1));
  EXPECT_EQ(alerts_view(ma).dump(1), alerts_view(pa).dump(1));
  EXPECT_EQ(bad, strict(p.bad_type));
  EXPECT_EQ(rules_view(upper), rules_view(strict(p.upper_type)));
}
