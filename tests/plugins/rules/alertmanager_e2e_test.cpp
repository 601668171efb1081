// End to end: the rules plugin over a real lmdb_tsdb instance, delivering to
// a real prometheus-alertmanager 0.25 on loopback. A condition is made true
// in storage: the alert appears in Alertmanager's API with its labels and
// templated annotations; the condition is cleared: the alert resolves.
// Also: the shipped default rule files load in the plugin, and their YAML
// form passes the real promtool.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "alertmanager_peer.hpp"
#include "plugin_harness.hpp"
#include "prometheus_peer.hpp"
#include "rule_config.hpp"
#include "yaml_rules.hpp"

namespace moni::rules {
namespace {

using moni::testing::PluginHarness;
using test_support::AlertmanagerPeer;
using test_support::find_alert;

const std::string kRulesDir = std::string(MONI_SOURCE_DIR) + "/config/rules";

int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/moni-rules-e2e-XXXXXX";
    path = mkdtemp(tmpl) ? tmpl : "";
  }
  ~TempDir() {
    std::error_code ec;
    if (!path.empty()) std::filesystem::remove_all(path, ec);
  }
};

Result<void> write_value(PluginHarness& tsdb, double v, int64_t ts) {
  Batch b;
  b.add("moni_e2e_temperature", {{"instance", "sensor-1"}, {"job", "e2e"}}, v, ts);
  return tsdb.write(b);
}

double self_metric(PluginHarness& h, const std::string& name) {
  auto b = h.self_metrics();
  auto s = b.find(name);
  return s.empty() ? -1 : s.front().value;
}

