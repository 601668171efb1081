// Table tests of the relabel processor against Prometheus's documented
// relabeling behaviour (each case: rules, input labels, expected labels or
// "dropped").
#include <plugin_harness.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>
#include <vector>

using moni::testing::PluginHarness;

namespace {

using LabelMap = std::map<std::string, std::string>;

struct Case {
  const char* name;
  const char* rules;  // TOML body: [[relabel_configs]] tables
  LabelMap in;
  bool dropped;
  LabelMap out;
};

std::string str(const LabelMap& m) {
  std::string s;
  for (const auto& [k, v] : m) s += k + "=" + v + ",";
  return s;
}

// Runs one sample (metric "m" plus `in`) through the processor.
std::optional<LabelMap> run(const std::string& rules, const LabelMap& in) {
  auto h = PluginHarness::load(moni::testing::plugin_path("relabel"), rules);
  if (!h) {
    ADD_FAILURE() << h.error().message;
    return std::nullopt;
  }
  EXPECT_TRUE((*h)->start().ok());
  moni::Batch b;
  std::vector<moni::LabelRef> refs;
  for (const auto& [k, v] : in) refs.push_back({k, v});
  b.add("m", refs, 1.0, 1000);
  b.describe("m", moni::MetricType::Gauge, "help");
  auto out = (*h)->process(b);
  EXPECT_TRUE(out.ok());
  (*h)->stop();
  if (!out.ok()) return std::nullopt;
  EXPECT_EQ(out->metadata.size(), 1u);  // metadata passes through
  if (out->samples.empty()) return LabelMap{{"<dropped>", ""}};
  EXPECT_EQ(out->samples.size(), 1u);
  EXPECT_EQ(out->samples[0].value, 1.0);
  EXPECT_EQ(out->samples[0].timestamp_ms, 1000);
  LabelMap m;
  for (const auto& l : out->samples[0].labels)
    if (l.name != "__name__") m[l.name] = l.value;
  return m;
}

const Case kCases[] = {
    {"replace with ${1}",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "f(.*)"
target_label = "d"
replacement = "ch${1}-ch${1}")T",
     {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}},
     false,
     {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}, {"d", "choo-choo"}}},
    {"replace chain with separator and several groups",
     R"T([[relabel_configs]]
source_labels = ["a", "b"]
regex = "f(.*);(.*)r"
target_label = "a"
replacement = "b${1}${2}m"
[[relabel_configs]]
source_labels = ["c", "a"]
regex = "(b).*b(.*)ba(.*)"
target_label = "d"
replacement = "$1$2$2$3")T",
     {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}},
     false,
     {{"a", "boobam"}, {"b", "bar"}, {"c", "baz"}, {"d", "boooom"}}},
    {"regex is fully anchored",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "f|o"
action = "drop")T",
     {{"a", "foo"}},
     false,
     {{"a", "foo"}}},
    {"drop on match",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = ".*o.*"
action = "drop")T",
     {{"a", "foo"}, {"b", "bar"}},
     true,
     {}},
    {"keep without match drops",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "no-match"
action = "keep")T",
     {{"a", "foo"}},
     true,
     {}},
    {"keep with match keeps",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "f.*"
action = "keep")T",
     {{"a", "foo"}},
     false,
     {{"a", "foo"}}},
    {"keep on __name__",
     R"T([[relabel_configs]]
source_labels = ["__name__"]
regex = "m"
action = "keep")T",
     {{"a", "foo"}},
     false,
     {{"a", "foo"}}},
    {"no replacement without a match",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "f"
target_label = "b"
replacement = "bar")T",
     {{"a", "boo"}},
     false,
     {{"a", "boo"}}},
    {"unanchored group inside",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = ".*(b).*"
target_label = "d")T",
     {{"a", "abc"}},
     false,
     {{"a", "abc"}, {"d", "b"}}},
    {"hashmod (md5, last 8 bytes) baz % 1000 = 976",
     R"T([[relabel_configs]]
source_labels = ["c"]
target_label = "d"
action = "hashmod"
modulus = 1000)T",
     {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}},
     false,
     {{"a", "foo"}, {"b", "bar"}, {"c", "baz"}, {"d", "976"}}},
    {"hashmod with newline",
     R"T([[relabel_configs]]
source_labels = ["a"]
target_label = "b"
action = "hashmod"
modulus = 1000)T",
     {{"a", "foo\nbar"}},
     false,
     {{"a", "foo\nbar"}, {"b", "734"}}},
    {"labelmap",
     R"T([[relabel_configs]]
regex = "(b.*)"
replacement = "bar_${1}"
action = "labelmap")T",
     {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}},
     false,
     {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}, {"bar_b1", "bar"}, {"bar_b2", "baz"}}},
    {"labelmap of meta labels",
     R"T([[relabel_configs]]
regex = "__meta_(my.*)"
action = "labelmap")T",
     {{"a", "foo"}, {"__meta_my_bar", "aaa"}, {"__meta_my_baz", "bbb"}, {"__meta_other", "ccc"}},
     false,
     {{"a", "foo"},
      {"__meta_my_bar", "aaa"},
      {"__meta_my_baz", "bbb"},
      {"__meta_other", "ccc"},
      {"my_bar", "aaa"},
      {"my_baz", "bbb"}}},
    {"target label from a group",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "some-([^-]+)-([^,]+)"
replacement = "${2}"
target_label = "${1}")T",
     {{"a", "some-name-value"}},
     false,
     {{"a", "some-name-value"}, {"name", "value"}}},
    {"empty replacement changes nothing",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "some-([^-]+)-([^,]+)"
replacement = "${3}"
target_label = "${1}")T",
     {{"a", "some-name-value"}},
     false,
     {{"a", "some-name-value"}}},
    {"invalid expanded target labels are skipped",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "some-([^-]+)-([^,]+)"
replacement = "${1}"
target_label = "${3}"
[[relabel_configs]]
source_labels = ["a"]
regex = "some-([^-]+)-([^,]+)"
replacement = "${1}"
target_label = "0${3}"
[[relabel_configs]]
source_labels = ["a"]
regex = "some-([^-]+)-([^,]+)"
replacement = "${1}"
target_label = "-${3}")T",
     {{"a", "some-name-value"}},
     false,
     {{"a", "some-name-value"}}},
    {"empty replacement result deletes the target",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "(x?)foo"
target_label = "b")T",
     {{"a", "foo"}, {"b", "old"}},
     false,
     {{"a", "foo"}}},
    {"$1x is the named group 1x (empty), $$ is a literal $",
     R"T([[relabel_configs]]
source_labels = ["a"]
regex = "(f)(?P<rest>.*)"
target_label = "b"
replacement = "[$1x][${1}x][$rest][$$][$]")T",
     {{"a", "foo"}},
     false,
     {{"a", "foo"}, {"b", "[][fx][oo][$][$]"}}},
    {"labelkeep",
     R"T([[relabel_configs]]
regex = "(b.*)|__name__"
action = "labelkeep")T",
     {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}},
     false,
     {{"b1", "bar"}, {"b2", "baz"}}},
    {"labeldrop",
     R"T([[relabel_configs]]
regex = "(b.*)"
action = "labeldrop")T",
     {{"a", "foo"}, {"b1", "bar"}, {"b2", "baz"}},
     false,
     {{"a", "foo"}}},
    {"lowercase and uppercase",
     R"T([[relabel_configs]]
source_labels = ["foo"]
action = "uppercase"
target_label = "foo_uppercase"
[[relabel_configs]]
source_labels = ["foo"]
action = "lowercase"
target_label = "foo_lowercase")T",
     {{"foo", "bAr123Foo"}},
     false,
     {{"foo", "bAr123Foo"}, {"foo_lowercase", "bar123foo"}, {"foo_uppercase", "BAR123FOO"}}},
    {"keepequal / dropequal",
     R"T([[relabel_configs]]
source_labels = ["a"]
target_label = "b"
action = "keepequal")T",
     {{"a", "x"}, {"b", "y"}},
     true,
     {}},
    {"dropequal drops on equal values",
     R"T([[relabel_configs]]
source_labels = ["a"]
target_label = "b"
action = "dropequal")T",
     {{"a", "x"}, {"b", "x"}},
     true,
     {}},
    {"renaming __name__ through replace",
     R"T([[relabel_configs]]
source_labels = ["__name__"]
regex = "m"
target_label = "__name__"
replacement = "renamed")T",
     {{"a", "1"}},
     false,
     {{"a", "1"}}},
    {"a sample that loses __name__ is dropped",
     R"T([[relabel_configs]]
regex = "__name__"
action = "labeldrop")T",
     {{"a", "1"}},
     true,
     {}},
};

}  // namespace

