// The rules plugin through the harness: config errors with file:line:column
// (instance table and rule files), rule files (TOML and Prometheus YAML),
// collection cycles emitting recorded series and ALERTS, the HTTP API and
// the self metrics.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "memory_store.hpp"
#include "plugin_harness.hpp"

namespace {

using moni::promql::test_support::MemoryStore;
using moni::testing::PluginHarness;
using nlohmann::json;

constexpr int64_t kT0 = 1'700'000'000'000;

std::string load_error(const std::string& body) {
  auto h = PluginHarness::load(moni::testing::plugin_path("rules"), body);
  return h ? std::string("(loaded)") : h.error().message;
}

bool has_line(const std::string& all, const std::string& want) {
  return all.find(want) != std::string::npos;
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/moni-rules-test-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string write(const std::string& name, const std::string& text) const {
    std::string p = path + "/" + name;
    std::ofstream(p) << text;
    return p;
  }
  std::string path;
};

TEST(RulesConfig, ErrorsCarryPositionsAndAllAreReported) {
  std::string e = load_error(R"t(interval = "15s"
[[group]]
name = "g"
[[group.rule]]
record = "bad name"
expr = "sum(x"
[[group.rule]]
alert = "A"
expr = "up == 0"
for = "5x"
annotations = { s = "{{ nosuch }}" }
unknown = 1
[[group.rule]]
record = "r"
expr = "rate(x[5m])[10m:]"
[[group]]
name = "g"
interval = "5s"
)t");
  // The expression's own position plus the parse error's offset in it.
  EXPECT_TRUE(has_line(e,
                       "test.toml:6:14: rules: group \"g\": rule \"bad name\": could not parse "
                       "expression: 1:6: parse error: "))
      << e;
  EXPECT_TRUE(has_line(e, "rule \"bad name\": invalid recording rule name: bad name")) << e;
  EXPECT_TRUE(has_line(e, "test.toml:10:7: rules: ")) << e;
  EXPECT_TRUE(has_line(e, "for: invalid duration \"5x\"")) << e;
  EXPECT_TRUE(has_line(e, "test.toml:12:11: rules: unknown option 'group[0].rule[1].unknown'"))
      << e;
  EXPECT_TRUE(has_line(e,
                       "rule \"A\": annotation \"s\": template: __alert_A:1:4: function "
                       "\"nosuch\" not defined"))
      << e;
  EXPECT_TRUE(has_line(e,
                       "test.toml:15:8: rules: group \"g\": rule \"r\": the expression must "
                       "evaluate to an instant vector or a scalar, not a range vector"))
      << e;
  EXPECT_TRUE(has_line(e, "test.toml:16:1: rules: group name \"g\" is repeated in the same file"))
      << e;
  EXPECT_TRUE(has_line(e, "interval 5s is shorter than the instance's interval 15s")) << e;
}

TEST(RulesConfig, RuleFilesTomlAndYaml) {
  TempDir d;
  d.write("a.toml", R"t([[group]]
name = "from_toml"
interval = "30s"
[[group.rule]]
record = "job:up:sum"
expr = "sum by (job) (up)"
)t");
  d.write("b.yml", R"t(groups:
  - name: from_yaml
    rules:
      - alert: Down
        expr: up == 0
        for: 5m
        labels:
          severity: page
)t");
  d.write("c.txt", "ignored: not matched by the globs");
  auto h = PluginHarness::load(
      moni::testing::plugin_path("rules"),
      "rule_files = [\"" + d.path + "/*.toml\", \"" + d.path + "/*.yml\"]\ninterval = \"15s\"\n");
  ASSERT_TRUE(h) << h.error().message;
  MemoryStore store;
  (*h)->set_storage(store.reader());
  ASSERT_TRUE((*h)->start().ok());
  auto r = (*h)->http("GET", "/api/v1/rules");
  ASSERT_EQ(r.status, 200u) << r.body;
  json j = json::parse(r.body);
  ASSERT_EQ(j["data"]["groups"].size(), 2u) << r.body;
  EXPECT_EQ(j["data"]["groups"][0]["name"], "from_toml");
  EXPECT_EQ(j["data"]["groups"][0]["file"], d.path + "/a.toml");
  EXPECT_EQ(j["data"]["groups"][0]["interval"], 30);
  EXPECT_EQ(j["data"]["groups"][1]["name"], "from_yaml");
  EXPECT_EQ(j["data"]["groups"][1]["interval"], 15) << "the instance interval is the default";
  EXPECT_EQ(j["data"]["groups"][1]["rules"][0]["duration"], 300);
  EXPECT_EQ(j["data"]["groups"][1]["rules"][0]["health"], "unknown");

  d.write("bad.toml", "[[group]]\nname = \"x\"\n[[group.rule]]\nalert = \"A\"\nexpr = \"up ==\"\n");
  std::string body =
      "rule_files = [\"" + d.path + "/bad.toml\", \"" + d.path + "/missing.toml\"]\n";
  std::string e = load_error(body);
  EXPECT_TRUE(has_line(e, d.path + "/bad.toml:5:")) << e;
  EXPECT_TRUE(has_line(e, "could not parse expression")) << e;
  // The missing entry is named by its position in the config, as every
  // other config error is.
  size_t col = body.find("\"" + d.path + "/missing.toml") + 1;
  EXPECT_TRUE(has_line(e, "test.toml:1:" + std::to_string(col) +
                              ": rules: rule_files[1]: " + d.path + "/missing.toml does not exist"))
      << e;
}

TEST(RulesPlugin, CollectEmitsRecordedSeriesAlertsAndServesThem) {
  MemoryStore store;
  auto lbl = [](std::initializer_list<moni::Label> l) { return moni::Labels(l); };
  for (int64_t t = kT0 - 600'000; t <= kT0 + 600'000; t += 15'000) {
    store.add(lbl({{"__name__", "up"}, {"instance", "a"}, {"job", "node"}}), t, 0);
    store.add(lbl({{"__name__", "up"}, {"instance", "b"}, {"job", "node"}}), t, 1);
  }
  auto h = PluginHarness::load(moni::testing::plugin_path("rules"), R"t(interval = "15s"
evaluation_interval = "1m"
external_url = "http://moni.example:9095/"
[[group]]
name = "node"
[[group.rule]]
record = "job:up:sum"
expr = "sum by (job) (up)"
[[group.rule]]
alert = "InstanceDown"
expr = "up == 0"
labels = { severity = "page" }
annotations = { summary = "{{ $labels.instance }} of {{ $labels.job }} is down" }
)t");
  ASSERT_TRUE(h) << h.error().message;
  (*h)->set_storage(store.reader());
  ASSERT_TRUE((*h)->start().ok());
  std::vector<moni::testing::OwnedSample> all;
  for (int64_t t = kT0; t <= kT0 + 210'000; t += 15'000) {
    auto b = (*h)->collect(t);
    ASSERT_TRUE(b) << b.error().message;
    for (auto& s : b->samples) all.push_back(s);
  }
  // Three evaluations (1m apart) in 3.5 minutes after the first slot.
  std::vector<int64_t> rec_ts, alert_ts;
  for (const auto& s : all) {
    if (s.name() == "job:up:sum") {
      EXPECT_EQ(s.value, 1);
      EXPECT_EQ(s.label("job"), "node");
      rec_ts.push_back(s.timestamp_ms);
    }
    if (s.name() == "ALERTS") {
      EXPECT_EQ(s.label("alertname"), "InstanceDown");
      EXPECT_EQ(s.label("alertstate"), "firing");
      EXPECT_EQ(s.label("instance"), "a");
      EXPECT_EQ(s.label("severity"), "page");
      alert_ts.push_back(s.timestamp_ms);
    }
  }
  ASSERT_GE(rec_ts.size(), 3u);
  EXPECT_EQ(rec_ts[1] - rec_ts[0], 60'000);
  // ALERTS start once `for` state is restored, after the second evaluation.
  ASSERT_FALSE(alert_ts.empty());
  EXPECT_EQ(alert_ts[0], rec_ts[2]);

  json a = json::parse((*h)->http("GET", "/api/v1/alerts").body);
  ASSERT_EQ(a["data"]["alerts"].size(), 1u) << a.dump();
  EXPECT_EQ(a["data"]["alerts"][0]["annotations"]["summary"], "a of node is down");
  EXPECT_EQ(a["data"]["alerts"][0]["state"], "firing");
  json rr = json::parse((*h)->http("GET", "/api/v1/rules?type=alert").body);
  ASSERT_EQ(rr["data"]["groups"][0]["rules"].size(), 1u);
  EXPECT_EQ(rr["data"]["groups"][0]["rules"][0]["type"], "alerting");
  EXPECT_EQ(rr["data"]["groups"][0]["rules"][0]["state"], "firing");
  auto bad = (*h)->http("GET", "/api/v1/rules?type=nope");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_EQ(json::parse(bad.body)["errorType"], "bad_data");

  auto m = (*h)->self_metrics();
  auto ev = m.find("moni_rules_evaluations_total");
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].label("rule_group"), "test.toml;node");
  EXPECT_EQ(ev[0].value, 2.0 * static_cast<double>(rec_ts.size()));
  auto fails = m.find("moni_rules_evaluation_failures_total");
  ASSERT_EQ(fails.size(), 1u);
  EXPECT_EQ(fails[0].value, 0);
}