TEST(RulesAlertmanagerE2E, FiringAlertReachesAlertmanagerAndResolves) {
  if (!AlertmanagerPeer::available()) GTEST_SKIP() << AlertmanagerPeer::kBinary << " missing";
  AlertmanagerPeer am;
  ASSERT_TRUE(am.start()) << am.error();
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());

  // The rule comes from a Prometheus YAML rule file, as a user brings it.
  std::string rule_file = dir.path + "/e2e.yml";
  std::ofstream(rule_file) << R"(groups:
  - name: e2e
    interval: 1s
    rules:
      - alert: MoniE2ETooHot
        expr: moni_e2e_temperature > 50
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} is at {{ $value }} degrees"
          description: "job {{ $labels.job }}"
)";

  auto tsdb = PluginHarness::load(moni::testing::plugin_path("lmdb_tsdb"), "", "tsdb", dir.path);
  ASSERT_TRUE(tsdb) << tsdb.error().message;
  ASSERT_TRUE((*tsdb)->start());

  std::string cfg =
      "interval = \"1s\"\n"
      "rule_files = [\"" +
      rule_file +
      "\"]\n"
      "alertmanagers = [\"" +
      am.url() +
      "\"]\n"
      "external_url = \"http://moni.test:9095\"\n";
  auto rules = PluginHarness::load(moni::testing::plugin_path("rules"), cfg, "rules", dir.path);
  ASSERT_TRUE(rules) << rules.error().message;
  (*rules)->set_storage((*tsdb)->reader());
  ASSERT_TRUE((*rules)->start());

  // Simulated evaluation times, 10 s in the past so that a resolution's
  // endsAt is already over for Alertmanager. The engine evaluates a group
  // first at its next slot after the first collect.
  int64_t t = wall_ms() - 10000;
  ASSERT_TRUE(write_value(**tsdb, 72.5, t - 1000));  // the condition holds
  auto out = (*rules)->collect(t);
  ASSERT_TRUE(out) << out.error().message;
  // ALERTS samples start once the `for` state restore has run (after the
  // first evaluations, as Prometheus).
  const moni::testing::OwnedSample* series = nullptr;
  int64_t at = t;
  for (int i = 0; i < 5 && !series; ++i) {
    at += 1000;
    out = (*rules)->collect(at);
    ASSERT_TRUE(out) << out.error().message;
    series = out->one("ALERTS", "alertname", "MoniE2ETooHot");
  }
  ASSERT_NE(series, nullptr) << "no ALERTS series emitted: " << [&] {
    std::string d;
    for (const auto& x : out->samples) d += x.name() + " ";
    for (const auto& x : (*rules)->self_metrics().samples)
      d += "\n" + x.name() + "=" + std::to_string(x.value);
    for (const auto& l : (*rules)->logs()) d += "\n" + l;
    return d;
  }();
  EXPECT_EQ(series->label("alertstate"), "firing");
  EXPECT_EQ(series->label("severity"), "page");

  auto fired =
      am.wait_alerts([](const auto& a) { return !find_alert(a, "MoniE2ETooHot").is_null(); }, 10);
  auto alert = find_alert(fired, "MoniE2ETooHot");
  ASSERT_FALSE(alert.is_null()) << fired.dump() << "\nrules log:\n"
                                << [&] {
                                     std::string s;
                                     for (const auto& l : (*rules)->logs()) s += l + "\n";
                                     return s;
                                   }();
  EXPECT_EQ(alert["labels"], (nlohmann::json{{"alertname", "MoniE2ETooHot"},
                                             {"instance", "sensor-1"},
                                             {"job", "e2e"},
                                             {"severity", "page"}}));
  EXPECT_EQ(alert["annotations"]["summary"], "sensor-1 is at 72.5 degrees");
  EXPECT_EQ(alert["annotations"]["description"], "job e2e");
  EXPECT_EQ(alert["generatorURL"],
            "http://moni.test:9095/graph?g0.expr=moni_e2e_temperature+%3E+50&g0.tab=1");
  EXPECT_EQ(alert["status"]["state"], "active");

  // The condition is cleared just after the last evaluation (at or before
  // `at`), so the next one, whose slot lies in (at, at + 1s] wherever the
  // group's hash puts it, sees it: the alert resolves there, and its ALERTS
  // series ends with a staleness marker.
  ASSERT_TRUE(write_value(**tsdb, 20, at + 1));
  at += 1000;
  out = (*rules)->collect(at);
  ASSERT_TRUE(out) << out.error().message;
  auto ended = out->find("ALERTS", "alertname", "MoniE2ETooHot");
  ASSERT_EQ(ended.size(), 1u);
  EXPECT_TRUE(is_stale_nan(ended.front().value)) << ended.front().value;
  at += 1000;
  out = (*rules)->collect(at);
  ASSERT_TRUE(out) << out.error().message;
  EXPECT_TRUE(out->find("ALERTS", "alertname", "MoniE2ETooHot").empty());
  auto resolved =
      am.wait_alerts([](const auto& a) { return find_alert(a, "MoniE2ETooHot").is_null(); }, 10);
  EXPECT_TRUE(find_alert(resolved, "MoniE2ETooHot").is_null()) << resolved.dump();
  // Alertmanager shows the resolution once it has read the request; the
  // notifier counts it once it has read the answer, and only then leaves the
  // queue empty: read the counters after that.
  for (int i = 0; i < 100 && self_metric(**rules, "moni_rules_notifications_queue_length") != 0;
       ++i)
    test_support::sleep_poll_step();
  EXPECT_EQ(self_metric(**rules, "moni_rules_notifications_queue_length"), 0);
  EXPECT_EQ(self_metric(**rules, "moni_rules_notifications_sent_total"), 2);
  EXPECT_EQ(self_metric(**rules, "moni_rules_notifications_errors_total"), 0);

  (*rules)->stop();
  (*tsdb)->stop();
}

// Alertmanager's own count of the alerts it received with `status`
// (firing/resolved), summed over API versions; -1 when /metrics fails.
double am_received(const AlertmanagerPeer& am, const std::string& status) {
  auto r = promql::test_support::http_get(am.port(), "/metrics");
  if (r.status != 200) return -1;
  double sum = 0;
  std::istringstream in(r.body);
  for (std::string line; std::getline(in, line);)
    if (line.rfind("alertmanager_alerts_received_total{", 0) == 0 &&
        line.find("status=\"" + status + "\"") != std::string::npos)
      sum += std::stod(line.substr(line.rfind(' ') + 1));
  return sum;
}

