// End to end through the real host: rules -> lmdb_tsdb in a pipeline,
// prom_api reading the same storage. Recorded series and ALERTS reach the
// storage and are queryable, and the host serves the rules instance's
// /api/v1/rules and /api/v1/alerts instead of prom_api's empty fallbacks.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "prometheus_peer.hpp"

namespace {

using namespace moni::promql::test_support;
using nlohmann::json;

TEST(RulesEndToEnd, HostStoresRuleResultsAndServesTheRulesApi) {
  std::string moni = std::string(MONI_BINARY_DIR) + "/bin/moni";
  char tmpl[] = "/tmp/moni-rules-e2e-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  int port = free_port();
  std::ofstream(dir + "/moni.toml")
      << "[host]\nlisten = \"127.0.0.1:" << port << "\"\ndata_dir = \"" << dir << R"t("

[storage.tsdb]
plugin = "lmdb_tsdb"

[outputs.api]
plugin = "prom_api"

[collectors.rules]
interval = "1s"
evaluation_interval = "1s"
[[collectors.rules.group]]
name = "e2e"
[[collectors.rules.group.rule]]
record = "e2e:answer"
expr = "vector(42)"
labels = { source = "moni" }
[[collectors.rules.group.rule]]
alert = "AlwaysFiring"
expr = "e2e:answer > 40"
labels = { severity = "info" }
annotations = { summary = "answer is {{ $value }}" }
[[collectors.rules.group.rule]]
alert = "LongPending"
expr = "e2e:answer > 40"
for = "1h"
)t";
  const std::string pipeline = R"t(
[pipelines.rules]
collectors = ["rules"]
sinks = ["tsdb"]
)t";
  std::ofstream(dir + "/moni.toml", std::ios::app) << pipeline;
  pid_t pid = spawn({moni, "run", "--config", dir + "/moni.toml"}, dir + "/moni.log");
  ASSERT_TRUE(wait_http_ok(port, "/api/v1/status/buildinfo", 30)) << "see " << dir << "/moni.log";

  // ALERTS are stored from the third evaluation on (after the restore).
  json alerts, answer;
  for (int i = 0; i < 100; ++i) {
    alerts = json::parse(
        http_get(port, "/api/v1/query?query=" + url_encode("ALERTS{alertname=\"AlwaysFiring\"}"))
            .body,
        nullptr, false);
    answer = json::parse(http_get(port, "/api/v1/query?query=e2e:answer").body, nullptr, false);
    if (!alerts.is_discarded() && alerts["data"]["result"].size() == 1 && !answer.is_discarded() &&
        answer["data"]["result"].size() == 1)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_FALSE(alerts.is_discarded());
  ASSERT_EQ(answer["data"]["result"].size(), 1u) << answer.dump();
  EXPECT_EQ(answer["data"]["result"][0]["metric"],
            json({{"__name__", "e2e:answer"}, {"source", "moni"}}));
  EXPECT_EQ(answer["data"]["result"][0]["value"][1], "42");
  ASSERT_EQ(alerts["data"]["result"].size(), 1u) << alerts.dump();
  EXPECT_EQ(alerts["data"]["result"][0]["metric"], json({{"__name__", "ALERTS"},
                                                         {"alertname", "AlwaysFiring"},
                                                         {"alertstate", "firing"},
                                                         {"severity", "info"},
                                                         {"source", "moni"}}));

  json rules = json::parse(http_get(port, "/api/v1/rules").body, nullptr, false);
  ASSERT_FALSE(rules.is_discarded());
  ASSERT_EQ(rules["data"]["groups"].size(), 1u) << rules.dump();
  EXPECT_EQ(rules["data"]["groups"][0]["name"], "e2e");
  EXPECT_EQ(rules["data"]["groups"][0]["rules"][1]["state"], "firing");
  json api_alerts = json::parse(http_get(port, "/api/v1/alerts").body, nullptr, false);
  ASSERT_EQ(api_alerts["data"]["alerts"].size(), 2u) << api_alerts.dump();
  EXPECT_EQ(api_alerts["data"]["alerts"][0]["annotations"]["summary"], "answer is 42");
  auto active_since = [](const json& alerts) {
    std::map<std::string, std::string> m;
    for (const auto& a : alerts["data"]["alerts"])
      m[a["labels"]["alertname"].get<std::string>() + "/" + a["state"].get<std::string>()] =
          a["activeAt"];
    return m;
  };
  auto before = active_since(api_alerts);
  ASSERT_EQ(before.size(), 2u) << api_alerts.dump();
  ASSERT_TRUE(before.count("AlwaysFiring/firing") && before.count("LongPending/pending"));

  // SIGHUP with a changed instance (an option and a new group): the host
  // builds a new rules instance, which keeps the alerts, pending and firing,
  // with their activeAt.
  {
    std::ifstream in(dir + "/moni.toml");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find(pipeline), pipeline.size(), "");
    const std::string ev = "evaluation_interval = \"1s\"\n";
    text.insert(text.find(ev) + ev.size(), "resend_delay = \"2m\"\n");
    std::ofstream(dir + "/moni.toml")
        << text << "[[collectors.rules.group]]\nname = \"added\"\n"
        << "[[collectors.rules.group.rule]]\nrecord = \"e2e:added\"\nexpr = \"vector(1)\"\n"
        << pipeline;
  }
  ASSERT_EQ(kill(pid, SIGHUP), 0);
  for (int i = 0; i < 300; ++i) {  // up to 30 s
    rules = json::parse(http_get(port, "/api/v1/rules").body, nullptr, false);
    if (!rules.is_discarded() && rules["data"]["groups"].size() == 2 &&
        rules["data"]["groups"][1]["lastEvaluation"] != "0001-01-01T00:00:00Z")
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_EQ(rules["data"]["groups"].size(), 2u) << "not reloaded: see " << dir << "/moni.log";
  api_alerts = json::parse(http_get(port, "/api/v1/alerts").body, nullptr, false);
  EXPECT_EQ(active_since(api_alerts), before) << api_alerts.dump();

  // A reload with an error in a rule is refused with its position, and the
  // rules in use go on.
  {
    std::ifstream in(dir + "/moni.toml");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("expr = \"vector(1)\""), 18, "expr = \"vector(1\"");
    std::ofstream(dir + "/moni.toml") << text;
  }
  ASSERT_EQ(kill(pid, SIGHUP), 0);
  std::string log;
  for (int i = 0; i < 300 && log.find("reload failed") == std::string::npos; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(dir + "/moni.log");
    log.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ASSERT_NE(log.find("reload failed"), std::string::npos) << log;
  EXPECT_NE(log.find(dir + "/moni.toml:"), std::string::npos) << log;
  EXPECT_NE(log.find("could not parse expression"), std::string::npos) << log;
  api_alerts = json::parse(http_get(port, "/api/v1/alerts").body, nullptr, false);
  EXPECT_EQ(active_since(api_alerts), before) << api_alerts.dump();

  stop(pid);
  std::filesystem::remove_all(dir);
}

}  // namespace
