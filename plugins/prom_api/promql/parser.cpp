#include "parser.hpp"

#include <re2/re2.h>
#include <strings.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <moni/duration.hpp>
#include <stdexcept>

#include "lexer.hpp"

namespace moni::promql {
namespace {

struct Fail {
  size_t pos;
  std::string msg;
};

bool ieq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Prometheus lowercases a word before looking it up among keywords and
// aggregation operators ("AND", "Sum", "ON", "OFFSET" are those words);
// function names stay case-sensitive.
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

// `t` is the keyword `kw` (given in lower case), in any case.
bool is_kw(const Token& t, std::string_view kw) { return t.type == Tok::Ident && ieq(t.text, kw); }

Op aggregation_op(std::string_view word) {
  std::string s = lower(word);
  if (s == "sum") return Op::Sum;
  if (s == "avg") return Op::Avg;
  if (s == "min") return Op::Min;
  if (s == "max") return Op::Max;
  if (s == "count") return Op::Count;
  if (s == "stddev") return Op::Stddev;
  if (s == "stdvar") return Op::Stdvar;
  if (s == "topk") return Op::Topk;
  if (s == "bottomk") return Op::Bottomk;
  if (s == "quantile") return Op::Quantile;
  if (s == "count_values") return Op::CountValues;
  if (s == "group") return Op::Group;
  return Op::None;
}

// Keywords that cannot stand as a metric name. The others (by, without,
// offset, and, or, unless, start, end and the aggregation operators) name a
// metric where an expression starts, as in Prometheus' grammar
// (`offset offset 5m`, `sum + 1`).
bool is_keyword(std::string_view word) {
  std::string s = lower(word);
  return s == "on" || s == "ignoring" || s == "group_left" || s == "group_right" || s == "bool" ||
         s == "atan2";
}

int precedence(Op op) {
  switch (op) {
    case Op::Or:
      return 1;
    case Op::And:
    case Op::Unless:
      return 2;
    case Op::Eql:
    case Op::Neq:
    case Op::Gtr:
    case Op::Lss:
    case Op::Gte:
    case Op::Lte:
      return 3;
    case Op::Add:
    case Op::Sub:
      return 4;
    case Op::Mul:
    case Op::Div:
    case Op::Mod:
    case Op::Atan2:
      return 5;
    case Op::Pow:
      return 6;
    default:
      return 0;
  }
}

// Deepest expression tree and parser recursion accepted. Prometheus has no
// limit (its parser keeps its stack on the heap); here every level costs
// stack in the parser, the engine and the tree's destructor (about 8 KB per
// level in the parser under ASan: 1000 levels overflowed 8 MB), and a query
// of 64 MB of "(" must not overflow a worker thread's stack. No real query
// comes near it.
constexpr uint32_t kMaxNesting = 256;
// An @ time's bound, far enough from int64's limits that subtracting
// offsets, ranges and the lookback delta (each < 2^63 ns) cannot overflow.
constexpr int64_t kMaxAtMs = INT64_MAX / 4;

class Parser {
 public:
  explicit Parser(std::string_view q) : q_(q), toks_(lex(q)) {
    const Token& last = toks_.back();
    if (last.type == Tok::Error) throw Fail{last.pos, last.text};
  }

  ExprPtr parse_all() {
    if (peek().type == Tok::End) fail(0, "no expression found in input");
    ExprPtr e = expr(1);
    if (peek().type != Tok::End) unexpected(peek(), "");
    return e;
  }

 private:
  const Token& peek(size_t k = 0) const { return toks_[std::min(i_ + k, toks_.size() - 1)]; }
  const Token& next() { return toks_[std::min(i_++, toks_.size() - 1)]; }
  [[noreturn]] void fail(size_t pos, std::string msg) { throw Fail{pos, std::move(msg)}; }
  [[noreturn]] void unexpected(const Token& t, std::string_view context,
                               std::string_view expected = {}) {
    if (t.type == Tok::End) end_inside_brackets(t);
    std::string m = "unexpected " + describe(t);
    if (!context.empty()) m += " in " + std::string(context);
    if (!expected.empty()) m += ", expected " + std::string(expected);
    fail(t.pos, m);
  }
  const Token& expect(Tok t, std::string_view context, std::string_view expected) {
    if (peek().type != t) unexpected(peek(), context, expected);
    return next();
  }

