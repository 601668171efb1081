// PromQL engine semantics that the differential test cannot reach (staleness
// markers cannot be backfilled into Prometheus) or that need exact figures.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>

#include "memory_store.hpp"
#include "promql/engine.hpp"
#include "promql/parser.hpp"
#include "promql/series_major.hpp"

namespace {

using namespace moni::promql;
using moni::Labels;
using test_support::MemoryStore;

Labels L(std::initializer_list<std::pair<const char*, const char*>> kv) {
  Labels out;
  for (const auto& [k, v] : kv) out.push_back({k, v});
  std::sort(out.begin(), out.end());
  return out;
}

class PromqlEngine : public ::testing::Test {
 protected:
  void SetUp() override {
    // A counter rising by 10 every 10 s from t=0 to t=600 s, reset at 300 s.
    for (int64_t t = 0; t <= 600; t += 10)
      store.add(L({{"__name__", "c_total"}, {"job", "a"}}), t * 1000, t < 300 ? t : t - 300);
    // A gauge that goes stale at 100 s and comes back at 200 s.
    for (int64_t t = 0; t <= 300; t += 10) {
      double v = static_cast<double>(t);
      if (t == 100) v = moni::stale_nan();
      if (t > 100 && t < 200) continue;
      store.add(L({{"__name__", "g"}, {"job", "a"}}), t * 1000, v);
    }
    store.add(L({{"__name__", "lone"}}), 0, 42);
    store.add(L({{"__name__", "x"}, {"k", "1"}}), 0, 1);
    store.add(L({{"__name__", "y"}, {"k", "1"}}), 0, 2);
    store.add(L({{"__name__", "y"}, {"k", "1"}, {"z", "2"}}), 0, 3);
  }
  QueryResult instant(std::string_view q, int64_t t_s, QueryOptions o = {}) {
    return Engine(store, o).instant(q, t_s * 1000);
  }
  double one(std::string_view q, int64_t t_s) {
    auto r = instant(q, t_s);
    EXPECT_TRUE(r.ok()) << q << ": " << r.message;
    if (r.value.type == ValueType::Scalar) return r.value.scalar;
    EXPECT_EQ(r.value.vec.size(), 1u) << q;
    return r.value.vec.empty() ? NAN : r.value.vec[0].v;
  }
  MemoryStore store;
};

TEST_F(PromqlEngine, LookbackIsFiveMinutesInclusive) {
  EXPECT_EQ(one("lone", 300), 42);  // 2.42: a sample exactly 5m old still counts
  EXPECT_TRUE(instant("lone", 301).value.vec.empty());
  QueryOptions o;
  o.lookback_ms = 60000;
  EXPECT_TRUE(instant("lone", 61, o).value.vec.empty());
}

TEST_F(PromqlEngine, StalenessMarkerEndsSeries) {
  EXPECT_EQ(one("g", 95), 90);
  EXPECT_TRUE(instant("g", 100).value.vec.empty());
  EXPECT_TRUE(instant("g", 150).value.vec.empty());  // within lookback of 90, but stale
  EXPECT_EQ(one("g", 205), 200);
  // Range functions skip the marker itself.
  EXPECT_EQ(one("count_over_time(g[1m])", 120), 4);  // 60, 70, 80, 90
}

TEST_F(PromqlEngine, RateHandlesResetsAndExtrapolates) {
  // increase over [0, 600] with a reset at 300: 290 + 300 = 590, samples at
  // both window edges so no extrapolation beyond the 600 s sampled.
  EXPECT_DOUBLE_EQ(one("increase(c_total[10m])", 600), 590);
  EXPECT_DOUBLE_EQ(one("resets(c_total[10m])", 600), 1);
  EXPECT_DOUBLE_EQ(one("rate(c_total[1m])", 200), 1);
  // Window (145, 205] has samples 150..200: 50 sampled, 5 s to each edge.
  EXPECT_DOUBLE_EQ(one("increase(c_total[1m])", 205), 60);
  EXPECT_DOUBLE_EQ(one("irate(c_total[1m])", 310), 1);
  EXPECT_DOUBLE_EQ(one("irate(c_total[1m])", 300), 0);  // reset: 0 / 10 s
  EXPECT_DOUBLE_EQ(one("deriv(c_total[1m])", 200), 1);
  EXPECT_DOUBLE_EQ(one("predict_linear(c_total[1m], 60)", 200), 260);
}

TEST_F(PromqlEngine, ErrorsAreTyped) {
  auto dup = instant("{__name__=~\"x|y\", z=\"\"} + 1", 0);
  EXPECT_EQ(dup.error, ErrorType::Execution);
  EXPECT_EQ(dup.message, "vector cannot contain metrics with the same labelset");
  auto mm = instant("x + on(k) y", 0);
  EXPECT_EQ(mm.error, ErrorType::Execution);
  EXPECT_NE(mm.message.find("many-to-many matching not allowed"), std::string::npos) << mm.message;
  auto parse = instant("sum(", 0);
  EXPECT_EQ(parse.error, ErrorType::BadData);
  auto rng = Engine(store).range("c_total[5m]", 0, 60000, 10000);
  EXPECT_EQ(rng.error, ErrorType::BadData);
  EXPECT_EQ(
      rng.message,
      "invalid expression type \"range vector\" for range query, must be Scalar or instant Vector");
}

TEST_F(PromqlEngine, LimitsStopBadQueries) {
  QueryOptions o;
  o.max_samples = 10;
  auto r = instant("sum_over_time(c_total[10m])", 600, o);
  EXPECT_EQ(r.error, ErrorType::Execution);
  EXPECT_EQ(r.message,
            "query processing would load too many samples into memory in query execution");
  QueryOptions s;
  s.max_series = 1;
  auto r2 = instant("{__name__=~\"x|y\"}", 0, s);
  EXPECT_EQ(r2.error, ErrorType::Execution);
  QueryOptions t;
  t.timeout = std::chrono::milliseconds(0);
  auto r3 = Engine(store, t).range("sum(rate(c_total[1m]))", 0, 600000, 1000);
  EXPECT_EQ(r3.error, ErrorType::Timeout);
  EXPECT_EQ(r3.message, "query timed out in expression evaluation");
}

TEST_F(PromqlEngine, RangeQueryProducesSortedMatrix) {
  auto r = Engine(store).range("g or lone", 0, 300000, 100000);
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_EQ(r.value.type, ValueType::Matrix);
  ASSERT_EQ(r.value.mat.size(), 2u);
  EXPECT_EQ(moni::promql::get_label(*r.value.mat[0].labels, "__name__"), "g");
  // g: 0 at 0, stale at 100, 200 at 200, 300 at 300; lone: 0..300 (lookback).
  ASSERT_EQ(r.value.mat[0].points.size(), 3u);
  EXPECT_EQ(r.value.mat[0].points[1].t, 200000);
  EXPECT_EQ(r.value.mat[1].points.size(), 4u);
}

}  // namespace

