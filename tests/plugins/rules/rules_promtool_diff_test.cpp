// Differential test against Prometheus 2.42: the same rule file
// (tests/data/rules/diff/rules.yml) over the same series (series.txt) is
// evaluated by moni's rule engine every minute, as `promtool test rules`
// does. moni's recorded series and firing alerts (labels and annotations)
// at every minute (and ALERTS / ALERTS_FOR_STATE, so pending states too)
// become a promtool unit-test file, which the real promtool then checks by
// evaluating the rules itself: it passes only when both agree. The same file
// then runs through `moni rules test` (moni's runner of promtool's format).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "memory_store.hpp"
#include "prometheus_peer.hpp"
#include "rule_config.hpp"
#include "rule_engine.hpp"
#include "rule_test_runner.hpp"
#include "yaml_rules.hpp"

namespace {

using moni::Label;
using moni::Labels;
using moni::promql::test_support::MemoryStore;
using namespace moni::rules;

constexpr int64_t kStep = 60'000;
constexpr int kMinutes = 30;

const std::string kData = std::string(MONI_TEST_DATA_DIR) + "/rules/diff/";

// promtool's expanding notation: "a+bxn" is a, a+b, ... (n+1 values), "_"
// a missing sample, "stale" a staleness marker, plain numbers as they are.
std::vector<std::optional<double>> expand_values(const std::string& spec) {
  std::vector<std::optional<double>> out;
  std::istringstream in(spec);
  for (std::string tok; in >> tok;) {
    if (tok == "_") {
      out.push_back(std::nullopt);
      continue;
    }
    if (tok == "stale") {
      out.push_back(moni::stale_nan());
      continue;
    }
    auto x = tok.find('x');
    if (x == std::string::npos) {
      out.push_back(std::stod(tok));
      continue;
    }
    std::string ab = tok.substr(0, x);
    int n = std::stoi(tok.substr(x + 1));
    size_t op = ab.find_first_of("+-", 1);
    double a = std::stod(ab.substr(0, op));
    double b = op == std::string::npos ? 0 : std::stod(ab.substr(op));
    double k = a;
    out.push_back(k);
    for (int i = 0; i < n; ++i) {
      k += b;  // incrementally, as promtool does
      out.push_back(k);
    }
  }
  return out;
}

Labels parse_series(const std::string& s) {
  Labels ls;
  auto brace = s.find('{');
  ls.push_back({"__name__", s.substr(0, brace)});
  std::string body = s.substr(brace + 1, s.size() - brace - 2);
  std::istringstream in(body);
  for (std::string kv; std::getline(in, kv, ',');) {
    auto eq = kv.find('=');
    ls.push_back({kv.substr(0, eq), kv.substr(eq + 2, kv.size() - eq - 3)});
  }
  std::sort(ls.begin(), ls.end());
  return ls;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out + "\"";
}

std::string fmt(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string selector(const Labels& ls) {
  std::string name, body;
  for (const auto& l : ls) {
    if (l.name == "__name__") {
      name = l.value;
      continue;
    }
    if (!body.empty()) body += ", ";
    body += l.name + "=" + quote(l.value);
  }
  return name + "{" + body + "}";
}

class Collect : public SampleSink {
 public:
  explicit Collect(MemoryStore& s) : store_(s) {}
  void add(const Labels& l, double v, int64_t t) override {
    store_.add(l, t, v);
    got[t].push_back({l, v});
  }
  void flush() override {}
  std::map<int64_t, std::vector<std::pair<Labels, double>>> got;

 private:
  MemoryStore& store_;
};

TEST(RulesPromtoolDiff, MoniAndPrometheusAgreeOnRecordedSeriesAndAlerts) {
  // ---- input series into moni's in-memory store
  MemoryStore store;
  std::vector<std::pair<std::string, std::string>> series;
  {
    std::ifstream f(kData + "series.txt");
    ASSERT_TRUE(f) << kData + "series.txt";
    for (std::string line; std::getline(f, line);) {
      if (line.empty() || line[0] == '#') continue;
      auto tab = line.find('\t');
      series.emplace_back(line.substr(0, tab), line.substr(tab + 1));
    }
  }
  for (const auto& [s, spec] : series) {
    auto vals = expand_values(spec);
    Labels ls = parse_series(s);
    for (size_t i = 0; i < vals.size(); ++i)
      if (vals[i]) store.add(ls, static_cast<int64_t>(i) * kStep, *vals[i]);
  }

  // ---- moni's engine, every group at every minute like promtool
  auto groups = load_prometheus_rule_file(kData + "rules.yml");
  ASSERT_TRUE(groups) << groups.error().message;
  std::set<std::string> records, alertnames;
  for (const auto& g : *groups)
    for (const auto& r : g.rules)
      (r.record.empty() ? alertnames : records).insert(r.record.empty() ? r.alert : r.record);
  // promtool's rules count as restored from the start, so ALERTS and
  // ALERTS_FOR_STATE (pending states included) are compared too.
  records.insert("ALERTS");
  records.insert("ALERTS_FOR_STATE");
  EngineOptions o;
  o.restore_for_state = false;
  o.external_labels = {{"cluster", "eu1"}};
  o.external_url = "http://moni.example:9095";
  RuleEngine eng(*groups, o);
  Collect sink(store);
  std::vector<OutgoingAlert> notify;
  // Firing alerts per (time, alertname): labels without alertname, annotations.
  std::map<std::pair<int64_t, std::string>, std::vector<Alert>> firing;
  for (int m = 0; m <= kMinutes; ++m) {
    int64_t t = m * kStep;
    for (size_t i = 0; i < eng.group_count(); ++i) eng.eval_group(i, store, t, sink, notify);
    for (const auto& g : *groups)
      for (const auto& r : g.rules) {
        if (r.alert.empty()) continue;
        std::string err;
        EXPECT_NE(eng.health(g.name, r.alert, &err), RuleHealth::Err) << r.alert << ": " << err;
        for (const auto& a : eng.alerts(g.name, r.alert))
          if (a.state == AlertState::Firing) firing[{t, r.alert}].push_back(a);
      }
  }
  size_t firing_count = 0;
  for (const auto& [k, v] : firing) firing_count += v.size();
  EXPECT_GT(firing_count, 20u) << "the data should make every alert fire for a while";

  // ---- the promtool unit test with moni's answers as the expectations
  char tmpl[] = "/tmp/moni-rules-diff-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  std::filesystem::copy_file(kData + "rules.yml", dir + "/rules.yml");
  // The alerts group reads what the recording group records at the same
  // instant, so the order of groups matters. moni evaluates them in file
  // order; promtool 2.42, given no group_eval_order, in Go's (random) map
  // order, which shifted those alerts by one evaluation in about one run in
  // eight. Name moni's order.
  std::ostringstream y;
  y << "rule_files: [rules.yml]\nevaluation_interval: 1m\ngroup_eval_order:";
  for (const auto& g : *groups) y << "\n  - " << quote(g.name);
  y << "\ntests:\n  - interval: 1m\n"
    << "    external_labels:\n      cluster: eu1\n"
    << "    external_url: " << quote(o.external_url) << "\n    input_series:\n";
  for (const auto& [s, spec] : series)
    y << "      - series: " << quote(s) << "\n        values: " << quote(spec) << "\n";
  y << "    alert_rule_test:\n";
  size_t cases = 0;
  for (int m = 0; m <= kMinutes; ++m) {
    int64_t t = m * kStep;
    for (const auto& name : alertnames) {
      y << "      - eval_time: " << m << "m\n        alertname: " << name << "\n";
      auto it = firing.find({t, name});
      if (it == firing.end()) {
        y << "        exp_alerts: []\n";
      } else {
        y << "        exp_alerts:\n";
        for (const auto& a : it->second) {
          y << "          - exp_labels:\n";
          for (const auto& l : a.labels)
            if (l.name != "alertname")
              y << "              " << l.name << ": " << quote(l.value) << "\n";
          if (!a.annotations.empty()) {
            y << "            exp_annotations:\n";
            for (const auto& l : a.annotations)
              y << "              " << l.name << ": " << quote(l.value) << "\n";
          }
        }
      }
      ++cases;
    }
  }
  y << "    promql_expr_test:\n";
  for (int m = 0; m <= kMinutes; ++m) {
    int64_t t = m * kStep;
    for (const auto& name : records) {
      y << "      - expr: " << quote(name) << "\n        eval_time: " << m << "m\n";
      std::vector<std::pair<Labels, double>> at;
      for (const auto& [ls, v] : sink.got[t])
        if (moni::promql::get_label(ls, "__name__") == name && !moni::is_stale_nan(v))
          at.emplace_back(ls, v);
      if (at.empty()) {
        y << "        exp_samples: []\n";
      } else {
        y << "        exp_samples:\n";
        for (const auto& [ls, v] : at)
          y << "          - labels: " << quote(selector(ls)) << "\n            value: " << fmt(v)
            << "\n";
      }
      ++cases;
    }
  }
  std::ofstream(dir + "/test.yml") << y.str();

  const std::string promtool = "/usr/bin/promtool";
  if (!std::filesystem::exists(promtool)) GTEST_SKIP() << promtool << " is not installed";
  std::string out;
  int rc = moni::promql::test_support::run({promtool, "test", "rules", dir + "/test.yml"}, &out);
  EXPECT_EQ(rc, 0) << "promtool disagrees with moni (" << cases << " cases; files kept in " << dir
                   << "):\n"
                   << out;

  // `moni rules test` runs the same promtool test file with moni's engine;
  // it passes, and fails once an expectation is changed.
  std::ostringstream report;
  auto mine = run_rule_tests(dir + "/test.yml", report);
  ASSERT_TRUE(mine) << mine.error().message;
  EXPECT_TRUE(*mine) << report.str();
  std::string text = y.str();
  auto at = text.find("has been down");
  ASSERT_NE(at, std::string::npos);
  text.replace(at, 13, "has been DOWN");
  std::ofstream(dir + "/tampered.yml") << text;
  std::ostringstream report2;
  auto tampered = run_rule_tests(dir + "/tampered.yml", report2);
  ASSERT_TRUE(tampered) << tampered.error().message;
  EXPECT_FALSE(*tampered);
  EXPECT_NE(report2.str().find("alertname: InstanceDown"), std::string::npos) << report2.str();

  // With the groups' order reversed the alerts see the previous minute's
  // records: promtool and moni's runner both disagree with these answers.
  std::string reversed = y.str();
  std::string order, back;
  for (const auto& g : *groups) {
    order += "\n  - " + quote(g.name);
    back = "\n  - " + quote(g.name) + back;
  }
  at = reversed.find(order);
  ASSERT_NE(at, std::string::npos);
  reversed.replace(at, order.size(), back);
  std::ofstream(dir + "/reversed.yml") << reversed;
  std::string out_rev;  // promtool prints the failed cases on stderr
  EXPECT_NE(
      moni::promql::test_support::run(
          {"/bin/sh", "-c", promtool + " test rules " + dir + "/reversed.yml 2>&1"}, &out_rev),
      0);
  EXPECT_NE(out_rev.find("alertname: HighErrorRatio"), std::string::npos) << out_rev;
  std::ostringstream report3;
  auto rev = run_rule_tests(dir + "/reversed.yml", report3);
  ASSERT_TRUE(rev) << rev.error().message;
  EXPECT_FALSE(*rev);
  EXPECT_NE(report3.str().find("alertname: HighErrorRatio"), std::string::npos) << report3.str();
  if (rc == 0) std::filesystem::remove_all(dir);
  RecordProperty("cases", static_cast<int>(cases));
}

// Timing against a real Prometheus 2.42 run (promtool's unit tests count
// every rule as restored from the start, so they cannot show it): the same
// rule file, evaluated every second by Prometheus from its start. moni's
// engine, started just before Prometheus's first evaluation, evaluates the
// group at the very same milliseconds (Prometheus's group hash and slots),
// and writes the same ALERTS and ALERTS_FOR_STATE samples at each of them:
// nothing at the first two evaluations (the `for` state restore runs after
// the second), pending until `for` has passed, firing, kept firing for
// `keep_firing_for` after the condition clears, then gone.
std::string labels_key(const nlohmann::json& metric) {
  std::string k;
  for (const auto& [n, v] : metric.items()) k += n + "=" + v.get<std::string>() + ",";
  return k;
}

std::string labels_key(const Labels& ls) {
  std::string k;
  for (const auto& l : ls) k += l.name + "=" + l.value + ",";
  return k;
}

class TimelineSink : public SampleSink {
 public:
  explicit TimelineSink(MemoryStore& s) : store_(s) {}
  void add(const Labels& l, double v, int64_t t) override {
    store_.add(l, t, v);
    if (!moni::is_stale_nan(v)) got[t][labels_key(l)] = v;
  }
  void flush() override {}
  std::map<int64_t, std::map<std::string, double>> got;

 private:
  MemoryStore& store_;
};

TEST(RulesPrometheusTiming, AlertsTimelineAsARealPrometheusFromStart) {
  namespace ts = moni::promql::test_support;
  if (access("/usr/bin/prometheus", X_OK) != 0) GTEST_SKIP() << "prometheus missing";
  char tmpl[] = "/tmp/moni-rules-timing-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string dir = tmpl;
  std::string rules = dir + "/timing.yml";
  std::ofstream(rules) << R"(groups:
  - name: timing
    rules:
      - record: timing_evals
        expr: vector(1)
      - alert: TimingFor
        expr: vector(time()) % 8 < 4
        for: 2s
        keep_firing_for: 1s
        labels:
          kind: for
      - alert: TimingNow
        expr: vector(time()) % 8 < 4
        labels:
          kind: now
)";
  std::ofstream(dir + "/prometheus.yml")
      << "global:\n  evaluation_interval: 1s\nrule_files:\n  - " << rules << "\n";
  int port = ts::free_port();
  pid_t pid = ts::spawn({"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
                         "--storage.tsdb.path=" + dir + "/data",
                         "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                        dir + "/prometheus.log");
  ASSERT_GT(pid, 0);
  struct Stop {
    pid_t pid;
    std::string dir;
    ~Stop() {
      ts::stop(pid);
      std::filesystem::remove_all(dir);
    }
  } stop{pid, dir};
  ASSERT_TRUE(ts::wait_http_ok(port, "/-/ready", 60)) << "prometheus did not start";

  // 14 evaluations: the restore, then pending, firing and kept firing and
  // resolved at least once (the condition holds 4 s of every 8).
  constexpr size_t kEvals = 14;
  auto query = [&](const std::string& q) {
    auto r = ts::http_get(port, "/api/v1/query?query=" + ts::url_encode(q));
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    return r.status == 200 && j.is_object() ? j["data"]["result"] : nlohmann::json();
  };
  std::vector<int64_t> evals;
  // One more than compared: the group's evaluation k has written all its
  // rules' samples once evaluation k+1 has begun.
  for (int i = 0; i < 600 && evals.size() < kEvals + 1; ++i) {  // up to 60 s
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto r = query("timing_evals[1h]");
    if (!r.is_array() || r.empty()) continue;
    evals.clear();
    for (const auto& v : r[0]["values"]) evals.push_back(std::llround(v[0].get<double>() * 1000));
  }
  ASSERT_GE(evals.size(), kEvals + 1) << "prometheus evaluated too slowly";
  evals.resize(kEvals);
  std::map<int64_t, std::map<std::string, double>> want;
  for (const char* name : {"ALERTS", "ALERTS_FOR_STATE", "timing_evals"})
    for (const auto& series : query(std::string(name) + "[1h]"))
      for (const auto& v : series["values"]) {
        int64_t t = std::llround(v[0].get<double>() * 1000);
        if (t <= evals.back())
          want[t][labels_key(series["metric"])] = std::stod(v[1].get<std::string>());
      }

  std::vector<std::string> errors;
  auto groups = load_rule_files({rules}, "", errors);
  ASSERT_TRUE(errors.empty()) << errors.front();
  EngineOptions o;  // a start: `for` state restored after two evaluations
  o.default_interval_ms = 1000;
  RuleEngine eng(std::move(groups), o);
  MemoryStore store;
  TimelineSink sink(store);
  (void)eng.run_due(store, evals.front() - 1, sink);  // started just before
  for (int64_t t : evals) {
    EXPECT_EQ(eng.eval_timestamp(0, t), t) << "not Prometheus's evaluation slot";
    (void)eng.run_due(store, t, sink);
  }
  for (int64_t t : evals) {
    auto dump = [](const std::map<std::string, double>& m) {
      std::string s;
      for (const auto& [k, v] : m) s += "\n    " + k + " " + std::to_string(v);
      return s;
    };
    EXPECT_EQ(sink.got[t], want[t])
        << "at evaluation " << (t - evals.front()) / 1000 << "\n  moni:" << dump(sink.got[t])
        << "\n  prometheus:" << dump(want[t]);
  }
  // The timeline covers what it is meant to.
  std::set<std::string> seen;
  for (const auto& [t, m] : want)
    for (const auto& [k, v] : m) seen.insert(k);
  EXPECT_TRUE(seen.count("__name__=ALERTS,alertname=TimingFor,alertstate=pending,kind=for,"));
  EXPECT_TRUE(seen.count("__name__=ALERTS,alertname=TimingFor,alertstate=firing,kind=for,"));
  EXPECT_TRUE(want[evals[0]].count("__name__=timing_evals,"));
  EXPECT_EQ(want[evals[0]].size(), 1u) << "no ALERTS before the restore";
  EXPECT_EQ(want[evals[1]].size(), 1u) << "no ALERTS before the restore";
}

}  // namespace