  // Sets e's height from its children's; a tree deeper than kMaxNesting is
  // refused before it grows further.
  void grown(Expr& e) {
    uint32_t h = 0;
    for (const auto& a : e.args) h = std::max(h, a->height);
    if (e.param) h = std::max(h, e.param->height);
    e.height = h + 1;
    if (e.height > kMaxNesting) too_deep(e.pos);
  }
  [[noreturn]] void too_deep(size_t pos) {
    fail(pos, "expression nested too deeply (more than " + std::to_string(kMaxNesting) +
                  " levels of operators, function calls, aggregations or parentheses)");
  }
  // Bounds the recursion of expr(): unary signs ("----1") nest calls without
  // growing the tree.
  struct Nest {
    Parser& p;
    size_t pos;
    Nest(Parser& parser, size_t at) : p(parser), pos(at) {
      if (++p.nesting_ > kMaxNesting) p.too_deep(pos);
    }
    ~Nest() { --p.nesting_; }
    Nest(const Nest&) = delete;
    Nest& operator=(const Nest&) = delete;
  };

  // Prometheus's lexer refuses the end of input inside an open "(", "[" or
  // "{" before its parser sees it: "sum(up" is `unclosed left parenthesis`.
  void end_inside_brackets(const Token& end) {
    int parens = 0, brackets = 0, braces = 0;
    for (const Token& t : toks_) {
      parens += (t.type == Tok::LParen) - (t.type == Tok::RParen);
      brackets += (t.type == Tok::LBracket) - (t.type == Tok::RBracket);
      braces += (t.type == Tok::LBrace) - (t.type == Tok::RBrace);
    }
    if (parens > 0) fail(end.pos, "unclosed left parenthesis");
    if (brackets > 0) fail(end.pos, "unclosed left bracket");
    if (braces > 0) fail(end.pos, "unexpected end of input inside braces");
  }

  ExprPtr make(ExprKind k, size_t pos) {
    auto e = std::make_unique<Expr>();
    e->kind = k;
    e->pos = pos;
    return e;
  }

  // Binary operator at the current token, or None.
  Op peek_binop() const {
    const Token& t = peek();
    switch (t.type) {
      case Tok::Add:
        return Op::Add;
      case Tok::Sub:
        return Op::Sub;
      case Tok::Mul:
        return Op::Mul;
      case Tok::Div:
        return Op::Div;
      case Tok::Mod:
        return Op::Mod;
      case Tok::Pow:
        return Op::Pow;
      case Tok::Eql:
        return Op::Eql;
      case Tok::Neq:
        return Op::Neq;
      case Tok::Gtr:
        return Op::Gtr;
      case Tok::Lss:
        return Op::Lss;
      case Tok::Gte:
        return Op::Gte;
      case Tok::Lte:
        return Op::Lte;
      case Tok::Ident:
        if (ieq(t.text, "and")) return Op::And;
        if (ieq(t.text, "or")) return Op::Or;
        if (ieq(t.text, "unless")) return Op::Unless;
        if (ieq(t.text, "atan2")) return Op::Atan2;
        return Op::None;
      default:
        return Op::None;
    }
  }