// The host keeps an instance whose options are unchanged across a reload, so
// the plugin notices an edited rule file itself: the new rules are evaluated,
// a firing alert of an unchanged rule keeps firing with its activeAt, the
// series of a removed rule end with a staleness marker; a file with an error
// leaves the rules in use, reported once with file:line:col, until fixed.
TEST(RulesPlugin, EditedRuleFileIsReloadedKeepingAlertState) {
  TempDir d;
  MemoryStore store;
  for (int64_t t = kT0 - 600'000; t <= kT0 + 3'600'000; t += 15'000)
    store.add(moni::Labels({{"__name__", "up"}, {"instance", "a"}}), t, 0);
  const std::string v1 = R"(groups:
  - name: g
    interval: 15s
    rules:
      - record: old_rule
        expr: vector(1)
      - alert: Down
        expr: up == 0
        for: 30s
)";
  d.write("r.yml", v1);
  auto h = PluginHarness::load(moni::testing::plugin_path("rules"),
                               "interval = \"15s\"\nrule_files = [\"" + d.path + "/*.yml\"]\n");
  ASSERT_TRUE(h) << h.error().message;
  (*h)->set_storage(store.reader());
  ASSERT_TRUE((*h)->start().ok());
  int64_t t = kT0;
  auto collect = [&] {
    auto b = (*h)->collect(t += 15'000);
    EXPECT_TRUE(b) << b.error().message;
    return b ? std::move(*b) : moni::testing::OwnedBatch{};
  };
  std::string active_at;
  for (int i = 0; i < 8 && active_at.empty(); ++i) {
    collect();
    json a = json::parse((*h)->http("GET", "/api/v1/alerts").body);
    for (const auto& x : a["data"]["alerts"])
      if (x["state"] == "firing") active_at = x["activeAt"];
  }
  ASSERT_FALSE(active_at.empty()) << "never fired";

  // Edit: old_rule removed, new_rule added, Down unchanged.
  d.write("r.yml", R"(groups:
  - name: g
    interval: 15s
    rules:
      - record: new_rule
        expr: vector(2) + 0
      - alert: Down
        expr: up == 0
        for: 30s
)");
  auto b = collect();
  auto fresh = b.find("new_rule");
  ASSERT_EQ(fresh.size(), 1u) << "the edited file was not loaded";
  auto gone = b.find("old_rule");
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_TRUE(moni::is_stale_nan(gone[0].value));
  auto alerts = b.find("ALERTS");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].label("alertstate"), "firing");
  json a = json::parse((*h)->http("GET", "/api/v1/alerts").body);
  ASSERT_EQ(a["data"]["alerts"].size(), 1u);
  EXPECT_EQ(a["data"]["alerts"][0]["activeAt"], active_at);
  EXPECT_EQ((*h)->self_metrics().find("moni_rules_rule_files_last_reload_successful")[0].value, 1);

  // A broken edit: reported once with its position; the rules in use stay.
  d.write("r.yml", R"(groups:
  - name: g
    interval: 15s
    rules:
      - record: broken
        expr: sum(vector(1)
)");
  for (int i = 0; i < 2; ++i) {
    b = collect();
    EXPECT_EQ(b.find("new_rule").size(), 1u);
    EXPECT_EQ(b.find("ALERTS").size(), 1u);
  }
  size_t reported = 0;
  for (const auto& l : (*h)->logs())
    if (l.find(d.path + "/r.yml:6:") != std::string::npos &&
        l.find("rules in use are kept") != std::string::npos)
      ++reported;
  EXPECT_EQ(reported, 1u) << [&] {
    std::string all;
    for (const auto& l : (*h)->logs()) all += l + "\n";
    return all;
  }();
  EXPECT_EQ((*h)->self_metrics().find("moni_rules_rule_files_last_reload_successful")[0].value, 0);
  // Fixed again: loaded.
  d.write("r.yml", v1);
  b = collect();
  EXPECT_EQ(b.find("old_rule").size(), 1u);
  EXPECT_EQ((*h)->self_metrics().find("moni_rules_rule_files_last_reload_successful")[0].value, 1);
}

