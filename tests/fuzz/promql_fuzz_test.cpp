// PromQL parser and engine under random input: queries generated from the
// grammar (valid and nearly valid), then mutated byte by byte. Every query
// either fails to parse with "line:col: parse error: ..." at a position
// inside it, or evaluates to a result or a typed error. Fixed seeds: a
// failure names the seed and the query, which reproduce it.
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>

#include "memory_store.hpp"
#include "promql/engine.hpp"
#include "promql/parser.hpp"

namespace {

using namespace moni::promql;
using test_support::MemoryStore;

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool chance(int percent) { return static_cast<int>(pick(100)) < percent; }
  template <class T, size_t N>
  const T& one_of(const T (&a)[N]) {
    return a[pick(N)];
  }

  std::string duration() {
    static const char* units[] = {"ms", "s", "m", "h", "d", "w", "y"};
    static const char* odd[] = {
        "0s",   "293y", "292y24w", "1m1h", "5ms5s", "99999999999999999999s", "1y2w3d4h5m6s7ms",
        "1.5m", "1"};
    if (chance(10)) return one_of(odd);
    return std::to_string(1 + pick(chance(20) ? 1000000 : 100)) + one_of(units);
  }

  std::string label_value() {
    static const char* vals[] = {"a",      "",        ".*",    "a|b", "node.*",
                                 "(a*)*b", "\\\\",    "\\\"",  "é",   "[",
                                 "x{2,3}", "\\u00e9", "\\xff", "\\n", "a{1000}{1000}"};
    return one_of(vals);
  }

  std::string selector(int depth) {
    static const char* names[] = {"up",  "c_total", "g",   "nonexistent", "on", "offset",
                                  "sum", "bool",    "inf", "nan",         "by", "start"};
    static const char* ops[] = {"=", "!=", "=~", "!~", "==", "<"};
    static const char* lnames[] = {"job", "instance", "__name__", "le", "a", "0bad", "_"};
    std::string s = chance(85) ? one_of(names) : "";
    if (s.empty() || chance(40)) {
      s += "{";
      size_t n = pick(4);
      for (size_t i = 0; i < n; ++i) {
        if (i) s += ",";
        s += one_of(lnames);
        s += one_of(ops);
        s += chance(80) ? "\"" + label_value() + "\"" : "'" + label_value() + "'";
      }
      if (chance(10)) s += ",";
      s += "}";
    }
    if (chance(25)) s += "[" + duration() + "]";
    return modifiers(s, depth);
  }

  std::string modifiers(std::string s, int) {
    static const char* ats[] = {"1700000000", "-1",      "9.3e15", "1e20", "inf",
                                "nan",        "start()", "end()",  "0x10", "-9.2e18"};
    if (chance(15)) s += " offset " + std::string(chance(30) ? "-" : "") + duration();
    if (chance(10)) s += " @ " + std::string(one_of(ats));
    return s;
  }

  std::string expr(int depth) {
    if (depth <= 0 || chance(25)) return leaf(depth);
    static const char* fns[] = {"rate",
                                "irate",
                                "abs",
                                "histogram_quantile",
                                "label_replace",
                                "label_join",
                                "vector",
                                "scalar",
                                "time",
                                "clamp",
                                "sort_desc",
                                "absent",
                                "max_over_time",
                                "quantile_over_time",
                                "round",
                                "timestamp",
                                "predict_linear",
                                "holt_winters",
                                "nosuch",
                                "count_over_time"};
    static const char* aggs[] = {"sum",  "avg",     "min",      "max",   "count",        "stddev",
                                 "topk", "bottomk", "quantile", "group", "count_values", "stdvar"};
    static const char* binops[] = {"+", "-", "*",  "/",  "%",   "^",  "==",     "!=",
                                   ">", "<", ">=", "<=", "and", "or", "unless", "atan2"};
    switch (pick(7)) {
      case 0: {
        std::string f = one_of(fns);
        f += "(";
        size_t n = pick(4);
        for (size_t i = 0; i < n; ++i) f += (i ? ", " : "") + expr(depth - 1);
        return f + ")";
      }
      case 1: {
        std::string a = one_of(aggs);
        std::string grouping = chance(50) ? std::string(chance(50) ? " by" : " without") + " (job" +
                                                (chance(30) ? ", instance" : "") + ")"
                                          : "";
        bool before = chance(50);
        std::string s = a + (before ? grouping : "") + "(";
        if (chance(40)) s += (chance(50) ? std::to_string(pick(5)) : "\"v\"") + std::string(", ");
        s += expr(depth - 1) + ")";
        return s + (before ? "" : grouping);
      }
      case 2: {
        std::string m;
        if (chance(20)) m += " bool";
        if (chance(20)) m += chance(50) ? " on(job)" : " ignoring(instance)";
        if (chance(10)) m += chance(50) ? " group_left" : " group_right(job)";
        return expr(depth - 1) + " " + one_of(binops) + m + " " + expr(depth - 1);
      }
      case 3:
        return "(" + expr(depth - 1) + ")";
      case 4:
        return (chance(50) ? "-" : "+") + expr(depth - 1);
      case 5:
        return modifiers(
            "(" + expr(depth - 1) + ")[" + duration() + ":" + (chance(70) ? duration() : "") + "]",
            depth);
      default:
        return leaf(depth);
    }
  }

  std::string leaf(int depth) {
    static const char* nums[] = {"1",
                                 "0",
                                 "-0",
                                 "1e308",
                                 "1e-308",
                                 "0x7fffffffffffffff",
                                 "0xffffffffffffffffffff",
                                 "NaN",
                                 "Inf",
                                 "-inf",
                                 ".5",
                                 "1e",
                                 "08",
                                 "1_000"};
    static const char* strs[] = {"\"str\"",        "'s'",           "`raw`", "\"\\u12\"",
                                 "\"unterminated", "\"\\xc3\\x28\""};
    switch (pick(6)) {
      case 0:
        return one_of(nums);
      case 1:
        return one_of(strs);
      default:
        return selector(depth);
    }
  }