  ExprPtr expr(int min_prec) {
    Nest nest(*this, peek().pos);
    ExprPtr lhs = unary();
    for (;;) {
      Op op = peek_binop();
      int prec = precedence(op);
      if (op == Op::None || prec < min_prec) return lhs;
      const Token& opt = next();
      auto b = make(ExprKind::Binary, lhs->pos);
      b->op = op;
      size_t op_pos = opt.pos;
      bool explicit_matching = false;
      VectorMatching vm;
      if (is_kw(peek(), "bool")) {
        next();
        b->return_bool = true;
      }
      if (is_kw(peek(), "on") || is_kw(peek(), "ignoring")) {
        vm.on = ieq(next().text, "on");
        vm.labels = label_list("grouping opts");
        explicit_matching = true;
        if (is_kw(peek(), "group_left") || is_kw(peek(), "group_right")) {
          vm.card = ieq(next().text, "group_left") ? Card::ManyToOne : Card::OneToMany;
          if (peek().type == Tok::LParen) vm.include = label_list("grouping opts");
        }
      }
      int next_min = op == Op::Pow ? prec : prec + 1;
      ExprPtr rhs = expr(next_min);
      b->end = rhs->end;
      ValueType lt = lhs->type(), rt = rhs->type();
      if (b->return_bool && !is_comparison(op))
        fail(op_pos, "bool modifier can only be used on comparison operators");
      if (is_comparison(op) && lt == ValueType::Scalar && rt == ValueType::Scalar &&
          !b->return_bool)
        fail(op_pos, "comparisons between scalars must use BOOL modifier");
      if ((lt != ValueType::Scalar && lt != ValueType::Vector) ||
          (rt != ValueType::Scalar && rt != ValueType::Vector))
        fail(lhs->pos, "binary expression must contain only scalar and instant vector types");
      if (is_set_op(op)) {
        if (lt != ValueType::Vector || rt != ValueType::Vector)
          fail(op_pos, std::string("set operator \"") + op_name(op) +
                           "\" not allowed in binary scalar expression");
        if (vm.card == Card::ManyToOne || vm.card == Card::OneToMany)
          fail(op_pos, std::string("no grouping allowed for \"") + op_name(op) + "\" operation");
        vm.card = Card::ManyToMany;
      }
      if (lt == ValueType::Vector && rt == ValueType::Vector) {
        b->matching = vm;
      } else if (explicit_matching && !vm.labels.empty()) {
        fail(op_pos, "vector matching only allowed between instant vectors");
      }
      for (const auto& l1 : vm.include)
        for (const auto& l2 : vm.labels)
          if (vm.on && l1 == l2)
            fail(op_pos, "label \"" + l1 + "\" must not occur in ON and GROUP clause at once");
      b->args.push_back(std::move(lhs));
      b->args.push_back(std::move(rhs));
      grown(*b);
      lhs = std::move(b);
    }
  }

  ExprPtr unary() {
    if (peek().type == Tok::Add || peek().type == Tok::Sub) {
      const Token& t = next();
      bool neg = t.type == Tok::Sub;
      ExprPtr operand = expr(6);
      if (operand->kind == ExprKind::Number) {
        if (neg) operand->number = -operand->number;
        operand->pos = t.pos;
        return operand;
      }
      ValueType ot = operand->type();
      if (ot != ValueType::Scalar && ot != ValueType::Vector)
        fail(t.pos, std::string("unary expression only allowed on expressions of type scalar or "
                                "instant vector, got \"") +
                        value_type_name(ot) + "\"");
      auto u = make(ExprKind::Unary, t.pos);
      u->op = neg ? Op::Sub : Op::Add;
      u->end = operand->end;
      u->args.push_back(std::move(operand));
      grown(*u);
      return u;
    }
    return postfix(primary());
  }

  double parse_number(const Token& t) {
    const std::string& s = t.text;
    if (ieq(s, "inf")) return INFINITY;
    if (ieq(s, "nan")) return NAN;
    if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
      return static_cast<double>(std::strtoull(s.c_str() + 2, nullptr, 16));
    }
    char* endp = nullptr;
    double v = std::strtod(s.c_str(), &endp);
    if (endp != s.c_str() + s.size()) fail(t.pos, "bad number or duration syntax: \"" + s + "\"");
    return v;
  }

  // A duration token; Prometheus refuses 0 for ranges, steps and offsets.
  int64_t duration(const Token& t) {
    auto d = parse_promql_duration(t.text);
    if (!d) fail(t.pos, d.error().message);
    if (*d == 0) fail(t.pos, "duration must be greater than 0");
    return *d;
  }

