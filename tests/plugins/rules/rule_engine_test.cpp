// The rule engine on synthetic data: recording rules and staleness, rules of
// a group seeing earlier results of the same evaluation, alert states with
// `for` and keep_firing_for, ALERTS/ALERTS_FOR_STATE, notification timing,
// restore of `for` state, limits and the evaluation schedule.
#include "rule_engine.hpp"

#include <gtest/gtest.h>

#include <cmath>

#include "memory_store.hpp"
#include "rule_config.hpp"

namespace {

using moni::Label;
using moni::Labels;
using moni::promql::test_support::MemoryStore;
using namespace moni::rules;

constexpr int64_t kMin = 60'000;

struct Got {
  Labels labels;
  double v;
  int64_t t;
  std::string label(std::string_view n) const {
    for (const auto& l : labels)
      if (l.name == n) return l.value;
    return {};
  }
};

// Writes what the engine produces back into the store, as the pipeline into
// storage does, and keeps it for the assertions.
class StoreSink : public SampleSink {
 public:
  explicit StoreSink(MemoryStore* s) : store_(s) {}
  void add(const Labels& l, double v, int64_t t) override {
    got.push_back({l, v, t});
    if (store_) store_->add(l, t, v);
  }
  void flush() override { ++flushes; }
  std::vector<Got> at(int64_t t, std::string_view name = {}) const {
    std::vector<Got> out;
    for (const auto& g : got)
      if (g.t == t && (name.empty() || g.label("__name__") == name)) out.push_back(g);
    return out;
  }
  std::vector<Got> got;
  int flushes = 0;