namespace {

// Series-by-series evaluation must give exactly (bit for bit) what the
// step-by-step evaluator gives, and must decline the shapes it cannot do.
TEST(PromqlSeriesMajor, MatchesStepByStepExactly) {
  MemoryStore store;
  // Counters with resets and a gap, a stale marker, NaN, and 3 groups.
  for (int s = 0; s < 12; ++s) {
    char inst[8], cpu[8];
    std::snprintf(inst, sizeof inst, "h%d", s % 3);
    std::snprintf(cpu, sizeof cpu, "%d", s / 3);
    double v = 0;
    for (int64_t t = 0; t <= 3600; t += 15) {
      if (s == 4 && t > 1200 && t < 1800) continue;  // gap
      v = (s == 5 && t == 2400) ? 0 : v + static_cast<double>((s * 7 + t) % 11) * 0.3;
      double x = v;
      if (s == 6 && t == 900) x = moni::stale_nan();
      if (s == 7 && t == 300) x = NAN;
      store.add(L({{"__name__", "cpu_total"}, {"instance", inst}, {"cpu", cpu}}), t * 1000, x);
    }
  }
  for (int64_t t = 0; t <= 3600; t += 30)
    store.add(L({{"__name__", "other_total"}, {"instance", "h0"}, {"cpu", "0"}}), t * 1000,
              static_cast<double>(t));
  const char* eligible[] = {
      "rate(cpu_total[5m])",
      "sum by (instance) (rate(cpu_total[5m]))",
      "avg without (cpu) (irate(cpu_total[2m]))",
      "stddev(increase(cpu_total[10m]))",
      "stdvar by (cpu) (delta(cpu_total[3m]))",
      "min(deriv(cpu_total[10m]))",
      "max by (cpu) (resets(cpu_total[20m]))",
      "count(changes(cpu_total[4m]))",
      "group by (instance) (rate(cpu_total[1m]))",
      "quantile_over_time(0.3, cpu_total[7m])",
      "predict_linear(cpu_total[10m], 300)",
      "last_over_time(cpu_total[2m] offset 3m)",
      "sum(rate(cpu_total[5m] @ 1800))",
      "avg(max_over_time(cpu_total[5m] @ end()))",
  };
  const char* declined[] = {
      "rate({__name__=~\"cpu_total|other_total\"}[5m])",  // collide without __name__
      "holt_winters(cpu_total[10m], 0.5, 0.5)",
      "topk(2, rate(cpu_total[5m]))",
      "sum(cpu_total)",
      "rate(cpu_total[5m]) * 2",
  };
  QueryOptions fast, slow;
  slow.series_major = false;
  for (const char* q : eligible) {
    auto e = parse(q);
    ASSERT_TRUE(e) << q;
    auto sm = eval_series_major(store, fast, **e, 0, 3600'000, 60'000);
    ASSERT_TRUE(sm.has_value()) << q;
    auto ref = Engine(store, slow).range(q, 0, 3600'000, 60'000);
    ASSERT_TRUE(ref.ok() && sm->ok()) << q << ": " << ref.message << sm->message;
    const Matrix &a = sm->value.mat, &b = ref.value.mat;
    ASSERT_EQ(a.size(), b.size()) << q;
    ASSERT_FALSE(a.empty()) << q;
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(*a[i].labels, *b[i].labels) << q;
      ASSERT_EQ(a[i].points.size(), b[i].points.size()) << q;
      for (size_t k = 0; k < a[i].points.size(); ++k) {
        EXPECT_EQ(a[i].points[k].t, b[i].points[k].t) << q;
        double x = a[i].points[k].v, y = b[i].points[k].v;
        EXPECT_TRUE(std::memcmp(&x, &y, sizeof x) == 0 || (std::isnan(x) && std::isnan(y)))
            << q << " at " << a[i].points[k].t << ": " << x << " vs " << y;
      }
    }
    EXPECT_EQ(sm->samples_fetched, ref.samples_fetched) << q;
  }
  for (const char* q : declined) {
    auto e = parse(q);
    ASSERT_TRUE(e) << q;
    EXPECT_FALSE(eval_series_major(store, fast, **e, 0, 3600'000, 60'000).has_value()) << q;
  }
  // Limits give Prometheus's errors on this path too.
  QueryOptions small;
  small.max_samples = 1000;
  auto r = Engine(store, small).range("rate(cpu_total[5m])", 0, 3600'000, 60'000);
  EXPECT_EQ(r.error, ErrorType::Execution);
  EXPECT_EQ(r.message,
            "query processing would load too many samples into memory in query execution");
  small = {};
  small.max_series = 5;
  r = Engine(store, small).range("sum(rate(cpu_total[5m]))", 0, 3600'000, 60'000);
  EXPECT_EQ(r.message, "query would select more than 5 series (max_series)");
}

}  // namespace