  ExprPtr primary() {
    const Token& t = peek();
    switch (t.type) {
      case Tok::Number: {
        next();
        auto e = make(ExprKind::Number, t.pos);
        e->number = parse_number(t);
        e->end = t.end;
        return e;
      }
      case Tok::String: {
        next();
        auto e = make(ExprKind::String, t.pos);
        e->str = t.text;
        e->end = t.end;
        return e;
      }
      case Tok::LParen: {
        next();
        auto e = make(ExprKind::Paren, t.pos);
        e->args.push_back(expr(1));
        e->end = expect(Tok::RParen, "paren expression", "\")\"").end;
        grown(*e);
        return e;
      }
      case Tok::LBrace: {
        auto e = make(ExprKind::VectorSelector, t.pos);
        selector_body(*e);
        return e;
      }
      case Tok::Ident: {
        if (ieq(t.text, "inf") || ieq(t.text, "nan")) {
          next();
          auto e = make(ExprKind::Number, t.pos);
          e->number = parse_number(t);
          e->end = t.end;
          return e;
        }
        Op agg = aggregation_op(t.text);
        if (agg != Op::None &&
            (peek(1).type == Tok::LParen || is_kw(peek(1), "by") || is_kw(peek(1), "without")))
          return aggregation(agg);
        if (peek(1).type == Tok::LParen) return call();
        if (is_keyword(t.text)) unexpected(t, "");
        next();
        auto e = make(ExprKind::VectorSelector, t.pos);
        e->metric_name = t.text;
        e->end = t.end;
        e->matchers.push_back(Matcher{MatchType::Equal, std::string(kMetricNameLabel), t.text});
        if (peek().type == Tok::LBrace) selector_body(*e);
        check_selector(*e);
        return e;
      }
      case Tok::End:
        end_inside_brackets(t);
        fail(t.pos, "unexpected end of input");
      default:
        unexpected(t, "");
    }
  }

  void selector_body(Expr& e) {
    next();  // {
    for (;;) {
      if (peek().type == Tok::RBrace) break;
      const Token& name = peek();
      if (name.type != Tok::Ident) unexpected(name, "label matching", "label matching operator");
      next();
      const Token& opt = next();
      MatchType mt;
      switch (opt.type) {
        case Tok::Assign:
          mt = MatchType::Equal;
          break;
        case Tok::Neq:
          mt = MatchType::NotEqual;
          break;
        case Tok::EqlRegex:
          mt = MatchType::Regex;
          break;
        case Tok::NeqRegex:
          mt = MatchType::NotRegex;
          break;
        default:
          unexpected(opt, "label matching", "label matching operator");
      }
      const Token& val = peek();
      if (val.type != Tok::String) unexpected(val, "label matching", "string");
      next();
      if (mt == MatchType::Regex || mt == MatchType::NotRegex) {
        RE2 re("^(?:" + val.text + ")$", RE2::Quiet);
        if (!re.ok()) fail(val.pos, "error parsing regexp: " + re.error());
      }
      if (name.text == kMetricNameLabel && !e.metric_name.empty())
        fail(name.pos, "metric name must not be set twice: \"" + e.metric_name + "\" or \"" +
                           val.text + "\"");
      e.matchers.push_back(Matcher{mt, name.text, val.text});
      if (peek().type == Tok::Comma) {
        next();
        continue;
      }
      if (peek().type != Tok::RBrace) unexpected(peek(), "label matching", "\",\" or \"}\"");
    }
    e.end = next().end;  // }
    check_selector(e);
  }

  static bool matches_empty(const Matcher& m) {
    switch (m.type) {
      case MatchType::Equal:
        return m.value.empty();
      case MatchType::NotEqual:
        return !m.value.empty();
      case MatchType::Regex:
        return RE2::FullMatch("", RE2("(?:" + m.value + ")", RE2::Quiet));
      case MatchType::NotRegex:
        return !RE2::FullMatch("", RE2("(?:" + m.value + ")", RE2::Quiet));
    }
    return false;
  }