 private:
  MemoryStore* store_;
};

Labels L(std::initializer_list<Label> l) {
  Labels out(l);
  std::sort(out.begin(), out.end());
  return out;
}

GroupSpec group(std::string name, std::vector<RuleSpec> rules, int64_t interval = kMin) {
  GroupSpec g;
  g.name = std::move(name);
  g.interval_ms = interval;
  g.rules = std::move(rules);
  g.pos.file = "test.toml";
  return g;
}

RuleSpec record(std::string name, std::string expr, LabelPairs labels = {}) {
  RuleSpec r;
  r.record = std::move(name);
  r.expr = std::move(expr);
  r.labels = std::move(labels);
  return r;
}

RuleSpec alert(std::string name, std::string expr, int64_t for_ms, LabelPairs labels = {},
               LabelPairs annotations = {}) {
  RuleSpec r;
  r.alert = std::move(name);
  r.expr = std::move(expr);
  r.for_ms = for_ms;
  r.labels = std::move(labels);
  r.annotations = std::move(annotations);
  return r;
}

EngineOptions no_restore() {
  EngineOptions o;
  o.restore_for_state = false;
  return o;
}

std::unique_ptr<RuleEngine> make(std::vector<GroupSpec> gs, EngineOptions o = no_restore()) {
  auto errs = validate_groups(gs);
  EXPECT_TRUE(errs.empty()) << errs.front();
  return std::make_unique<RuleEngine>(std::move(gs), std::move(o));
}

TEST(RuleEngine, RecordingRuleNamesLabelsAndStalenessMarkers) {
  MemoryStore store;
  for (int64_t t = 0; t <= 10 * kMin; t += 15'000) {
    store.add(L({{"__name__", "up"}, {"job", "a"}, {"instance", "1"}}), t, 1);
    if (t < 3 * kMin) store.add(L({{"__name__", "up"}, {"job", "b"}, {"instance", "2"}}), t, 0);
  }
  auto eng = make({group("g", {record("job:up:sum", "sum by (job) (up)", {{"team", "x"}})})});
  StoreSink sink(&store);
  std::vector<OutgoingAlert> notify;
  eng->eval_group(0, store, 2 * kMin, sink, notify);
  auto r = sink.at(2 * kMin);
  ASSERT_EQ(r.size(), 2u);
  EXPECT_EQ(r[0].labels, L({{"__name__", "job:up:sum"}, {"job", "a"}, {"team", "x"}}));
  EXPECT_EQ(r[0].v, 1);
  EXPECT_EQ(r[1].label("job"), "b");
  // job b's series is stale after 3m + 5m lookback... it is gone at 9m.
  eng->eval_group(0, store, 9 * kMin, sink, notify);
  auto r2 = sink.at(9 * kMin);
  ASSERT_EQ(r2.size(), 2u);
  EXPECT_EQ(r2[0].label("job"), "a");
  EXPECT_EQ(r2[1].label("job"), "b");
  EXPECT_TRUE(moni::is_stale_nan(r2[1].v));
  // Only once: the next evaluation has nothing to mark.
  eng->eval_group(0, store, 10 * kMin, sink, notify);
  EXPECT_EQ(sink.at(10 * kMin).size(), 1u);
  EXPECT_EQ(eng->health("g", "job:up:sum", nullptr), RuleHealth::Ok);
}

TEST(RuleEngine, LaterRuleSeesEarlierResultOfTheSameEvaluation) {
  MemoryStore store;
  for (int64_t t = 0; t <= 5 * kMin; t += 15'000)
    store.add(L({{"__name__", "x"}, {"i", "1"}}), t, 21);
  // The sink does not write back: the second rule can only see the first
  // rule's sample through the evaluation's own overlay.
  auto eng = make({group("g", {record("x:double", "x * 2"), record("x:quad", "x:double * 2"),
                               alert("Big", "x:quad > 80", 0)})});
  StoreSink sink(nullptr);
  std::vector<OutgoingAlert> notify;
  eng->eval_group(0, store, 5 * kMin, sink, notify);
  auto quad = sink.at(5 * kMin, "x:quad");
  ASSERT_EQ(quad.size(), 1u);
  EXPECT_EQ(quad[0].v, 84);
  EXPECT_EQ(eng->alerts("g", "Big").size(), 1u);
  EXPECT_EQ(sink.flushes, 3);  // one delivery per rule
}

TEST(RuleEngine, ScalarAndErrors) {
  MemoryStore store;
  store.add(L({{"__name__", "a"}, {"x", "1"}}), 0, 1);
  store.add(L({{"__name__", "a"}, {"x", "2"}}), 0, 2);
  auto eng = make(
      {group("g", {record("s", "scalar(a{x=\"1\"}) + 1"), record("dup", "a", {{"x", "same"}})})});
  StoreSink sink(nullptr);
  std::vector<OutgoingAlert> notify;
  eng->eval_group(0, store, 0, sink, notify);
  auto s = sink.at(0, "s");
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(s[0].labels, L({{"__name__", "s"}}));
  EXPECT_EQ(s[0].v, 2);
  std::string err;
  EXPECT_EQ(eng->health("g", "dup", &err), RuleHealth::Err);
  EXPECT_EQ(err, "vector contains metrics with the same labelset after applying rule labels");
  EXPECT_TRUE(sink.at(0, "dup").empty());
}

class AlertStates : public ::testing::Test {
 protected:
  // `cond` is 1 in [2m, 9m) for instance 1, never for instance 2.
  void SetUp() override {
    for (int64_t t = 0; t <= 40 * kMin; t += 30'000) {
      bool on = t >= 2 * kMin && t < 9 * kMin;
      store.add(L({{"__name__", "cond"}, {"instance", "1"}}), t, on ? 7 : 0);
      store.add(L({{"__name__", "cond"}, {"instance", "2"}}), t, 0);
    }
  }
  void eval(int64_t t) { eng->eval_group(0, store, t, sink, notify); }
  const Alert* only(std::string_view name) {
    cur = eng->alerts("g", name);
    return cur.size() == 1 ? &cur[0] : nullptr;
  }
  MemoryStore store;
  StoreSink sink{&store};
  std::vector<OutgoingAlert> notify;
  std::unique_ptr<RuleEngine> eng;
  std::vector<Alert> cur;
};

TEST_F(AlertStates, PendingFiringResolvedAndForgotten) {
  eng = make({group("g", {alert("High", "cond > 5", 3 * kMin, {{"severity", "page"}},
                                {{"summary", "{{ $labels.instance }} is {{ $value }}"}})})});
  eval(1 * kMin);
  EXPECT_TRUE(eng->alerts("g", "High").empty());
  eval(2 * kMin);
  auto* a = only("High");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->state, AlertState::Pending);
  EXPECT_EQ(a->labels, L({{"alertname", "High"}, {"instance", "1"}, {"severity", "page"}}));
  EXPECT_EQ(a->annotations, L({{"summary", "1 is 7"}}));
  EXPECT_EQ(a->active_at_ms, 2 * kMin);
  auto alerts = sink.at(2 * kMin, "ALERTS");
  ASSERT_EQ(alerts.size(), 1u);
  EXPECT_EQ(alerts[0].label("alertstate"), "pending");
  auto fs = sink.at(2 * kMin, "ALERTS_FOR_STATE");
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].v, 120);
  EXPECT_EQ(fs[0].label("alertstate"), "");
  EXPECT_TRUE(notify.empty()) << "pending alerts are not sent";

  eval(4 * kMin);
  EXPECT_EQ(only("High")->state, AlertState::Pending);  // 2m < 3m
  eval(5 * kMin);
  a = only("High");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->state, AlertState::Firing);
  EXPECT_EQ(a->fired_at_ms, 5 * kMin);
  ASSERT_EQ(notify.size(), 1u);
  EXPECT_EQ(notify[0].starts_at_ms, 5 * kMin);
  EXPECT_EQ(notify[0].ends_at_ms, 5 * kMin + 4 * kMin);  // 4 * max(resend 1m, interval 1m)
  // The pending series goes stale when the firing one appears.
  auto at5 = sink.at(5 * kMin, "ALERTS");
  ASSERT_EQ(at5.size(), 2u);
  int stale = 0;
  for (const auto& s : at5) stale += moni::is_stale_nan(s.v) ? 1 : 0;
  EXPECT_EQ(stale, 1);

  notify.clear();
  eval(6 * kMin);
  EXPECT_TRUE(notify.empty()) << "resent only after more than resend_delay";
  eval(6 * kMin + 30'000);
  EXPECT_EQ(notify.size(), 1u);
  notify.clear();

  eval(10 * kMin);  // condition gone at 9m: resolved
  a = only("High");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->state, AlertState::Inactive);
  EXPECT_EQ(a->resolved_at_ms, 10 * kMin);
  ASSERT_EQ(notify.size(), 1u);
  EXPECT_EQ(notify[0].ends_at_ms, 10 * kMin);
  EXPECT_EQ(sink.at(10 * kMin, "ALERTS").size(), 1u);  // only the staleness marker
  EXPECT_TRUE(moni::is_stale_nan(sink.at(10 * kMin, "ALERTS")[0].v));
  EXPECT_EQ(eng->alerts_json(), R"({"alerts":[]})");

  eval(25 * kMin);  // 15m after resolution: still kept
  EXPECT_NE(only("High"), nullptr);
  eval(25 * kMin + 30'000);
  EXPECT_EQ(only("High"), nullptr);
}