// A configuration reload (the host builds a new rules instance, starts it,
// then stops and destroys the old one before the new one's first collect)
// keeps a firing alert as Prometheus does: still firing in the new instance
// with the same activeAt, ALERTS from its first evaluation on, and nothing
// sent again to Alertmanager (no firing repeat before resend_delay, no
// resolution).
TEST(RulesAlertmanagerE2E, ReloadKeepsFiringAlertWithoutNotifyingAgain) {
  if (!AlertmanagerPeer::available()) GTEST_SKIP() << AlertmanagerPeer::kBinary << " missing";
  AlertmanagerPeer am;
  ASSERT_TRUE(am.start()) << am.error();
  TempDir dir;
  ASSERT_FALSE(dir.path.empty());
  std::string rule_file = dir.path + "/reload.yml";
  std::ofstream(rule_file) << R"(groups:
  - name: reload
    interval: 1s
    rules:
      - alert: MoniReloadHot
        expr: moni_e2e_temperature > 50
        for: 2s
        labels:
          severity: page
)";
  auto tsdb = PluginHarness::load(moni::testing::plugin_path("lmdb_tsdb"), "", "tsdb", dir.path);
  ASSERT_TRUE(tsdb) << tsdb.error().message;
  ASSERT_TRUE((*tsdb)->start());
  std::string cfg = "interval = \"1s\"\nrule_files = [\"" + rule_file + "\"]\nalertmanagers = [\"" +
                    am.url() + "\"]\n";
  auto rules = PluginHarness::load(moni::testing::plugin_path("rules"), cfg, "rules", dir.path);
  ASSERT_TRUE(rules) << rules.error().message;
  (*rules)->set_storage((*tsdb)->reader());
  ASSERT_TRUE((*rules)->start());

  int64_t t = wall_ms() - 30000;
  ASSERT_TRUE(write_value(**tsdb, 80, t - 1000));  // holds for the 5m lookback
  // Until it fires (restore after two evaluations, then `for: 2s`).
  std::string firing_at;
  for (int i = 0; i < 10 && firing_at.empty(); ++i) {
    auto out = (*rules)->collect(t += 1000);
    ASSERT_TRUE(out) << out.error().message;
    auto j = nlohmann::json::parse((*rules)->http("GET", "/api/v1/alerts").body);
    for (const auto& a : j["data"]["alerts"])
      if (a["state"] == "firing") firing_at = a["activeAt"];
  }
  ASSERT_FALSE(firing_at.empty()) << "never fired";
  auto fired =
      am.wait_alerts([](const auto& a) { return !find_alert(a, "MoniReloadHot").is_null(); }, 20);
  ASSERT_FALSE(find_alert(fired, "MoniReloadHot").is_null()) << fired.dump();
  for (int i = 0; i < 200 && am_received(am, "firing") < 1; ++i) test_support::sleep_poll_step();
  double firing_before = am_received(am, "firing");
  ASSERT_GE(firing_before, 1);

  // The reload: another option changes, so the instance is rebuilt.
  auto rules2 = PluginHarness::load(moni::testing::plugin_path("rules"),
                                    cfg + "resend_delay = \"2m\"\n", "rules", dir.path);
  ASSERT_TRUE(rules2) << rules2.error().message;
  (*rules2)->set_storage((*tsdb)->reader());
  ASSERT_TRUE((*rules2)->start());
  (*rules)->stop();
  (*rules).reset();

  for (int i = 0; i < 4; ++i) {
    auto out = (*rules2)->collect(t += 1000);
    ASSERT_TRUE(out) << out.error().message;
    // Every evaluation, the first included, writes the firing ALERTS series.
    auto s = out->one("ALERTS", "alertname", "MoniReloadHot");
    ASSERT_NE(s, nullptr) << "evaluation " << i << " after the reload wrote no ALERTS";
    EXPECT_EQ(s->label("alertstate"), "firing");
  }
  auto j = nlohmann::json::parse((*rules2)->http("GET", "/api/v1/alerts").body);
  ASSERT_EQ(j["data"]["alerts"].size(), 1u) << j.dump();
  EXPECT_EQ(j["data"]["alerts"][0]["state"], "firing");
  EXPECT_EQ(j["data"]["alerts"][0]["activeAt"], firing_at);

  // Then the condition clears: the new instance resolves the alert, and that
  // is the first thing it sends. Alertmanager counts it, and nothing else.
  ASSERT_TRUE(write_value(**tsdb, 20, t + 1));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE((*rules2)->collect(t += 1000));
  for (int i = 0; i < 200 && am_received(am, "resolved") < 1; ++i) test_support::sleep_poll_step();
  EXPECT_EQ(am_received(am, "resolved"), 1);
  EXPECT_EQ(am_received(am, "firing"), firing_before) << "a firing alert was sent again";
  for (int i = 0; i < 100 && self_metric(**rules2, "moni_rules_notifications_queue_length") != 0;
       ++i)
    test_support::sleep_poll_step();
  EXPECT_EQ(self_metric(**rules2, "moni_rules_notifications_sent_total"), 1);
  (*rules2)->stop();
  (*tsdb)->stop();
}