  void check_selector(const Expr& e) {
    bool non_empty = false;
    for (const auto& m : e.matchers)
      if (!matches_empty(m)) non_empty = true;
    if (!non_empty) fail(e.pos, "vector selector must contain at least one non-empty matcher");
  }

  std::vector<std::string> label_list(std::string_view context) {
    expect(Tok::LParen, context, "\"(\"");
    std::vector<std::string> out;
    for (;;) {
      if (peek().type == Tok::RParen) break;
      const Token& t = peek();
      if (t.type != Tok::Ident || !valid_label_name(t.text)) unexpected(t, context, "label");
      out.push_back(next().text);
      if (peek().type == Tok::Comma) {
        next();
        continue;
      }
      if (peek().type != Tok::RParen) unexpected(peek(), context, "\",\" or \")\"");
    }
    next();
    return out;
  }

  ExprPtr aggregation(Op op) {
    const Token& t = next();
    auto e = make(ExprKind::Aggregate, t.pos);
    e->op = op;
    bool grouped = false;
    auto modifiers = [&] {
      if (is_kw(peek(), "by") || is_kw(peek(), "without")) {
        if (grouped) unexpected(peek(), "aggregation");
        e->without = ieq(next().text, "without");
        e->grouping = label_list("grouping opts");
        grouped = true;
      }
    };
    modifiers();
    expect(Tok::LParen, "aggregation", "\"(\"");
    std::vector<ExprPtr> args;
    if (peek().type != Tok::RParen) {
      for (;;) {
        args.push_back(expr(1));
        if (peek().type == Tok::Comma) {
          next();
          continue;
        }
        break;
      }
    }
    e->end = expect(Tok::RParen, "aggregation", "\",\" or \")\"").end;
    modifiers();
    bool needs_param =
        op == Op::Topk || op == Op::Bottomk || op == Op::Quantile || op == Op::CountValues;
    size_t want = needs_param ? 2 : 1;
    if (args.size() != want) {
      if (args.empty()) fail(e->end - 1, "no arguments for aggregate expression provided");
      fail(t.pos,
           std::string("wrong number of arguments for aggregate expression provided, expected ") +
               std::to_string(want) + ", got " + std::to_string(args.size()));
    }
    if (needs_param) {
      e->param = std::move(args[0]);
      ValueType want_t = op == Op::CountValues ? ValueType::String : ValueType::Scalar;
      if (e->param->type() != want_t)
        fail(e->param->pos, std::string("expected type ") + value_type_name(want_t) +
                                " in aggregation parameter, got " +
                                value_type_name(e->param->type()));
    }
    ExprPtr& inner = args.back();
    if (inner->type() != ValueType::Vector)
      fail(inner->pos, std::string("expected type instant vector in aggregation expression, got ") +
                           value_type_name(inner->type()));
    e->args.push_back(std::move(inner));
    grown(*e);
    return e;
  }

  ExprPtr call() {
    const Token& t = next();
    const FunctionInfo* f = find_function(t.text);
    if (!f) fail(t.pos, "unknown function with name \"" + t.text + "\"");
    auto e = make(ExprKind::Call, t.pos);
    e->func = f;
    next();  // (
    if (peek().type != Tok::RParen) {
      for (;;) {
        e->args.push_back(expr(1));
        if (peek().type == Tok::Comma) {
          next();
          continue;
        }
        break;
      }
    }
    e->end = expect(Tok::RParen, "function call arguments", "\",\" or \")\"").end;
    grown(*e);
    int nargs = static_cast<int>(f->arg_types.size());
    int got = static_cast<int>(e->args.size());
    auto n = [](int x) { return std::to_string(x); };
    if (f->variadic == 0) {
      if (got != nargs)
        fail(t.pos,
             "expected " + n(nargs) + " argument(s) in call to \"" + f->name + "\", got " + n(got));
    } else {
      int na = nargs - 1;
      if (na > got)
        fail(t.pos, "expected at least " + n(na) + " argument(s) in call to \"" + f->name +
                        "\", got " + n(got));
      if (f->variadic > 0 && na + f->variadic < got)
        fail(t.pos, "expected at most " + n(na + f->variadic) + " argument(s) in call to \"" +
                        f->name + "\", got " + n(got));
    }
    for (size_t i = 0; i < e->args.size(); ++i) {
      ValueType want = f->arg_types[std::min(i, f->arg_types.size() - 1)];
      ValueType have = e->args[i]->type();
      if (want != have)
        fail(e->args[i]->pos, std::string("expected type ") + value_type_name(want) +
                                  " in call to function \"" + f->name + "\", got " +
                                  value_type_name(have));
    }
    return e;
  }