TEST_F(AlertStates, PendingThatClearsIsDroppedAndRestartsFresh) {
  eng = make({group("g", {alert("High", "cond > 5", 30 * kMin)})});
  eval(3 * kMin);
  eval(10 * kMin);
  EXPECT_TRUE(eng->alerts("g", "High").empty());
  EXPECT_TRUE(notify.empty());
}

TEST_F(AlertStates, KeepFiringFor) {
  auto r = alert("High", "cond > 5", 0);
  r.keep_firing_for_ms = 2 * kMin;
  eng = make({group("g", {r})});
  eval(3 * kMin);
  EXPECT_EQ(only("High")->state, AlertState::Firing);
  eval(9 * kMin);  // gone, but kept firing
  EXPECT_EQ(only("High")->state, AlertState::Firing);
  EXPECT_EQ(only("High")->keep_firing_since_ms, 9 * kMin);
  EXPECT_EQ(sink.at(9 * kMin, "ALERTS").size(), 1u);
  eval(10 * kMin);
  EXPECT_EQ(only("High")->state, AlertState::Firing);
  eval(11 * kMin);  // 2m since it stopped
  EXPECT_EQ(only("High")->state, AlertState::Inactive);
  EXPECT_EQ(only("High")->resolved_at_ms, 11 * kMin);
}