// The Alertmanager options of the rules instance: every error at once, with
// its position, and unknown keys rejected.
TEST(RulesAlertmanagerConfig, ErrorsWithPositions) {
  auto r = PluginHarness::load(moni::testing::plugin_path("rules"),
                               "alertmanagers = [\"http://127.0.0.1:9093\", \"ftp://x\"]\n"
                               "notification_queue_capacity = 0\n"
                               "external_url = \"moni.example\"\n"
                               "[[alertmanager]]\n"
                               "timeout = \"soon\"\n"
                               "password = \"a\"\n"
                               "password_file = \"b\"\n"
                               "bogus = 1\n");
  ASSERT_FALSE(r);
  const std::string& m = r.error().message;
  for (const char* want :
       {"test.toml:1:", "alertmanagers[1]: url \"ftp://x\" must start with http:// or https://",
        "test.toml:2:", "notification_queue_capacity must be in [1, 10000000] (got 0)",
        "test.toml:3:", "external_url: url \"moni.example\" must start with http://",
        "missing required option 'url'",
        "test.toml:5:", "alertmanager[0].timeout: invalid duration \"soon\"", "test.toml:7:",
        "alertmanager[0].password_file: set either password or password_file, not both",
        "alertmanager[0].username: required with a password (basic auth)",
        "test.toml:8:", "unknown option 'alertmanager[0].bogus'"})
    EXPECT_NE(m.find(want), std::string::npos) << want << "\nin:\n" << m;
}

TEST(RulesAlertmanagerConfig, TablesAndShorthandTogether) {
  auto r = PluginHarness::load(moni::testing::plugin_path("rules"),
                               "alertmanagers = [\"http://127.0.0.1:9093\"]\n"
                               "notification_queue_capacity = 50\n"
                               "[[alertmanager]]\n"
                               "url = \"https://am.example:9093/base\"\n"
                               "timeout = \"3s\"\n"
                               "path_prefix = \"/am\"\n"
                               "username = \"u\"\n"
                               "password = \"p\"\n"
                               "tls_insecure_skip_verify = true\n");
  ASSERT_TRUE(r) << r.error().message;
}

std::vector<std::string> shipped_rule_files() {
  std::vector<std::string> out;
  for (const auto& e : std::filesystem::directory_iterator(kRulesDir))
    if (e.path().extension() == ".toml") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Every shipped rule file loads in the plugin: its exprs parse with the
// PromQL engine, its templates compile, its groups validate.
TEST(RulesDefaultRules, LoadInThePlugin) {
  auto files = shipped_rule_files();
  ASSERT_GE(files.size(), 2u);
  std::string list;
  for (const auto& f : files) list += (list.empty() ? "\"" : ", \"") + f + "\"";
  auto rules =
      PluginHarness::load(moni::testing::plugin_path("rules"), "rule_files = [" + list + "]\n");
  ASSERT_TRUE(rules) << rules.error().message;
  std::vector<std::string> errors;
  size_t n_rules = 0;
  for (const auto& f : files) {
    auto groups = load_toml_rule_file(f, errors);
    for (const auto& g : groups) n_rules += g.rules.size();
  }
  ASSERT_TRUE(errors.empty()) << errors.front();
  EXPECT_GE(n_rules, 9u);
}

// The same rules in Prometheus's YAML form pass the real promtool.
TEST(RulesDefaultRules, YamlFormPassesPromtool) {
  if (access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool missing";
  TempDir dir;
  for (const auto& f : shipped_rule_files()) {
    std::vector<std::string> errors;
    auto groups = load_toml_rule_file(f, errors);
    ASSERT_TRUE(errors.empty()) << errors.front();
    std::string yml = dir.path + "/" + std::filesystem::path(f).stem().string() + ".yml";
    std::ofstream(yml) << to_yaml(groups);
    std::string out;
    int rc = promql::test_support::run({"/usr/bin/promtool", "check", "rules", yml}, &out);
    EXPECT_EQ(rc, 0) << f << ":\n" << out;
    // And it reads back into the same groups through the YAML loader.
    auto back = load_prometheus_rule_file(yml);
    ASSERT_TRUE(back) << back.error().message;
    ASSERT_EQ(back->size(), groups.size());
    for (size_t i = 0; i < groups.size(); ++i) {
      ASSERT_EQ((*back)[i].rules.size(), groups[i].rules.size());
      for (size_t j = 0; j < groups[i].rules.size(); ++j)
        EXPECT_EQ((*back)[i].rules[j].expr, groups[i].rules[j].expr);
    }
  }
}

}  // namespace
}  // namespace moni::rules