  // Selector ranges, subqueries, offset and @ after a primary expression.
  ExprPtr postfix(ExprPtr e) {
    for (;;) {
      const Token& t = peek();
      if (t.type == Tok::LBracket) {
        next();
        const Token& d = peek();
        if (d.type != Tok::Duration) unexpected(d, "range", "duration");
        next();
        int64_t range = duration(d);
        if (peek().type == Tok::Colon) {
          next();
          int64_t step = 0;
          if (peek().type == Tok::Duration) step = duration(next());
          size_t end = expect(Tok::RBracket, "subquery selector", "\"]\"").end;
          if (e->type() != ValueType::Vector)
            fail(e->pos, std::string("subquery is only allowed on instant vector, got ") +
                             value_type_name(e->type()) + " instead");
          auto s = make(ExprKind::Subquery, e->pos);
          s->range_ms = range;
          s->step_ms = step;
          s->end = end;
          s->args.push_back(std::move(e));
          grown(*s);
          e = std::move(s);
        } else {
          size_t end = expect(Tok::RBracket, "range", "\"]\"").end;
          if (e->kind != ExprKind::VectorSelector)
            fail(e->pos, "ranges only allowed for vector selectors");
          if (e->offset_ms != 0 || e->at != AtKind::None)
            fail(t.pos, "no offset modifiers allowed before range");
          auto m = make(ExprKind::MatrixSelector, e->pos);
          m->range_ms = range;
          m->end = end;
          m->args.push_back(std::move(e));
          grown(*m);
          e = std::move(m);
        }
        continue;
      }
      if (is_kw(t, "offset")) {
        next();
        bool neg = false;
        if (peek().type == Tok::Sub || peek().type == Tok::Add) neg = next().type == Tok::Sub;
        const Token& d = peek();
        if (d.type != Tok::Duration) unexpected(d, "offset", "duration");
        next();
        int64_t off = duration(d);
        Expr* target = modifier_target(*e, "offset");
        if (target->offset_ms != 0) fail(t.pos, "offset may not be set multiple times");
        target->offset_ms = neg ? -off : off;
        e->end = d.end;
        continue;
      }
      if (t.type == Tok::At) {
        next();
        Expr* target = modifier_target(*e, "@");
        if (target->at != AtKind::None) fail(t.pos, "@ <timestamp> may not be set multiple times");
        const Token& v = peek();
        if (is_kw(v, "start") || is_kw(v, "end")) {
          next();
          expect(Tok::LParen, "@", "\"(\"");
          e->end = expect(Tok::RParen, "@", "\")\"").end;
          target->at = ieq(v.text, "start") ? AtKind::Start : AtKind::End;
          continue;
        }
        bool neg = false;
        if (peek().type == Tok::Sub || peek().type == Tok::Add) neg = next().type == Tok::Sub;
        const Token& num = peek();
        if (num.type != Tok::Number &&
            !(num.type == Tok::Ident && (ieq(num.text, "inf") || ieq(num.text, "nan"))))
          unexpected(num, "@", "timestamp");
        next();
        double secs = parse_number(num) * (neg ? -1 : 1);
        // Prometheus's bounds (seconds within int64, the position of the
        // modified expression, %f); beyond kMaxAtMs the time is clamped,
        // where Prometheus's conversion to milliseconds wraps around.
        if (!std::isfinite(secs) || secs >= 9.223372036854775807e18 ||
            secs <= -9.223372036854775808e18) {
          std::string shown = std::isnan(secs)   ? "NaN"
                              : std::isinf(secs) ? (secs > 0 ? "+Inf" : "-Inf")
                                                 : std::string();
          if (shown.empty()) {
            char buf[400];
            std::snprintf(buf, sizeof buf, "%f", secs);
            shown = buf;
          }
          fail(e->pos, "timestamp out of bounds for @ modifier: " + shown);
        }
        double ms_ = std::clamp(std::round(secs * 1000.0), -static_cast<double>(kMaxAtMs),
                                static_cast<double>(kMaxAtMs));
        target->at = AtKind::Fixed;
        target->at_ms = static_cast<int64_t>(ms_);
        e->end = num.end;
        continue;
      }
      return e;
    }
  }