TEST(Relabel, PrometheusSemantics) {
  for (const auto& c : kCases) {
    SCOPED_TRACE(c.name);
    auto got = run(c.rules, c.in);
    ASSERT_TRUE(got.has_value());
    if (c.dropped) {
      EXPECT_EQ(str(*got), "<dropped>=,");
    } else {
      EXPECT_EQ(str(*got), str(c.out));
    }
  }
}

TEST(Relabel, RenamedMetric) {
  auto h = PluginHarness::load(moni::testing::plugin_path("relabel"), R"T([[relabel_configs]]
source_labels = ["__name__"]
regex = "node_(.*)"
target_label = "__name__"
replacement = "host_$1")T");
  ASSERT_TRUE(h.ok()) << h.error().message;
  ASSERT_TRUE((*h)->start().ok());
  moni::Batch b;
  b.add("node_load1", {}, 0.5, 7);
  b.add("other", {}, 2, 7);
  auto out = (*h)->process(b);
  ASSERT_TRUE(out.ok());
  ASSERT_EQ(out->samples.size(), 2u);
  EXPECT_EQ(out->samples[0].name(), "host_load1");
  EXPECT_EQ(out->samples[1].name(), "other");
  auto self = (*h)->self_metrics();
  ASSERT_NE(self.one("moni_relabel_samples_in_total"), nullptr);
  EXPECT_EQ(self.one("moni_relabel_samples_in_total")->value, 2);
}

