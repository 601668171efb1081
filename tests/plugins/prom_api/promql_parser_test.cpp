// PromQL parser: structure, precedence, modifiers and error positions.
#include <gtest/gtest.h>

#include <cmath>

#include "promql/parser.hpp"

namespace {

using namespace moni::promql;

ExprPtr ok(std::string_view q) {
  auto r = parse(q);
  EXPECT_TRUE(r.ok()) << q << ": " << (r.ok() ? "" : r.error().message);
  return r.ok() ? std::move(r.value()) : nullptr;
}

std::string err(std::string_view q) {
  auto r = parse(q);
  EXPECT_FALSE(r.ok()) << q << " parsed but should not";
  return r.ok() ? "" : r.error().message;
}

TEST(PromqlParser, SelectorsAndMatchers) {
  auto e =
      ok(R"(http_requests_total{job="api", code!="500", path=~"/v1/.*", method!~'GET|HEAD',})");
  ASSERT_EQ(e->kind, ExprKind::VectorSelector);
  EXPECT_EQ(e->metric_name, "http_requests_total");
  ASSERT_EQ(e->matchers.size(), 5u);
  EXPECT_EQ(e->matchers[0].name, "__name__");
  EXPECT_EQ(e->matchers[3].type, moni::MatchType::Regex);
  EXPECT_EQ(e->matchers[4].value, "GET|HEAD");
  auto m = ok("rate(foo[5m] offset 1h @ 1700000000.5)");
  ASSERT_EQ(m->kind, ExprKind::Call);
  const Expr& ms = *m->args[0];
  ASSERT_EQ(ms.kind, ExprKind::MatrixSelector);
  EXPECT_EQ(ms.range_ms, 300000);
  EXPECT_EQ(ms.args[0]->offset_ms, 3600000);
  EXPECT_EQ(ms.args[0]->at, AtKind::Fixed);
  EXPECT_EQ(ms.args[0]->at_ms, 1700000000500);
  auto neg = ok("foo offset -5m @ end()");
  EXPECT_EQ(neg->offset_ms, -300000);
  EXPECT_EQ(neg->at, AtKind::End);
  auto colon = ok("job:rate:sum5m");
  EXPECT_EQ(colon->metric_name, "job:rate:sum5m");
  auto s = ok(R"("a\"b\n\u00e9" )");
  EXPECT_EQ(s->str, "a\"b\n\xc3\xa9");
  EXPECT_EQ(ok("`raw\\n`")->str, "raw\\n");
}

TEST(PromqlParser, PrecedenceAndAssociativity) {
  // 2 ^ (3 ^ 2): right-associative.
  auto p = ok("2 ^ 3 ^ 2");
  ASSERT_EQ(p->op, Op::Pow);
  EXPECT_EQ(p->args[0]->kind, ExprKind::Number);
  EXPECT_EQ(p->args[1]->op, Op::Pow);
  // (1 - 2) - 3: left-associative.
  auto s = ok("1 - 2 - 3");
  EXPECT_EQ(s->args[0]->op, Op::Sub);
  // a + b * c
  auto m = ok("a + b * c");
  EXPECT_EQ(m->op, Op::Add);
  EXPECT_EQ(m->args[1]->op, Op::Mul);
  // -a ^ b is -(a ^ b); -a * b is (-a) * b.
  auto u = ok("-a ^ b");
  ASSERT_EQ(u->kind, ExprKind::Unary);
  EXPECT_EQ(u->args[0]->op, Op::Pow);
  auto u2 = ok("-a * b");
  ASSERT_EQ(u2->kind, ExprKind::Binary);
  EXPECT_EQ(u2->args[0]->kind, ExprKind::Unary);
  // or < and/unless < comparison < +
  auto l = ok("a or b and c > d + e");
  EXPECT_EQ(l->op, Op::Or);
  EXPECT_EQ(l->args[1]->op, Op::And);
  EXPECT_EQ(l->args[1]->args[1]->op, Op::Gtr);
  EXPECT_EQ(ok("-1")->number, -1);
}

TEST(PromqlParser, MatchingAndAggregations) {
  auto b = ok("a / on(job, instance) group_left(node) b");
  ASSERT_TRUE(b->matching);
  EXPECT_TRUE(b->matching->on);
  EXPECT_EQ(b->matching->card, Card::ManyToOne);
  EXPECT_EQ(b->matching->labels, (std::vector<std::string>{"job", "instance"}));
  EXPECT_EQ(b->matching->include, (std::vector<std::string>{"node"}));
  auto c = ok("a > bool ignoring(code) group_right b");
  EXPECT_TRUE(c->return_bool);
  EXPECT_EQ(c->matching->card, Card::OneToMany);
  EXPECT_EQ(ok("a and b")->matching->card, Card::ManyToMany);
  auto a1 = ok("sum by (job) (rate(x[5m]))");
  auto a2 = ok("sum(rate(x[5m])) by (job)");
  EXPECT_EQ(a1->grouping, a2->grouping);
  EXPECT_FALSE(a1->without);
  auto t = ok("topk without (instance) (3, x)");
  EXPECT_TRUE(t->without);
  EXPECT_EQ(t->param->number, 3);
  auto cv = ok(R"(count_values("v", x))");
  EXPECT_EQ(cv->param->str, "v");
  auto sq = ok("max_over_time(rate(x[5m])[1h:30s] offset 1m)");
  const Expr& s = *sq->args[0];
  ASSERT_EQ(s.kind, ExprKind::Subquery);
  EXPECT_EQ(s.range_ms, 3600000);
  EXPECT_EQ(s.step_ms, 30000);
  EXPECT_EQ(s.offset_ms, 60000);
  EXPECT_EQ(ok("x[5m:]")->step_ms, 0);
}

// Prometheus lowercases a word before its keyword and aggregation lookup;
// keywords other than on/ignoring/group_*/bool/atan2 name a metric where an
// expression starts.
TEST(PromqlParser, KeywordsInAnyCase) {
  auto b = ok("a AND ON(instance) b");
  ASSERT_EQ(b->kind, ExprKind::Binary);
  EXPECT_EQ(b->op, Op::And);
  ASSERT_TRUE(b->matching);
  EXPECT_TRUE(b->matching->on);
  EXPECT_EQ(b->matching->labels, (std::vector<std::string>{"instance"}));
  EXPECT_EQ(ok("a Or b")->op, Op::Or);
  EXPECT_EQ(ok("a UNLESS b")->op, Op::Unless);
  EXPECT_EQ(ok("a ATAN2 b")->op, Op::Atan2);
  EXPECT_TRUE(ok("a > BOOL 0")->return_bool);
  auto g = ok("a * IGNORING(job) GROUP_LEFT(x) b");
  EXPECT_FALSE(g->matching->on);
  EXPECT_EQ(g->matching->card, Card::ManyToOne);
  EXPECT_EQ(ok("a * on() Group_Right b")->matching->card, Card::OneToMany);
  auto s = ok("SUM BY (job) (a)");
  ASSERT_EQ(s->kind, ExprKind::Aggregate);
  EXPECT_EQ(s->op, Op::Sum);
  EXPECT_EQ(s->grouping, (std::vector<std::string>{"job"}));
  EXPECT_TRUE(ok("sum(a) WITHOUT (job)")->without);
  EXPECT_EQ(ok("TopK(1, a)")->op, Op::Topk);
  EXPECT_EQ(ok("a OFFSET 1m")->offset_ms, 60000);
  EXPECT_EQ(ok("a @ START()")->at, AtKind::Start);
  EXPECT_EQ(ok("a @ End()")->at, AtKind::End);
  EXPECT_TRUE(std::isinf(ok("INF")->number));
  EXPECT_TRUE(std::isnan(ok("NaN")->number));
  // Keyword-named metrics, the name as written.
  auto o = ok("offset offset 5m");
  ASSERT_EQ(o->kind, ExprKind::VectorSelector);
  EXPECT_EQ(o->metric_name, "offset");
  EXPECT_EQ(o->offset_ms, 300000);
  EXPECT_EQ(ok("SUM + 1")->args[0]->metric_name, "SUM");
  EXPECT_EQ(ok("rate(by[5m])")->args[0]->args[0]->metric_name, "by");
  EXPECT_EQ(ok("sum by (AND, ON) (a)")->grouping, (std::vector<std::string>{"AND", "ON"}));
  // Function names stay case-sensitive; some keywords never name a metric.
  EXPECT_NE(err("Rate(a[1m])").find("unknown function with name \"Rate\""), std::string::npos);
  err("ON");
  err("bool");
  err("atan2");
  err("sum by (job)");
  err("a @ START");
}

// Prometheus' lexer rejects invalid UTF-8 (and U+FFFD) in string literals.
TEST(PromqlParser, InvalidUtf8InStrings) {
  EXPECT_EQ(err("a{b=\"x\xff\"}"), "1:5: parse error: invalid UTF-8 rune");
  EXPECT_EQ(err("`\xc3`"), "1:1: parse error: invalid UTF-8 rune");
  EXPECT_EQ(err("\"\xef\xbf\xbd\""), "1:1: parse error: invalid UTF-8 rune");
  EXPECT_EQ(err("1 + \xff"), "1:5: parse error: unexpected character: '\xef\xbf\xbd'");
  EXPECT_EQ(ok("\"\xc3\xa9\"")->str, "\xc3\xa9");
  EXPECT_EQ(ok(R"("\xff")")->str, "\xff");  // an escape may make any byte
}

TEST(PromqlParser, ErrorsCarryPrometheusStylePositions) {
  EXPECT_EQ(err("sum(x"), "1:6: parse error: unclosed left parenthesis");  // as 2.42
  EXPECT_EQ(err("foo +\n  bar baz"), "2:7: parse error: unexpected identifier \"baz\"");
  EXPECT_EQ(err("rate(x)"),
            "1:6: parse error: expected type range vector in call to function \"rate\", got "
            "instant vector");
  EXPECT_EQ(err("nope(x)"), "1:1: parse error: unknown function with name \"nope\"");
  EXPECT_EQ(err("{}"),
            "1:1: parse error: vector selector must contain at least one non-empty matcher");
  EXPECT_EQ(err(R"({job=~".*"})"),
            "1:1: parse error: vector selector must contain at least one non-empty matcher");
  EXPECT_EQ(err("1 == 1"), "1:3: parse error: comparisons between scalars must use BOOL modifier");
  EXPECT_EQ(err("1 and x"),
            "1:3: parse error: set operator \"and\" not allowed in binary scalar expression");
  EXPECT_EQ(err("a + bool b"),
            "1:3: parse error: bool modifier can only be used on comparison operators");
  EXPECT_EQ(err("a and on(x) group_left b"),
            "1:3: parse error: no grouping allowed for \"and\" operation");
  EXPECT_EQ(err("(a)[5m]"), "1:1: parse error: ranges only allowed for vector selectors");
  EXPECT_EQ(
      err("a[5m][5m:]"),
      "1:1: parse error: subquery is only allowed on instant vector, got range vector instead");
  EXPECT_EQ(err("a offset 1m offset 1m"),
            "1:13: parse error: offset may not be set multiple times");
  EXPECT_EQ(err("sum(x) offset 1m"),
            "1:1: parse error: offset modifier must be preceded by an instant vector selector or "
            "range vector selector or a subquery");
  EXPECT_EQ(err(R"(x{a=~"("})"), "1:6: parse error: error parsing regexp: missing ): ^(?:()$");
  EXPECT_EQ(err(R"(foo{__name__="bar"})"),
            "1:5: parse error: metric name must not be set twice: \"foo\" or \"bar\"");
  EXPECT_EQ(err("topk(x, y)"),
            "1:6: parse error: expected type scalar in aggregation parameter, got instant vector");
  EXPECT_EQ(err("round()"),
            "1:1: parse error: expected at least 1 argument(s) in call to \"round\", got 0");
  EXPECT_EQ(err("abs(a, b)"), "1:1: parse error: expected 1 argument(s) in call to \"abs\", got 2");
  EXPECT_EQ(err("x[5x]"), "1:3: parse error: bad number or duration syntax: \"5x\"");
  EXPECT_EQ(err("\"abc"), "1:1: parse error: unterminated quoted string");
  EXPECT_EQ(err(""), "1:1: parse error: no expression found in input");
  EXPECT_EQ(err("x $"), "1:3: parse error: unexpected character: '$'");
}

}  // namespace