TEST_F(AlertStates, LimitTurnsTheRuleIntoAnError) {
  auto g = group("g", {alert("Any", "cond >= 0", 0)});
  g.limit = 1;
  eng = make({g});
  eval(1 * kMin);
  std::string err;
  EXPECT_EQ(eng->health("g", "Any", &err), RuleHealth::Err);
  EXPECT_EQ(err, "exceeded limit of 1 with 2 alerts");
  EXPECT_TRUE(eng->alerts("g", "Any").empty());
}

TEST_F(AlertStates, BadTemplateIsAVisibleErrorNotACrash) {
  eng = make(
      {group("g", {alert("High", "cond > 5", 0, {}, {{"x", "{{ $labels.instance.nope }}"}})})});
  eval(3 * kMin);
  auto* a = only("High");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->annotations[0].value.rfind("<error expanding template: ", 0), 0u)
      << a->annotations[0].value;
  std::string err;
  EXPECT_EQ(eng->health("g", "High", &err), RuleHealth::Err);
  EXPECT_NE(err.find("can't evaluate field nope"), std::string::npos) << err;
}

TEST(RuleEngineRestore, ForStateFromAlertsForStateAfterTwoEvaluations) {
  // Before a restart the alert was pending since 100s for 10 minutes
  // (for = 20m); moni was down from 700s to 1000s.
  MemoryStore store;
  Labels fs = L({{"__name__", "ALERTS_FOR_STATE"}, {"alertname", "Slow"}, {"instance", "1"}});
  for (int64_t t = 100'000; t <= 700'000; t += 60'000) store.add(fs, t, 100);
  for (int64_t t = 0; t <= 2'000'000; t += 15'000)
    store.add(L({{"__name__", "cond"}, {"instance", "1"}}), t, 1);
  auto r = alert("Slow", "cond > 0", 20 * kMin);
  auto gs = group("g", {r});
  auto errs = validate_groups({gs});
  ASSERT_TRUE(errs.empty());
  RuleEngine eng({gs}, EngineOptions{});  // restores, like a Prometheus start
  StoreSink sink(nullptr);
  std::vector<OutgoingAlert> notify;
  (void)eng.run_due(store, 1'000'000, sink);  // schedules the first evaluation
  int64_t first = eng.eval_timestamp(0, 1'000'000) + kMin;
  (void)eng.run_due(store, first, sink);
  ASSERT_EQ(eng.alerts("g", "Slow").size(), 1u);
  EXPECT_TRUE(sink.at(first, "ALERTS").empty()) << "not restored yet: no ALERTS";
  (void)eng.run_due(store, first + kMin, sink);
  // Restored at the second evaluation: active since 100s, shifted by the
  // 300s+ of downtime (down at 700s).
  auto a = eng.alerts("g", "Slow");
  ASSERT_EQ(a.size(), 1u);
  int64_t now = first + kMin;
  EXPECT_EQ(a[0].active_at_ms, 100'000 + (now - 700'000));
  eng.run_due(store, now + kMin, sink);
  EXPECT_EQ(sink.at(now + kMin, "ALERTS_FOR_STATE").size(), 1u);
  EXPECT_EQ(sink.at(now + kMin, "ALERTS_FOR_STATE")[0].v,
            static_cast<double>((100'000 + (now - 700'000)) / 1000));
}

TEST(RuleEngineRestore, GracePeriodAndOutageTolerance) {
  // Pending for 19 of 20 minutes when it went down: it fires no earlier than
  // the grace period (10m) after the restore.
  MemoryStore store;
  Labels fs = L({{"__name__", "ALERTS_FOR_STATE"}, {"alertname", "Slow"}});
  for (int64_t t = 0; t <= 19 * kMin; t += kMin) store.add(fs, t, 0);
  for (int64_t t = 0; t <= 60 * kMin; t += 15'000) store.add(L({{"__name__", "cond"}}), t, 1);
  auto gs = group("g", {alert("Slow", "cond > 0", 20 * kMin)});
  RuleEngine eng({gs}, EngineOptions{});
  StoreSink sink(nullptr);
  (void)eng.run_due(store, 20 * kMin, sink);
  int64_t t1 = eng.eval_timestamp(0, 20 * kMin) + kMin;
  (void)eng.run_due(store, t1, sink);
  (void)eng.run_due(store, t1 + kMin, sink);
  auto a = eng.alerts("g", "Slow");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].active_at_ms, t1 + kMin + 10 * kMin - 20 * kMin);

  // Outage longer than the tolerance: nothing to restore.
  EngineOptions o;
  o.outage_tolerance_ms = 30'000;
  RuleEngine eng2({gs}, o);
  (void)eng2.run_due(store, 20 * kMin, sink);
  (void)eng2.run_due(store, t1, sink);
  (void)eng2.run_due(store, t1 + kMin, sink);
  auto b = eng2.alerts("g", "Slow");
  ASSERT_EQ(b.size(), 1u);
  EXPECT_EQ(b[0].active_at_ms, eng2.eval_timestamp(0, t1));
}

