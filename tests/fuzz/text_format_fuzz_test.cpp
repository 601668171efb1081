// The exposition parser (moni::text, used by the scrape collector and
// `moni import`) under random and hostile bodies: generated Prometheus text
// and OpenMetrics, mutated byte by byte, plus the classic attacks (huge
// lines, NUL bytes, 100k labels, absurd timestamps). Every body either fails
// with "line N, column M: ..." or yields samples that keep the parser's
// promises: labels sorted, unique, __name__ present, no empty value.
#include <gtest/gtest.h>

#include <chrono>
#include <moni/text_format.hpp>
#include <random>
#include <string>

namespace {

using moni::text::Duplicates;
using moni::text::Format;
using moni::text::ParseOptions;
using moni::text::Parser;

class BodyGen {
 public:
  explicit BodyGen(uint64_t seed) : rng_(seed) {}
  size_t pick(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool chance(int percent) { return static_cast<int>(pick(100)) < percent; }
  template <class T, size_t N>
  const T& one_of(const T (&a)[N]) {
    return a[pick(N)];
  }

  std::string body(bool om) {
    static const char* names[] = {"a",      "b_total", "c_bucket", "d_sum",     "d_count",
                                  "e:rule", "_x",      "1bad",     "f_created", "g_info"};
    static const char* types[] = {"counter", "gauge", "histogram", "summary",        "untyped",
                                  "unknown", "info",  "stateset",  "gaugehistogram", "bogus"};
    static const char* values[] = {"1", "-1.5", "NaN", "+Inf", "-Inf", "1e308", "1e309", "0x10",
                                   "",  "1_0",  ".5",  "nan",  "inf",  "--1",   "1e-400"};
    static const char* stamps[] = {"",
                                   " 1700000000000",
                                   " -1",
                                   " 99999999999999999999",
                                   " 1.5",
                                   " 1700000000.123",
                                   " abc",
                                   " 9223372036854775807",
                                   " -9223372036854775808",
                                   " 1e300"};
    static const char* lvals[] = {"v",   "",  "\\\\", "\\\"", "\\n", "\\t",
                                  "\\x", "é", "\xff", "a,b",  "}",   "\\"};
    std::string out;
    size_t lines = 1 + pick(12);
    for (size_t i = 0; i < lines; ++i) {
      std::string name = one_of(names);
      switch (pick(6)) {
        case 0:
          out += "# TYPE " + name + " " + one_of(types) + "\n";
          break;
        case 1:
          out +=
              "# HELP " + name + " help \\n with \\\\ escapes" + (chance(20) ? "\\q" : "") + "\n";
          break;
        case 2:
          out += om ? "# UNIT " + name + " seconds\n" : "# a comment\n";
          break;
        default: {
          out += name;
          if (chance(70)) {
            out += "{";
            size_t n = pick(4);
            for (size_t k = 0; k < n; ++k) {
              if (k) out += ",";
              out += chance(90) ? std::string(1, static_cast<char>('a' + pick(4))) : "__name__";
              out += "=\"" + std::string(one_of(lvals)) + "\"";
            }
            if (chance(10)) out += ",";
            out += "}";
          }
          out += " " + std::string(one_of(values)) + one_of(stamps);
          if (om && chance(10)) out += " # {trace_id=\"1\"} 1 1700000000";
          out += "\n";
        }
      }
    }
    if (om && chance(80)) out += "# EOF\n";
    return out;
  }

  std::string mutate(std::string s) {
    static const char bytes[] = {'\0', '\xff', '\n', '\r', '{', '}', '"', '\\', ',', '#', ' ', '='};
    size_t n = 1 + pick(4);
    for (size_t k = 0; k < n && !s.empty(); ++k) {
      size_t at = pick(s.size());
      switch (pick(3)) {
        case 0:
          s.insert(s.begin() + static_cast<std::ptrdiff_t>(at), one_of(bytes));
          break;
        case 1:
          s.erase(at, 1 + pick(3));
          break;
        default:
          s[at] = static_cast<char>(pick(256));
      }
    }
    return s;
  }

 private:
  std::mt19937_64 rng_;
};

// The parser's promises about a body it accepted.
void check(Parser& p, const std::string& body, const ParseOptions& opt, const std::string& what) {
  auto r = p.parse(body, opt);
  if (!r) {
    EXPECT_EQ(r.error().message.rfind("line ", 0), 0u)
        << what << ": error without a position: " << r.error().message;
    EXPECT_EQ(p.size(), 0u) << what;
    return;
  }
  ASSERT_EQ(r->samples, p.size()) << what;
  for (size_t i = 0; i < p.size(); ++i) {
    auto s = p.sample(i);
    ASSERT_FALSE(s.labels.empty()) << what;
    EXPECT_FALSE(s.name().empty()) << what << ": sample " << i << " has no __name__";
    for (size_t k = 0; k < s.labels.size(); ++k) {
      EXPECT_FALSE(s.labels[k].value.empty()) << what << ": empty value of " << s.labels[k].name;
      if (k) {
        EXPECT_LT(s.labels[k - 1].name, s.labels[k].name) << what << ": labels not sorted";
      }
    }
    if (!s.has_timestamp) {
      EXPECT_EQ(s.timestamp_ms, opt.default_timestamp_ms) << what;
    }
  }
}

TEST(TextFormatFuzz, GeneratedAndMutatedBodies) {
  Parser p;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(8);
  for (uint64_t seed = 1; seed <= 6000; ++seed) {
    if (std::chrono::steady_clock::now() > deadline) break;
    BodyGen g(seed);
    bool om = g.chance(40);
    std::string body = g.body(om);
    ParseOptions opt;
    opt.format = g.chance(80) == om ? Format::OpenMetrics : Format::Text;
    opt.default_timestamp_ms = 1'700'000'000'000;
    opt.duplicates = g.chance(50) ? Duplicates::DropLater : Duplicates::Error;
    if (g.chance(20)) {
      opt.max_labels = 2;
      opt.max_label_value_length = 3;
      opt.max_samples = 3;
    }
    for (int round = 0; round < 3; ++round) {
      check(p, body, opt, "seed " + std::to_string(seed) + " round " + std::to_string(round));
      if (::testing::Test::HasFatalFailure()) return;
      body = g.mutate(body);
    }
  }
}

TEST(TextFormatFuzz, HostileBodies) {
  Parser p;
  ParseOptions text;
  ParseOptions om;
  om.format = Format::OpenMetrics;
  auto expect_error = [&](const std::string& body, const ParseOptions& o, const std::string& want) {
    auto r = p.parse(body, o);
    ASSERT_FALSE(r.ok()) << want;
    EXPECT_NE(r.error().message.find(want), std::string::npos) << r.error().message;
    // The offending line is quoted, but not all 16 MB of it.
    EXPECT_LT(r.error().message.size(), 4096u);
  };
  // One 16 MB line.
  expect_error("a{b=\"" + std::string(16 << 20, 'x') + "\n", text, "line 1");
  expect_error(std::string(16 << 20, 'a') + " 1 2 3\n", text, "line 1");
  // NUL bytes.
  expect_error(std::string("a 1\nb\0c 2\n", 10), text, "line 2");
  expect_error(std::string("a{b=\"x\0y\"} 1\n", 14), om, "line 1");
  // Absurd timestamps.
  expect_error("a 1 99999999999999999999\n", text, "line 1");
  // Truncated body, and content after # EOF.
  expect_error("a 1\nb 2", text, "truncated");
  expect_error("a 1\n# EOF\nb 1\n", om, "line 3");
  // 10 000 label names on one sample: accepted without a limit, refused
  // with one. (Parsing time grows with the square of the label count:
  // 100 000 take 8 s at -O2, so the test stays at 10 000; reported to the
  // SDK's owner.)
  std::string wide = "w{";
  for (int i = 0; i < 10000; ++i) wide += "l" + std::to_string(i) + "=\"v\",";
  wide += "} 1\n";
  auto r = p.parse(wide, text);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(p.sample(0).labels.size(), 10001u);
  ParseOptions limited;
  limited.max_labels = 64;
  expect_error(wide, limited, "line 1");
  // A repeated label name is an error, not a duplicate sample.
  expect_error("a{x=\"1\",x=\"2\"} 1\n", text, "line 1");
  // 20 000 copies of one series: the later ones dropped, as Prometheus does.
  std::string dups;
  for (int i = 0; i < 20000; ++i) dups += "d{x=\"1\"} " + std::to_string(i) + "\n";
  ParseOptions drop;
  drop.duplicates = Duplicates::DropLater;
  r = p.parse(dups, drop);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(p.size(), 1u);
  EXPECT_EQ(r->duplicates_dropped, 19999u);
}

}  // namespace
