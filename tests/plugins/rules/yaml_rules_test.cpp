// Prometheus YAML rule files: loading (with positions in errors), conversion
// to moni's TOML form and back through the rules plugin's TOML loader, the
// YAML emitter checked by the real promtool, and `rules import`.
#include "yaml_rules.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "prometheus_peer.hpp"
#include "rule_test_runner.hpp"
#ifdef MONI_RULES_HAVE_TOML_LOADER
#include "rule_config.hpp"
#endif

namespace moni::rules {
namespace {

const std::string kDir = std::string(MONI_TEST_DATA_DIR) + "/rules/yaml/";

std::string temp_dir() {
  char tmpl[] = "/tmp/moni-rules-yaml-XXXXXX";
  return mkdtemp(tmpl) ? tmpl : "/tmp";
}

std::string errors_of(std::string_view yaml) {
  auto r = parse_prometheus_rules(yaml, "r.yml");
  return r ? std::string("(no error)") : r.error().message;
}

TEST(YamlRules, LoadsEveryField) {
  auto r = load_prometheus_rule_file(kDir + "good.yml");
  ASSERT_TRUE(r) << r.error().message;
  const auto& g = *r;
  ASSERT_EQ(g.size(), 3u);
  EXPECT_EQ(g[0].name, "node.recording");
  EXPECT_EQ(g[0].interval_ms, 30000);
  EXPECT_EQ(g[0].limit, 0);
  EXPECT_EQ(g[0].pos.str(), kDir + "good.yml:3:5");
  ASSERT_EQ(g[0].rules.size(), 2u);
  EXPECT_EQ(g[0].rules[0].record, "instance:node_cpu_utilisation:rate5m");
  EXPECT_EQ(g[0].rules[0].expr,
            "1 - avg without (cpu, mode) (rate(node_cpu_seconds_total{mode=\"idle\"}[5m]))");
  EXPECT_EQ(g[0].rules[0].labels, (LabelPairs{{"source", "moni"}}));
  EXPECT_EQ(g[0].rules[0].pos.line, 6u);
  EXPECT_EQ(g[0].rules[0].pos.column, 9u);

  EXPECT_EQ(g[1].name, "node.alerts");
  EXPECT_EQ(g[1].interval_ms, 0);
  EXPECT_EQ(g[1].limit, 100);
  ASSERT_EQ(g[1].rules.size(), 2u);
  const RuleSpec& down = g[1].rules[0];
  EXPECT_EQ(down.alert, "HostDown");
  EXPECT_EQ(down.expr, "up == 0");
  EXPECT_EQ(down.for_ms, 300000);
  EXPECT_EQ(down.keep_firing_for_ms, 60000);
  EXPECT_EQ(down.labels, (LabelPairs{{"severity", "critical"}, {"team", "ops"}}));
  ASSERT_EQ(down.annotations.size(), 2u);
  EXPECT_EQ(down.annotations[0].first, "description");
  EXPECT_EQ(down.annotations[0].second,
            "{{ $labels.job }} target {{ $labels.instance }} has not answered\n"
            "for 5 minutes (up = {{ $value }}).\n");
  EXPECT_EQ(down.annotations[1],
            (std::pair<std::string, std::string>{"summary", "{{ $labels.instance }} is down"}));
  const RuleSpec& load = g[1].rules[1];
  EXPECT_EQ(load.for_ms, 5400000);
  EXPECT_EQ(load.labels, (LabelPairs{{"severity", "1"}}));  // a YAML integer reads as text
  EXPECT_NE(load.expr.find("> on (instance) 2 * count"), std::string::npos);

  EXPECT_EQ(g[2].name, "empty");
  EXPECT_TRUE(g[2].rules.empty());
}

TEST(YamlRules, EmptyFileHasNoGroups) {
  auto r = parse_prometheus_rules("# nothing\n", "e.yml");
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(r->empty());
}

TEST(YamlRules, EveryErrorWithItsPosition) {
  auto r = load_prometheus_rule_file(kDir + "bad_many.yml");
  ASSERT_FALSE(r);
  const std::string& m = r.error().message;
  std::string f = kDir + "bad_many.yml:";
  // Unknown keys are rejected where they are written, as Prometheus does.
  EXPECT_NE(m.find(f + "5:9: field expresion not found in rulefmt.RuleNode"), std::string::npos)
      << m;
  EXPECT_NE(m.find(f + "4:9: group \"a\", rule 1: field 'expr' must be set in rule"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(f + "6:9: group \"a\", rule 2: only one of 'record' and 'alert' must be set"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(f + "9:17: group \"a\", rule 3: invalid recording rule name: bad name"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(f + "13:11: group \"a\", rule 3: invalid field 'annotations' in recording rule"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(f + "11:14: group \"a\", rule 3: invalid field 'for' in recording rule"),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(f + "15:15: group \"a\", rule 4: could not parse expression: "),
            std::string::npos)
      << m;
  EXPECT_NE(m.find(f + "16:14: for: invalid duration \"5minutes\""), std::string::npos) << m;
  EXPECT_NE(m.find(f + "18:11: invalid label name: bad-label"), std::string::npos) << m;
  EXPECT_NE(
      m.find(f + "19:11: groupname: \"a\" is repeated in the same file (first at " + f + "2:5)"),
      std::string::npos)
      << m;
  EXPECT_EQ(std::count(m.begin(), m.end(), '\n'), 9) << m;  // ten errors, one per line
}

TEST(YamlRules, SyntaxErrorsCarryTheParserPosition) {
  auto r = load_prometheus_rule_file(kDir + "bad_syntax.yml");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message.rfind(kDir + "bad_syntax.yml:6:1: ", 0), 0u) << r.error().message;
}

TEST(YamlRules, StructuralErrors) {
  EXPECT_EQ(errors_of("groups: {a: 1}\n"), "r.yml:1:9: groups must be a sequence");
  EXPECT_EQ(errors_of("rules: []\n"), "r.yml:1:1: field rules not found in rulefmt.RuleGroups");
  EXPECT_EQ(errors_of("groups:\n- name: x\n  rules:\n  - alert: A\n    expr: up\n    expr: up\n"),
            "r.yml:6:5: mapping key \"expr\" already defined");
  EXPECT_EQ(errors_of("groups:\n- rules: []\n"), "r.yml:2:3: Groupname must not be empty");
  EXPECT_EQ(errors_of("groups:\n- name: x\n  limit: -1\n"),
            "r.yml:3:10: limit must be an integer >= 0 (got \"-1\")");
  EXPECT_EQ(errors_of("groups:\n- name: x\n  interval: 1q\n"),
            "r.yml:3:13: interval: invalid duration \"1q\": unknown unit (expected e.g. \"15s\", "
            "\"1m30s\", \"100ms\", \"7d\")");
  EXPECT_EQ(errors_of("groups:\n- name: x\n  rules:\n  - alert: A\n    expr: up\n    labels:\n"
                      "      __name__: x\n"),
            "r.yml:7:7: invalid label name: __name__");
  EXPECT_EQ(
      errors_of("groups:\n- name: x\n  rules:\n  - alert: A\n    expr: up\n    labels: [a]\n"),
      "r.yml:6:13: labels must be a mapping of names to strings");
  auto missing = load_prometheus_rule_file(kDir + "does_not_exist.yml");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().message, kDir + "does_not_exist.yml: cannot open rule file");
}

TEST(YamlRules, TomlForm) {
  GroupSpec g;
  g.name = "g\"1";
  g.interval_ms = 90000;
  g.limit = 5;
  RuleSpec r;
  r.alert = "A";
  r.expr = "up{job=\"x\"}\n== 0";
  r.for_ms = 300000;
  r.keep_firing_for_ms = 1500;
  r.labels = {{"severity", "page"}};
  r.annotations = {{"summary", "{{ $labels.instance }} \\ down"}, {"odd key", "v"}};
  g.rules.push_back(r);
  RuleSpec rec;
  rec.record = "job:up:sum";
  rec.expr = "sum by (job) (up)";
  g.rules.push_back(rec);
  EXPECT_EQ(to_toml({g}),
            "[[group]]\n"
            "name = \"g\\\"1\"\n"
            "interval = \"1m30s\"\n"
            "limit = 5\n"
            "\n"
            "[[group.rule]]\n"
            "alert = \"A\"\n"
            "expr = \"up{job=\\\"x\\\"}\\n== 0\"\n"
            "for = \"5m\"\n"
            "keep_firing_for = \"1s500ms\"\n"
            "[group.rule.labels]\n"
            "severity = \"page\"\n"
            "[group.rule.annotations]\n"
            "summary = \"{{ $labels.instance }} \\\\ down\"\n"
            "\"odd key\" = \"v\"\n"
            "\n"
            "[[group.rule]]\n"
            "record = \"job:up:sum\"\n"
            "expr = \"sum by (job) (up)\"\n");
}

// What the YAML emitter writes, the real promtool accepts, and reading it
// back gives the same groups.
TEST(YamlRules, YamlFormPassesPromtool) {
  auto r = load_prometheus_rule_file(kDir + "good.yml");
  ASSERT_TRUE(r) << r.error().message;
  std::string dir = temp_dir();
  std::string path = dir + "/out.yml";
  std::ofstream(path) << to_yaml(*r);
  auto again = load_prometheus_rule_file(path);
  ASSERT_TRUE(again) << again.error().message;
  ASSERT_EQ(again->size(), r->size());
  for (size_t i = 0; i < r->size(); ++i) {
    EXPECT_EQ((*again)[i].name, (*r)[i].name);
    EXPECT_EQ((*again)[i].interval_ms, (*r)[i].interval_ms);
    ASSERT_EQ((*again)[i].rules.size(), (*r)[i].rules.size());
    for (size_t j = 0; j < (*r)[i].rules.size(); ++j) {
      EXPECT_EQ((*again)[i].rules[j].expr, (*r)[i].rules[j].expr);
      EXPECT_EQ((*again)[i].rules[j].annotations, (*r)[i].rules[j].annotations);
      EXPECT_EQ((*again)[i].rules[j].labels, (*r)[i].rules[j].labels);
    }
  }
  if (access("/usr/bin/promtool", X_OK) != 0) GTEST_SKIP() << "promtool missing";
  std::string out;
  int rc = promql::test_support::run({"/usr/bin/promtool", "check", "rules", path}, &out);
  EXPECT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("SUCCESS: 4 rules found"), std::string::npos) << out;
  std::filesystem::remove_all(dir);
}

TEST(YamlRules, ImportCommand) {
  std::string in = kDir + "good.yml";
  std::vector<std::string_view> args{in};
  std::ostringstream out;
  auto r = run_rules_import(args, out);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_EQ(out.str().rfind("# Converted from " + in + " by moni rules import.\n\n[[group]]\n", 0),
            0u)
      << out.str();
  EXPECT_NE(out.str().find("alert = \"HostDown\"\n"), std::string::npos);

  std::string dir = temp_dir();
  std::string dest = dir + "/rules.toml";
  std::vector<std::string_view> to_file{"--out", dest, in};
  std::ostringstream none;
  ASSERT_TRUE(run_rules_import(to_file, none));
  EXPECT_TRUE(none.str().empty());
  std::ifstream f(dest);
  std::stringstream written;
  written << f.rdbuf();
  EXPECT_EQ(written.str(), out.str());

  std::string bad_in = kDir + "bad_syntax.yml";
  std::vector<std::string_view> bad{bad_in};
  auto e = run_rules_import(bad, none);
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message.find("bad_syntax.yml:6:1"), std::string::npos);
  std::vector<std::string_view> nothing;
  EXPECT_FALSE(run_rules_import(nothing, none));
  std::vector<std::string_view> unknown{"--frobnicate", in};
  EXPECT_FALSE(run_rules_import(unknown, none));
  std::filesystem::remove_all(dir);
}

// Files without test cases (empty, only a comment, `tests: []`, no `tests`,
// a rule_files pattern that matches nothing) pass in promtool 2.42 with
// "SUCCESS" and status 0; `moni rules test` prints the same standard output
// and puts its warnings on standard error, as promtool does with its own.
TEST(RuleTestRunner, TestlessFilesPrintWhatPromtoolPrints) {
  std::string dir = temp_dir();
  std::ofstream(dir + "/r.yml") << "groups:\n  - name: g\n    rules:\n      - record: x\n"
                                   "        expr: vector(1)\n";
  const std::vector<std::pair<std::string, std::string>> files = {
      {"empty.yml", ""},
      {"comment.yml", "# nothing yet\n"},
      {"tests_empty.yml", "rule_files: [r.yml]\ntests: []\n"},
      {"no_tests.yml", "rule_files: [r.yml]\nevaluation_interval: 1m\n"},
      {"no_match.yml", "rule_files: [missing-*.yml]\n"},
  };
  bool have_promtool = access("/usr/bin/promtool", X_OK) == 0;
  for (const auto& [name, text] : files) {
    std::string path = dir + "/" + name;
    std::ofstream(path) << text;
    std::ostringstream out, err;
    auto r = run_rule_tests(path, out, err);
    ASSERT_TRUE(r) << name << ": " << r.error().message;
    EXPECT_TRUE(*r) << name;
    EXPECT_EQ(out.str(), "Unit Testing:  " + path + "\n  SUCCESS\n\n") << name;
    std::string warnings = "  WARNING: no test cases in " + path + "\n";
    if (name == "no_match.yml")
      warnings = "  WARNING: no file match pattern " + dir + "/missing-*.yml\n" + warnings;
    EXPECT_EQ(err.str(), warnings) << name;
    if (!have_promtool) continue;
    std::string promtool_out;
    int rc = promql::test_support::run(
        {"/bin/sh", "-c", "/usr/bin/promtool test rules " + path + " 2>/dev/null"}, &promtool_out);
    EXPECT_EQ(rc, 0) << name;
    EXPECT_EQ(promtool_out, out.str()) << name;
  }
  std::filesystem::remove_all(dir);
}

// `moni rules test` gives promtool 2.42's verdict on odd test files: a file
// without test cases passes (with a warning here), an unknown key fails
// (with its position); promtool, when installed, is asked the same.
TEST(RuleTestRunner, EmptyAndMisspeltTestFilesAsPromtool) {
  std::string dir = temp_dir();
  std::ofstream(dir + "/r.yml") << "groups:\n  - name: g\n    rules:\n      - record: x\n"
                                   "        expr: vector(1)\n";
  auto promtool_rc = [&](const std::string& f) {
    if (access("/usr/bin/promtool", X_OK) != 0) return -1;
    return promql::test_support::run(
        {"/bin/sh", "-c", "/usr/bin/promtool test rules " + dir + "/" + f + " >/dev/null 2>&1"});
  };
  std::ofstream(dir + "/none.yml") << "rule_files: [r.yml]\ntests: []\n";
  std::ostringstream out;
  auto r = run_rule_tests(dir + "/none.yml", out);
  ASSERT_TRUE(r) << r.error().message;
  EXPECT_TRUE(*r);
  EXPECT_NE(out.str().find("WARNING: no test cases in " + dir + "/none.yml"), std::string::npos)
      << out.str();
  EXPECT_NE(out.str().find("SUCCESS"), std::string::npos);
  int rc = promtool_rc("none.yml");
  if (rc >= 0) {
    EXPECT_EQ(rc, 0);
  }

  std::ofstream(dir + "/typo.yml") << "rule_files: [r.yml]\ntset:\n  - interval: 1m\n";
  r = run_rule_tests(dir + "/typo.yml", out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, dir + "/typo.yml:2:1: unknown field 'tset' in test file");
  rc = promtool_rc("typo.yml");
  if (rc >= 0) {
    EXPECT_NE(rc, 0);
  }

  std::ofstream(dir + "/nested.yml")
      << "rule_files: [r.yml]\ntests:\n  - interval: 1m\n    input_series:\n"
         "      - series: up\n        valus: 1\n    promql_expr_test:\n"
         "      - expr: x\n        eval_time: 0m\n        exp_sample: []\n";
  r = run_rule_tests(dir + "/nested.yml", out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, dir + "/nested.yml:6:9: unknown field 'valus' in series\n" + dir +
                                   "/nested.yml:10:9: unknown field 'exp_sample' in "
                                   "promql_expr_test");
  rc = promtool_rc("nested.yml");
  if (rc >= 0) {
    EXPECT_NE(rc, 0);
  }

  std::ofstream(dir + "/order.yml") << "rule_files: [r.yml]\ngroup_eval_order: [g, g]\ntests: []\n";
  r = run_rule_tests(dir + "/order.yml", out);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message.find("group name repeated in evaluation order: g"), std::string::npos)
      << r.error().message;
  rc = promtool_rc("order.yml");
  if (rc >= 0) {
    EXPECT_NE(rc, 0);
  }
  std::filesystem::remove_all(dir);
}

#ifdef MONI_RULES_HAVE_TOML_LOADER
// YAML -> to_toml -> the rules plugin's TOML rule-file loader: same groups.
TEST(YamlRules, TomlRoundTripThroughTheRulesLoader) {
  auto y = load_prometheus_rule_file(kDir + "good.yml");
  ASSERT_TRUE(y) << y.error().message;
  std::string dir = temp_dir();
  std::string path = dir + "/good.toml";
  std::ofstream(path) << to_toml(*y);
  std::vector<std::string> errors;
  auto t = load_toml_rule_file(path, errors);
  ASSERT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(t.size(), y->size());
  for (size_t i = 0; i < t.size(); ++i) {
    EXPECT_EQ(t[i].name, (*y)[i].name);
    EXPECT_EQ(t[i].interval_ms, (*y)[i].interval_ms);
    EXPECT_EQ(t[i].limit, (*y)[i].limit);
    ASSERT_EQ(t[i].rules.size(), (*y)[i].rules.size()) << t[i].name;
    for (size_t j = 0; j < t[i].rules.size(); ++j) {
      const auto &a = t[i].rules[j], &b = (*y)[i].rules[j];
      EXPECT_EQ(a.record, b.record);
      EXPECT_EQ(a.alert, b.alert);
      EXPECT_EQ(a.expr, b.expr);
      EXPECT_EQ(a.for_ms, b.for_ms);
      EXPECT_EQ(a.keep_firing_for_ms, b.keep_firing_for_ms);
      EXPECT_EQ(a.labels, b.labels);
      EXPECT_EQ(a.annotations, b.annotations);
    }
  }
  std::filesystem::remove_all(dir);
}

// Control characters and DEL are escaped in the TOML form (TOML allows
// neither raw in a basic string) and read back as they were.
TEST(YamlRules, TomlStringsEscapeControlCharacters) {
  GroupSpec g;
  g.name = "g";
  RuleSpec r;
  r.alert = "A";
  r.expr = "up == 0";
  const std::string odd = std::string("a\x01") + "b\x7f" + "c\td\"e\\f";
  r.annotations = {{"odd", odd}};
  g.rules.push_back(r);
  std::string toml = to_toml({g});
  EXPECT_NE(toml.find("\\u0001"), std::string::npos) << toml;
  EXPECT_NE(toml.find("\\u007F"), std::string::npos) << toml;
  EXPECT_EQ(toml.find('\x7f'), std::string::npos) << toml;
  std::string dir = temp_dir();
  std::ofstream(dir + "/odd.toml") << toml;
  std::vector<std::string> errors;
  auto t = load_toml_rule_file(dir + "/odd.toml", errors);
  ASSERT_TRUE(errors.empty()) << errors.front();
  ASSERT_EQ(t.size(), 1u);
  ASSERT_EQ(t[0].rules.size(), 1u);
  EXPECT_EQ(t[0].rules[0].annotations, (LabelPairs{{"odd", odd}}));
  std::filesystem::remove_all(dir);
}
#endif

}  // namespace
}  // namespace moni::rules