  Expr* modifier_target(Expr& e, std::string_view what) {
    if (e.kind == ExprKind::VectorSelector || e.kind == ExprKind::Subquery) return &e;
    if (e.kind == ExprKind::MatrixSelector) return e.args[0].get();
    fail(e.pos, std::string(what) +
                    " modifier must be preceded by an instant vector selector or "
                    "range vector selector or a subquery");
  }

  std::string_view q_;
  std::vector<Token> toks_;
  size_t i_ = 0;
  uint32_t nesting_ = 0;
};

}  // namespace

// As Prometheus's model.ParseDuration: <int>y<int>w<int>d<int>h<int>m<int>s<int>ms,
// each part optional, in this order; the total must fit time.Duration (int64
// nanoseconds, about 292 years), so that time arithmetic on it cannot overflow.
Result<int64_t> parse_promql_duration(std::string_view s) {
  if (s == "0") return int64_t{0};
  if (s.empty()) return make_error("empty duration string");
  static constexpr struct {
    std::string_view unit;
    int64_t ms;
  } kUnits[] = {{"y", 365LL * 86'400'000},
                {"w", 7LL * 86'400'000},
                {"d", 86'400'000},
                {"h", 3'600'000},
                {"m", 60'000},
                {"s", 1000},
                {"ms", 1}};
  constexpr int64_t kMaxMs = INT64_MAX / 1'000'000;  // time.Duration's range in ms
  auto invalid = [&] {
    return make_error("not a valid duration string: \"" + std::string(s) + "\"");
  };
  int64_t total = 0;
  bool overflow = false;
  size_t i = 0, next_unit = 0;
  while (i < s.size()) {
    size_t j = i;
    int64_t n = 0;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') {
      if (n <= kMaxMs) n = n * 10 + (s[j] - '0');  // beyond kMaxMs it overflows anyway
      ++j;
    }
    if (j == i) return invalid();
    size_t k = j;
    while (k < s.size() && ((s[k] >= 'a' && s[k] <= 'z') || (s[k] >= 'A' && s[k] <= 'Z'))) ++k;
    std::string_view unit = s.substr(j, k - j);
    size_t u = next_unit;
    while (u < std::size(kUnits) && kUnits[u].unit != unit) ++u;
    if (u == std::size(kUnits)) return invalid();
    next_unit = u + 1;
    if (n > kMaxMs / kUnits[u].ms || total + n * kUnits[u].ms > kMaxMs)
      overflow = true;
    else
      total += n * kUnits[u].ms;
    i = k;
  }
  if (overflow) return make_error("duration out of range");
  return total;
}

Result<ExprPtr> parse(std::string_view query, ParseError* err) {
  try {
    Parser p(query);
    return p.parse_all();
  } catch (const Fail& f) {
    size_t line = 1, last_nl = 0;
    bool seen_nl = false;
    for (size_t i = 0; i < f.pos && i < query.size(); ++i)
      if (query[i] == '\n') ++line, last_nl = i, seen_nl = true;
    size_t col = seen_nl ? f.pos - last_nl : f.pos + 1;
    std::string formatted =
        std::to_string(line) + ":" + std::to_string(col) + ": parse error: " + f.msg;
    if (err) *err = ParseError{f.pos, f.msg, formatted};
    return make_error(formatted);
  }
}

}  // namespace moni::promql