TEST(RuleEngineSchedule, AlignedSlotsAndMissedIterations) {
  MemoryStore store;
  store.add(L({{"__name__", "x"}}), 0, 1);
  auto eng =
      make({group("g1", {record("r1", "vector(1)")}), group("g2", {record("r2", "vector(2)")})});
  int64_t now = 1'700'000'000'000;
  for (size_t i = 0; i < 2; ++i) {
    int64_t s = eng->eval_timestamp(i, now);
    EXPECT_LE(s, now);
    EXPECT_GT(s, now - kMin);
    EXPECT_EQ(eng->eval_timestamp(i, s + kMin), s + kMin);
  }
  EXPECT_NE(eng->eval_timestamp(0, now), eng->eval_timestamp(1, now)) << "groups spread out";
  StoreSink sink(nullptr);
  (void)eng->run_due(store, now, sink);  // schedules only
  EXPECT_TRUE(sink.got.empty());
  int64_t slot = eng->eval_timestamp(0, now) + kMin;
  (void)eng->run_due(store, slot, sink);
  EXPECT_EQ(sink.at(slot, "r1").size(), 1u);
  size_t before = sink.got.size();
  (void)eng->run_due(store, slot + 1000, sink);
  EXPECT_EQ(sink.at(slot + 1000).size(), 0u);
  EXPECT_LE(sink.got.size(), before + 1);  // at most g2's own slot
  // 3.5 intervals later: evaluates once, at the latest slot; 2 missed.
  (void)eng->run_due(store, slot + 3 * kMin + 30'000, sink);
  EXPECT_EQ(sink.at(slot + 3 * kMin, "r1").size(), 1u);
  moni::Batch b;
  eng->self_metrics(b);
  auto& v = b.view();
  bool found = false;
  for (size_t i = 0; i < v.sample_count; ++i) {
    moni::SampleView s(v.samples[i]);
    if (s.name() == "moni_rules_group_missed_iterations_total" &&
        s.label("rule_group") == "test.toml;g1") {
      EXPECT_EQ(s.value(), 2);
      found = true;
    }
  }
  EXPECT_TRUE(found);
}

TEST(RuleEngineApi, RulesAndAlertsJson) {
  MemoryStore store;
  for (int64_t t = 0; t <= 5 * kMin; t += 15'000)
    store.add(L({{"__name__", "cond"}, {"i", "1"}}), t, 3);
  auto eng = make(
      {group("g", {record("r", "cond * 2", {{"k", "v"}}),
                   alert("A", "cond > 1", 0, {{"severity", "page"}}, {{"s", "v={{ $value }}"}})})});
  StoreSink sink(nullptr);
  std::vector<OutgoingAlert> notify;
  eng->eval_group(0, store, 5 * kMin, sink, notify);
  std::string j = eng->rules_json("");
  EXPECT_NE(j.find(R"("name":"r","query":"cond * 2","labels":{"k":"v"},"health":"ok")"),
            std::string::npos)
      << j;
  EXPECT_NE(
      j.find(
          R"({"state":"firing","name":"A","query":"cond \u003e 1","duration":0,"keepFiringFor":0,"labels":{"severity":"page"},"annotations":{"s":"v={{ $value }}"},"alerts":[{"labels":{"alertname":"A","i":"1","severity":"page"},"annotations":{"s":"v=3"},"state":"firing","activeAt":"1970-01-01T00:05:00Z","value":"3e+00"}],"health":"ok")"),
      std::string::npos)
      << j;
  EXPECT_NE(j.find(R"("lastEvaluation":"1970-01-01T00:05:00Z","type":"alerting"})"),
            std::string::npos)
      << j;
  EXPECT_NE(j.find(R"("interval":60,"limit":0,)"), std::string::npos) << j;
  EXPECT_EQ(eng->rules_json("alert").find("\"recording\""), std::string::npos);
  EXPECT_EQ(eng->rules_json("record").find("\"alerting\""), std::string::npos);
  EXPECT_EQ(
      eng->alerts_json(),
      R"({"alerts":[{"labels":{"alertname":"A","i":"1","severity":"page"},"annotations":{"s":"v=3"},"state":"firing","activeAt":"1970-01-01T00:05:00Z","value":"3e+00"}]})");
}

}  // namespace

namespace reload {

// The engine of a reloaded configuration takes over the old one's state as
// Prometheus's rule manager does (Group.CopyState; equal groups go on).
TEST(RuleEngineReload, KeepsAlertStateOfUnchangedRulesAndMarksDroppedSeriesStale) {
  MemoryStore store;
  for (int64_t t = 0; t <= 60 * kMin; t += 15'000) store.add(L({{"__name__", "cond"}}), t, 1);
  EngineOptions o;  // restores on start, as a Prometheus start
  auto old_groups = [] {
    return std::vector<GroupSpec>{
        group("g1", {record("r1", "vector(1)", {{"v", "1"}}),
                     alert("A", "cond > 0", 2 * kMin, {{"sev", "page"}})}),
        group("g2", {record("gone", "vector(2)")}), group("g3", {alert("B", "cond > 0", 0)})};
  };
  auto old_eng = make(old_groups(), o);
  // The same configuration without a reload, for the notifications.
  auto control = make(old_groups(), o);
  StoreSink sink(&store), control_sink(nullptr);
  std::vector<OutgoingAlert> sent;
  int64_t now = 10 * kMin;
  (void)old_eng->run_due(store, now, sink);
  (void)control->run_due(store, now, control_sink);
  for (int i = 0; i < 5; ++i) {
    now += kMin;
    auto n = old_eng->run_due(store, now, sink);
    sent.insert(sent.end(), n.begin(), n.end());
    (void)control->run_due(store, now, control_sink);
  }
  auto before = old_eng->alerts("g1", "A");
  ASSERT_EQ(before.size(), 1u);
  ASSERT_EQ(before[0].state, AlertState::Firing);
  ASSERT_EQ(old_eng->alerts("g3", "B").size(), 1u);
  size_t sent_before = sent.size();
  ASSERT_GE(sent_before, 2u);

  // g1 changed (r1's labels, a rule added; A is the same name and labels
  // with a new expression), g2 removed, g3 unchanged, g4 new.
  auto new_eng = make(
      {group("g1",
             {record("r1", "vector(1)", {{"v", "2"}}),
              alert("A", "cond > 0.5", 2 * kMin, {{"sev", "page"}}), record("r2", "vector(3)")}),
       group("g3", {alert("B", "cond > 0", 0)}), group("g4", {alert("C", "cond > 0", 5 * kMin)})},
      o);
  new_eng->adopt_state(*old_eng);
  StoreSink after(&store);
  // Every group is due within one interval.
  int64_t t_end = now + kMin;
  auto n = new_eng->run_due(store, now + 1, after);
  auto n2 = new_eng->run_due(store, t_end, after);
  n.insert(n.end(), n2.begin(), n2.end());
  // Notifications go on as without the reload: nothing re-sent early, no
  // resolution, the same startsAt.
  auto c = control->run_due(store, now + 1, control_sink);
  auto c2 = control->run_due(store, t_end, control_sink);
  c.insert(c.end(), c2.begin(), c2.end());
  auto key = [](const std::vector<OutgoingAlert>& v) {
    std::vector<std::tuple<Labels, int64_t, int64_t>> k;
    for (const auto& x : v) k.emplace_back(x.labels, x.starts_at_ms, x.ends_at_ms);
    std::sort(k.begin(), k.end());
    return k;
  };
  EXPECT_EQ(key(n), key(c));

  auto a = new_eng->alerts("g1", "A");
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].state, AlertState::Firing);
  EXPECT_EQ(a[0].active_at_ms, before[0].active_at_ms);
  EXPECT_EQ(a[0].fired_at_ms, before[0].fired_at_ms);
  // ALERTS right away (no restore after a reload), for every group.
  auto find = [&](std::string_view name, std::string_view alertname) {
    std::vector<Got> out;
    for (const auto& g : after.got)
      if (g.label("__name__") == name && g.label("alertname") == alertname) out.push_back(g);
    return out;
  };
  auto alerts_a = find("ALERTS", "A");
  ASSERT_EQ(alerts_a.size(), 1u);
  EXPECT_EQ(alerts_a[0].label("alertstate"), "firing");
  auto fs = find("ALERTS_FOR_STATE", "A");
  ASSERT_EQ(fs.size(), 1u);
  EXPECT_EQ(fs[0].v, static_cast<double>(before[0].active_at_ms / 1000));
  ASSERT_EQ(find("ALERTS", "B").size(), 1u);
  EXPECT_EQ(find("ALERTS", "B")[0].label("alertstate"), "firing");
  ASSERT_EQ(find("ALERTS", "C").size(), 1u);
  EXPECT_EQ(find("ALERTS", "C")[0].label("alertstate"), "pending");

  // The old r1 series (v="1") and the removed group's series end with a
  // staleness marker; the new r1 series is written.
  int stale_r1 = 0, fresh_r1 = 0, stale_gone = 0;
  for (const auto& g : after.got) {
    if (g.label("__name__") == "r1" && g.label("v") == "1" && moni::is_stale_nan(g.v)) ++stale_r1;
    if (g.label("__name__") == "r1" && g.label("v") == "2" && g.v == 1) ++fresh_r1;
    if (g.label("__name__") == "gone" && moni::is_stale_nan(g.v)) ++stale_gone;
  }
  EXPECT_EQ(stale_r1, 1);
  EXPECT_EQ(fresh_r1, 1);
  EXPECT_EQ(stale_gone, 1);
  // The schedule goes on: each group evaluated once in the interval after
  // the old engine's last evaluation.
  for (size_t i = 0; i < new_eng->group_count(); ++i) {
    int64_t want = new_eng->eval_timestamp(i, t_end);
    EXPECT_GT(want, now - kMin);
  }
}

// A reload before the first restore: an unchanged group still restores
// (it goes on as it was); a changed one counts as restored.
TEST(RuleEngineReload, UnchangedGroupKeepsItsRestoreSchedule) {
  MemoryStore store;
  for (int64_t t = 0; t <= 60 * kMin; t += 15'000) store.add(L({{"__name__", "cond"}}), t, 1);
  auto spec = [] {
    return std::vector<GroupSpec>{group("same", {alert("S", "cond > 0", kMin)}),
                                  group("changed", {alert("X", "cond > 0", kMin)})};
  };
  auto old_eng = make(spec(), EngineOptions{});
  StoreSink sink(&store);
  (void)old_eng->run_due(store, 10 * kMin, sink);
  (void)old_eng->run_due(store, 11 * kMin, sink);  // first evaluation of both
  auto specs = spec();
  specs[1].rules[0].annotations = {{"summary", "changed"}};
  auto new_eng = make(specs, EngineOptions{});
  new_eng->adopt_state(*old_eng);
  StoreSink after(&store);
  (void)new_eng->run_due(store, 12 * kMin, after);  // second evaluation
  int s = 0, x = 0;
  for (const auto& g : after.got) {
    s += g.label("alertname") == "S";
    x += g.label("alertname") == "X";
  }
  EXPECT_EQ(s, 0) << "the unchanged group restores after its second evaluation, as before";
  EXPECT_EQ(x, 2) << "the changed group is restored: ALERTS and ALERTS_FOR_STATE";
  (void)new_eng->run_due(store, 13 * kMin, after);
  s = 0;
  for (const auto& g : after.got) s += g.label("alertname") == "S";
  EXPECT_EQ(s, 2);
}

}  // namespace reload