// A reload that rebuilds the instance (an option changed): the host creates
// and starts the new instance while the old one runs, then stops and
// destroys the old one. The new instance goes on with the old one's alerts
// and schedule; the old one, if called again, evaluates nothing.
TEST(RulesPlugin, ReloadedInstanceTakesOverAlertState) {
  TempDir d;
  MemoryStore store;
  for (int64_t t = kT0 - 600'000; t <= kT0 + 3'600'000; t += 15'000)
    store.add(moni::Labels({{"__name__", "up"}, {"instance", "a"}}), t, 0);
  const std::string body = R"t(interval = "15s"
[[group]]
name = "g"
interval = "15s"
[[group.rule]]
alert = "Down"
expr = "up == 0"
for = "30s"
)t";
  auto h1 = PluginHarness::load(moni::testing::plugin_path("rules"), body, "rules", d.path);
  ASSERT_TRUE(h1) << h1.error().message;
  (*h1)->set_storage(store.reader());
  ASSERT_TRUE((*h1)->start().ok());
  int64_t t = kT0;
  std::string active_at;
  std::vector<int64_t> eval_ts;
  for (int i = 0; i < 8 && active_at.empty(); ++i) {
    auto b = (*h1)->collect(t += 15'000);
    ASSERT_TRUE(b);
    json a = json::parse((*h1)->http("GET", "/api/v1/alerts").body);
    for (const auto& x : a["data"]["alerts"])
      if (x["state"] == "firing") active_at = x["activeAt"];
    for (const auto& s : b->find("ALERTS")) eval_ts.push_back(s.timestamp_ms);
  }
  ASSERT_FALSE(active_at.empty());
  ASSERT_FALSE(eval_ts.empty());

  auto h2 = PluginHarness::load(moni::testing::plugin_path("rules"),
                                "resend_delay = \"2m\"\n" + body, "rules", d.path);
  ASSERT_TRUE(h2) << h2.error().message;
  (*h2)->set_storage(store.reader());
  ASSERT_TRUE((*h2)->start().ok());
  // The old instance still runs until the swap.
  auto b = (*h1)->collect(t += 15'000);
  ASSERT_TRUE(b);
  ASSERT_EQ(b->find("ALERTS").size(), 1u);
  eval_ts.push_back(b->find("ALERTS")[0].timestamp_ms);
  b = (*h2)->collect(t += 15'000);
  ASSERT_TRUE(b);
  auto s = b->find("ALERTS");
  ASSERT_EQ(s.size(), 1u) << "ALERTS from the first evaluation after a reload";
  EXPECT_EQ(s[0].label("alertstate"), "firing");
  EXPECT_EQ(s[0].timestamp_ms, eval_ts.back() + 15'000) << "the schedule goes on";
  json a = json::parse((*h2)->http("GET", "/api/v1/alerts").body);
  ASSERT_EQ(a["data"]["alerts"].size(), 1u);
  EXPECT_EQ(a["data"]["alerts"][0]["activeAt"], active_at);
  // Retired: a late call of the old instance evaluates nothing.
  b = (*h1)->collect(t + 15'000);
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->samples.empty());
  (*h1)->stop();
  (*h1).reset();
  b = (*h2)->collect(t += 15'000);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->find("ALERTS").size(), 1u);
}

TEST(RulesPlugin, StartFailsWithoutStorage) {
  auto h = PluginHarness::load(moni::testing::plugin_path("rules"), "storage = \"tsdb\"\n");
  ASSERT_TRUE(h) << h.error().message;
  auto r = (*h)->start();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "rules: storage instance 'tsdb' not found");
}

}  // namespace

namespace {

// prom_api keeps answering /api/v1/rules and /api/v1/alerts with empty lists
// when no rules instance is configured: fallback routes the rules plugin's
// ordinary routes replace in the host.
TEST(PromApiFallback, EmptyRulesAndAlertsWithoutARulesInstance) {
  MemoryStore store;
  auto h = PluginHarness::load(moni::testing::plugin_path("prom_api"), "");
  ASSERT_TRUE(h) << h.error().message;
  (*h)->set_storage(store.reader());
  ASSERT_TRUE((*h)->start().ok());
  auto routes = (*h)->routes();
  EXPECT_NE(std::find(routes.begin(), routes.end(), "/api/v1/rules"), routes.end());
  EXPECT_NE(std::find(routes.begin(), routes.end(), "/api/v1/alerts"), routes.end());
  EXPECT_EQ((*h)->http("GET", "/api/v1/rules").body,
            R"({"status":"success","data":{"groups":[]}})");
  EXPECT_EQ((*h)->http("GET", "/api/v1/alerts").body,
            R"({"status":"success","data":{"alerts":[]}})");
}

}  // namespace