  // Inserts, deletes, replaces or duplicates bytes, NUL and invalid UTF-8
  // among them.
  std::string mutate(std::string s) {
    static const char bytes[] = {'\0', '\xff', '\xc3', '(', ')', '[', ']',  '{', '}', '"', '\'',
                                 '`',  '\\',   ',',    ':', '@', '#', '\n', ' ', '=', '~', '!'};
    size_t n = 1 + pick(4);
    for (size_t k = 0; k < n; ++k) {
      size_t at = s.empty() ? 0 : pick(s.size() + 1);
      switch (pick(4)) {
        case 0:
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), one_of(bytes));
          break;
        case 1:
          if (at < s.size()) s.erase(at, 1 + pick(3));
          break;
        case 2:
          if (at < s.size()) s[at] = static_cast<char>(pick(256));
          break;
        default:
          if (at < s.size()) s.insert(at, s.substr(at, pick(s.size() - at + 1)));
          break;
      }
    }
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

moni::Labels L(std::initializer_list<std::pair<const char*, const char*>> kv) {
  moni::Labels out;
  for (const auto& [k, v] : kv) out.push_back({k, v});
  std::sort(out.begin(), out.end());
  return out;
}

void fill(MemoryStore& store) {
  for (int64_t t = 0; t <= 1200; t += 15) {
    store.add(L({{"__name__", "up"}, {"instance", "a"}, {"job", "node"}}), t * 1000, 1);
    store.add(L({{"__name__", "up"}, {"instance", "b"}, {"job", "node"}}), t * 1000, 0);
    store.add(L({{"__name__", "c_total"}, {"job", "api"}}), t * 1000, static_cast<double>(t % 300));
    store.add(L({{"__name__", "g"}, {"job", "api"}, {"le", "0.5"}}), t * 1000,
              t == 600 ? moni::stale_nan() : static_cast<double>(t) / 7);
  }
}

// "line:col: parse error: <message>": the line, or 0 when the shape is wrong.
size_t parse_error_line(const std::string& msg) {
  size_t i = 0, line = 0;
  auto digits = [&](size_t& out) {
    size_t start = i;
    out = 0;
    while (i < msg.size() && msg[i] >= '0' && msg[i] <= '9') out = out * 10 + (msg[i++] - '0');
    return i > start;
  };
  size_t col = 0;
  if (!digits(line) || i >= msg.size() || msg[i++] != ':' || !digits(col)) return 0;
  const std::string_view rest = std::string_view(msg).substr(i);
  if (!rest.starts_with(": parse error: ") || rest.size() == 15 || col == 0) return 0;
  return line;
}

// One query: a parse error at a sane position, or an evaluation that ends
// with a result or a typed error.
void check(const Engine& engine, const std::string& q, uint64_t seed, bool range) {
  auto e = parse(q);
  if (!e) {
    const std::string& msg = e.error().message;
    size_t line = parse_error_line(msg);
    ASSERT_GT(line, 0u) << "seed " << seed << " query [" << q << "]: " << msg;
    size_t lines = 1 + static_cast<size_t>(std::count(q.begin(), q.end(), '\n'));
    EXPECT_LE(line, lines) << "seed " << seed << " query [" << q << "]: " << msg;
    return;
  }
  QueryResult r = range ? engine.exec(**e, 0, 1'200'000, 60'000, false)
                        : engine.exec(**e, 600'000, 600'000, 0, true);
  if (!r.ok()) {
    EXPECT_FALSE(r.message.empty()) << "seed " << seed << " query [" << q << "]";
    EXPECT_NE(r.error, ErrorType::Internal)
        << "seed " << seed << " query [" << q << "]: " << r.message;
  }
}

TEST(PromqlFuzz, GeneratedAndMutatedQueries) {
  MemoryStore store;
  fill(store);
  QueryOptions o;
  o.timeout = std::chrono::milliseconds(300);
  o.max_samples = 200'000;
  Engine engine(store, o);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(12);
  size_t parsed = 0, total = 0;
  for (uint64_t seed = 1; seed <= 4000; ++seed) {
    if (std::chrono::steady_clock::now() > deadline) break;
    Gen g(seed);
    std::string q = g.expr(1 + static_cast<int>(g.pick(5)));
    for (int round = 0; round < 3; ++round) {
      ++total;
      if (parse(q)) ++parsed;
      check(engine, q, seed, g.chance(20));
      if (::testing::Test::HasFatalFailure()) return;
      q = g.mutate(q);
    }
  }
  // The generator reaches the engine, not only the parser's error paths.
  EXPECT_GT(parsed, total / 10) << parsed << " of " << total << " parsed";
}

TEST(PromqlFuzz, RandomBytes) {
  MemoryStore store;
  fill(store);
  QueryOptions o;
  o.timeout = std::chrono::milliseconds(300);
  Engine engine(store, o);
  static const char alphabet[] = "()[]{}\"'`\\,:@#=~!<>+-*/%^ \n\t0123456789.eExXmsyhdw_abcupon";
  for (uint64_t seed = 1; seed <= 3000; ++seed) {
    std::mt19937_64 rng(seed);
    std::string q(rng() % 64, '\0');
    for (char& c : q)
      c = rng() % 8 == 0 ? static_cast<char>(rng() % 256) : alphabet[rng() % (sizeof alphabet - 1)];
    check(engine, q, seed, false);
    if (::testing::Test::HasFatalFailure()) return;
  }
}

}  // namespace