TEST(Relabel, ConfigErrorsAreReportedTogether) {
  auto h = PluginHarness::load(moni::testing::plugin_path("relabel"), R"T([[relabel_configs]]
action = "replase"
[[relabel_configs]]
regex = "(unclosed"
target_label = "x"
[[relabel_configs]]
action = "hashmod"
source_labels = ["a"]
target_label = "b"
[[relabel_configs]]
action = "labeldrop"
regex = "x"
target_label = "y"
[[relabel_configs]]
source_labels = ["a"]
target_label = "bad-name"
[[relabel_configs]]
action = "keep"
regex = "x"
bogus = 1)T");
  ASSERT_FALSE(h.ok());
  const std::string& m = h.error().message;
  EXPECT_NE(m.find("action: \"replase\" is unknown"), std::string::npos) << m;
  EXPECT_NE(m.find("invalid regex \"(unclosed\""), std::string::npos) << m;
  EXPECT_NE(m.find("requires modulus > 0"), std::string::npos) << m;
  EXPECT_NE(m.find("takes only regex"), std::string::npos) << m;
  EXPECT_NE(m.find("\"bad-name\" is not a valid label name"), std::string::npos) << m;
  EXPECT_NE(m.find("requires source_labels"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown option 'relabel_configs[5].bogus'"), std::string::npos) << m;
  // Each error points at the key at fault, not at the rule's table header.
  EXPECT_NE(m.find("test.toml:2:10: relabel[test]: relabel_configs[0].action: "), std::string::npos) << m;
  EXPECT_NE(m.find("test.toml:4:9: relabel[test]: relabel_configs[1].regex: invalid regex"),
            std::string::npos) << m;
  EXPECT_NE(m.find("test.toml:16:16: relabel[test]: relabel_configs[4].target_label: "),
            std::string::npos) << m;
}

TEST(Relabel, RegexIsCheckedEvenWhenTheActionIsUnknown) {
  auto h = PluginHarness::load(moni::testing::plugin_path("relabel"), R"T([[relabel_configs]]
action = "dropp"
source_labels = ["__name__"]
regex = "go_(.*")T");
  ASSERT_FALSE(h.ok());
  const std::string& m = h.error().message;
  EXPECT_NE(m.find("test.toml:2:10: relabel[test]: relabel_configs[0].action: \"dropp\" is unknown"),
            std::string::npos) << m;
  EXPECT_NE(m.find("test.toml:4:9: relabel[test]: relabel_configs[0].regex: invalid regex \"go_(.*\""),
            std::string::npos) << m;
}

TEST(Relabel, UnknownOptionsGetAHint) {
  auto h = PluginHarness::load(moni::testing::plugin_path("relabel"), R"T("relabel_configs.regex" = "x"
[[relabel_configs]]
source_labels = ["a"]
regx = "y"
target_label = "b"
separtor = ","
completely_unrelated = 1)T");
  ASSERT_FALSE(h.ok());
  const std::string& m = h.error().message;
  EXPECT_NE(m.find("unknown option 'relabel_configs[0].regx' (did you mean 'regex'?)"),
            std::string::npos) << m;
  EXPECT_NE(m.find("unknown option 'relabel_configs[0].separtor' (did you mean 'separator'?)"),
            std::string::npos) << m;
  // Nothing close: no hint.
  std::string far = "unknown option 'relabel_configs[0].completely_unrelated'";
  auto at = m.find(far);
  ASSERT_NE(at, std::string::npos) << m;
  EXPECT_NE(m.substr(at + far.size(), 2), " (") << m;
  EXPECT_NE(m.find("unknown option 'relabel_configs.regex' (a quoted key is one name"),
            std::string::npos) << m;
}

// The processor is flagged MONI_PLUGIN_CONCURRENT_PROCESS: calls from several
// threads at once each get their own samples back, relabeled, with nothing
// of the other calls' batches (the SDK gives each call its own output batch;
// the plugin keeps no per-call state in members).
TEST(Relabel, ConcurrentProcessCallsKeepTheirOwnBatches) {
  auto h = PluginHarness::load(moni::testing::plugin_path("relabel"), R"T([[relabel_configs]]
source_labels = ["src"]
regex = "t(\\d+)-(.*)"
target_label = "dst"
replacement = "${2}/${1}"
[[relabel_configs]]
source_labels = ["n"]
regex = ".*7"
action = "drop"
)T");
  ASSERT_TRUE(h.ok()) << h.error().message;
  EXPECT_NE((*h)->descriptor().flags & MONI_PLUGIN_CONCURRENT_PROCESS, 0u);
  ASSERT_TRUE((*h)->start().ok());
  constexpr int kThreads = 4, kRounds = 40, kSamples = 50;
  std::atomic<int> bad{0};
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int round = 0; round < kRounds; ++round) {
        moni::Batch in;
        for (int i = 0; i < kSamples; ++i)
          in.add("m", {{"src", "t" + std::to_string(t) + "-r" + std::to_string(round)},
                       {"n", std::to_string(i)}},
                 static_cast<double>(t * 1000 + i), 1000);
        auto out = (*h)->process(in);
        if (!out.ok()) {
          ++bad;
          continue;
        }
        // Samples whose n ends in 7 are dropped: 5 of 50.
        if (out->samples.size() != kSamples - 5) ++bad;
        std::string want = "r" + std::to_string(round) + "/" + std::to_string(t);
        for (const auto& s : out->samples)
          if (s.label("dst") != want || s.value < t * 1000 || s.value >= t * 1000 + kSamples ||
              s.label("n").ends_with("7"))
            ++bad;
      }
    });
  for (auto& t : ts) t.join();
  EXPECT_EQ(bad.load(), 0);
  (*h)->stop();
}
