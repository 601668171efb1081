// Hostile PromQL: nesting that would overflow the stack, durations and @
// times that would overflow int64 arithmetic, subqueries with absurd step
// counts. Each answer is a clean error or a valid result, as Prometheus 2.42
// words it where it answers at all.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <string>

#include "memory_store.hpp"
#include "promql/engine.hpp"
#include "promql/parser.hpp"

namespace {

using namespace moni::promql;
using test_support::MemoryStore;

std::string repeat(std::string_view s, size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) out += s;
  return out;
}

std::string parse_error(const std::string& q) {
  auto r = parse(q);
  return r ? std::string("(parsed)") : r.error().message;
}

class PromqlHardening : public ::testing::Test {
 protected:
  void SetUp() override {
    moni::Labels l{{"__name__", "up"}, {"job", "a"}};
    for (int64_t t = 0; t <= 600; t += 15) store.add(l, t * 1000, 1);
  }
  QueryResult instant(const std::string& q, int64_t t_ms, QueryOptions o = {}) {
    return Engine(store, o).instant(q, t_ms);
  }
  MemoryStore store;
};

TEST_F(PromqlHardening, DeepNestingIsAParseErrorNotAStackOverflow) {
  const std::string too_deep = "expression nested too deeply";
  // 100 000 levels each: parentheses, unary signs, calls, left-deep binary
  // chains (no parser recursion, but a tree as deep as the chain is long).
  EXPECT_NE(parse_error(repeat("(", 100000) + "1" + repeat(")", 100000)).find(too_deep),
            std::string::npos);
  EXPECT_NE(parse_error(repeat("-", 100000) + "1").find(too_deep), std::string::npos);
  EXPECT_NE(parse_error(repeat("abs(", 100000) + "up" + repeat(")", 100000)).find(too_deep),
            std::string::npos);
  EXPECT_NE(parse_error(repeat("up + ", 100000) + "up").find(too_deep), std::string::npos);
  EXPECT_NE(parse_error(repeat("sum(", 100000)).find(too_deep), std::string::npos);
  EXPECT_NE(parse_error(repeat("max_over_time((", 5000) + "up" + repeat(")[1h:1m])", 5000))
                .find(too_deep),
            std::string::npos);
  EXPECT_NE(parse_error(repeat("(", 257) + "1" + repeat(")", 257))
                .find("1:257: parse error: expression nested too deeply (more than 256 levels"),
            std::string::npos)
      << parse_error(repeat("(", 257) + "1" + repeat(")", 257));

  // Just inside the bound, the whole tree is evaluated (engine recursion).
  auto r = instant(repeat("(", 250) + "up" + repeat(")", 250), 300'000);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.value.vec.size(), 1u);
  r = instant(repeat("abs(", 120) + "up" + repeat(")", 120) + repeat(" + up", 100), 300'000);
  ASSERT_TRUE(r.ok()) << r.message;
  ASSERT_EQ(r.value.vec.size(), 1u);
  EXPECT_EQ(r.value.vec[0].v, 101);
  r = instant(repeat("-", 250) + "1", 0);
  ASSERT_TRUE(r.ok()) << r.message;
  EXPECT_EQ(r.value.scalar, 1);
}

TEST_F(PromqlHardening, UnclosedBracketsAsPrometheus) {
  // Prometheus 2.42's answers.
  for (auto [q, want] : std::vector<std::pair<std::string, std::string>>{
           {"sum(", "1:5: parse error: unclosed left parenthesis"},
           {"sum(up", "1:7: parse error: unclosed left parenthesis"},
           {"sum(rate(up[5m])", "1:17: parse error: unclosed left parenthesis"},
           {"rate(up[5m", "1:11: parse error: unclosed left parenthesis"},
           {"(1+", "1:4: parse error: unclosed left parenthesis"},
           {"sum(up) by (a", "1:14: parse error: unclosed left parenthesis"},
           {"up[5m", "1:6: parse error: unclosed left bracket"},
           {"up[5m:", "1:7: parse error: unclosed left bracket"},
           {"up{a=\"b\"", "1:9: parse error: unexpected end of input inside braces"},
           {"up[5m] offset",
            "1:14: parse error: unexpected end of input in offset, expected duration"},
       })
    EXPECT_EQ(parse_error(q), want) << q;
}

TEST_F(PromqlHardening, DurationsOutOfRangeAsPrometheus) {
  // Prometheus 2.42's answers (its durations are int64 nanoseconds).
  EXPECT_EQ(parse_error("foo[293y]"), "1:5: parse error: duration out of range");
  EXPECT_EQ(parse_error("foo[100y9999999999999w]"), "1:5: parse error: duration out of range");
  EXPECT_EQ(parse_error("foo[99999999999999999999s]"), "1:5: parse error: duration out of range");
  EXPECT_EQ(parse_error("foo[1s:99999999999999999999s]"),
            "1:8: parse error: duration out of range");
  EXPECT_EQ(parse_error("foo offset 293y"), "1:12: parse error: duration out of range");
  // Each term fits, their sum does not.
  EXPECT_EQ(parse_error("foo[292y52w]"), "1:5: parse error: duration out of range");
  EXPECT_EQ(parse_error("foo[0s]"), "1:5: parse error: duration must be greater than 0");
  EXPECT_EQ(parse_error("foo[1ms:0s]"), "1:9: parse error: duration must be greater than 0");
  EXPECT_EQ(parse_error("foo offset 0s"), "1:12: parse error: duration must be greater than 0");
  EXPECT_EQ(parse_error("foo[5ms5s]"), "1:5: parse error: not a valid duration string: \"5ms5s\"");
  EXPECT_EQ(parse_error("foo[292y24w]"), "(parsed)");
  auto d = parse_promql_duration("292y24w");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 9'223'027'200'000);

  // The largest ranges and offsets, at the largest API times: no overflow
  // (UBSan would report it), empty or valid results.
  for (const char* q : {"up[292y24w]", "up offset 292y24w", "up offset -292y24w",
                        "count_over_time(up[292y24w] offset -292y24w)",
                        "max_over_time(up[292y:100y] offset 292y)"}) {
    for (int64_t t : {int64_t{0}, INT64_MAX / 4, -(INT64_MAX / 4)}) {
      auto r = instant(q, t);
      EXPECT_TRUE(r.ok()) << q << " at " << t << ": " << r.message;
    }
  }
}

TEST_F(PromqlHardening, AtModifierBoundsAsPrometheus) {
  EXPECT_EQ(parse_error("foo @ 1e20"),
            "1:1: parse error: timestamp out of bounds for @ modifier: "
            "100000000000000000000.000000");
  EXPECT_EQ(parse_error("foo @ inf"),
            "1:1: parse error: timestamp out of bounds for @ modifier: +Inf");
  EXPECT_EQ(parse_error("foo @ -Inf"),
            "1:1: parse error: timestamp out of bounds for @ modifier: -Inf");
  EXPECT_EQ(parse_error("sum(foo @ nan)"),
            "1:5: parse error: timestamp out of bounds for @ modifier: NaN");
  // Prometheus accepts these (its milliseconds then wrap around); here they
  // are clamped, and evaluate without overflow.
  for (const char* q : {"up @ 9.3e15", "up @ -9.3e15 offset -292y", "up[292y] @ 9.2e18",
                        "rate(up[5m] @ -9.2e18 offset 292y)", "up[1h:1m] @ 9e15 offset -292y"}) {
    auto r = instant(q, 300'000);
    EXPECT_TRUE(r.ok()) << q << ": " << r.message;
  }
}

long max_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

TEST_F(PromqlHardening, SubqueryWithBillionsOfEmptyStepsTimesOutWithoutGrowing) {
  // 3e10 steps of nothing: Prometheus 2.42 spins on it past its timeout;
  // here the timeout ends it, and empty steps are not memoized (they grew
  // the memo by ~100 bytes each, uncounted by max_samples).
  QueryOptions o;
  o.timeout = std::chrono::milliseconds(1500);
  long before = max_rss_kb();
  auto r = instant("max_over_time(nonexistent[1y:1ms])", 300'000, o);
  EXPECT_EQ(r.error, ErrorType::Timeout) << r.message;
  EXPECT_LT(max_rss_kb() - before, 64 * 1024) << "kB grown during the query";
  // With samples, max_samples ends it.
  o.timeout = std::chrono::seconds(60);
  o.max_samples = 100'000;
  r = instant("max_over_time(vector(1)[1y:1ms])", 300'000, o);
  EXPECT_EQ(r.error, ErrorType::Execution) << r.message;
  EXPECT_NE(r.message.find("too many samples"), std::string::npos) << r.message;
}

}  // namespace
