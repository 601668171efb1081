// Alert templates: the Go text/template subset and Prometheus's functions,
// with the outputs Prometheus 2.42 gives for the same templates.
#include "alert_template.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace {

using namespace moni::rules;

std::string expand(const std::string& text, double value = 0) {
  static const moni::Labels labels = {{"instance", "host:9100"}, {"job", "node"}};
  static const moni::Labels ext = {{"cluster", "eu1"}};
  auto t = AlertTemplate::parse(text);
  if (!t) return "PARSE: " + t.error().message;
  auto r = t->expand(TemplateData{&labels, &ext, "http://moni:9095", value});
  return r ? *r : "EXEC: " + r.error().message;
}

TEST(AlertTemplate, VariablesAndFields) {
  EXPECT_EQ(expand("{{ $labels.instance }} of {{$labels.job}}"), "host:9100 of node");
  EXPECT_EQ(expand("{{ .Labels.job }}/{{ .Value }}", 2.5), "node/2.5");
  EXPECT_EQ(expand("{{ $externalLabels.cluster }} {{ $externalURL }}"), "eu1 http://moni:9095");
  EXPECT_EQ(expand("[{{ $labels.missing }}]"), "[]");  // missingkey=zero
  EXPECT_EQ(expand("no actions"), "no actions");
  EXPECT_EQ(expand("{{/* a comment */}}x"), "x");
  EXPECT_EQ(expand("a  {{- \"b\" -}}  c"), "abc");
  EXPECT_EQ(expand("{{ $labels }}"), "map[instance:host:9100 job:node]");
}

TEST(AlertTemplate, ValueFormattingLikeGo) {
  EXPECT_EQ(expand("{{ $value }}", 0.1), "0.1");
  EXPECT_EQ(expand("{{ $value }}", 100000), "100000");
  EXPECT_EQ(expand("{{ $value }}", 1e6), "1e+06");
  EXPECT_EQ(expand("{{ $value }}", 1234567), "1.234567e+06");
  EXPECT_EQ(expand("{{ $value }}", 0.0001), "0.0001");
  EXPECT_EQ(expand("{{ $value }}", 0.00001), "1e-05");
  EXPECT_EQ(expand("{{ $value }}", NAN), "NaN");
  EXPECT_EQ(expand("{{ $value }}", -INFINITY), "-Inf");
  EXPECT_EQ(expand("{{ $value }}", 1.0 / 3), "0.3333333333333333");
}

TEST(AlertTemplate, PrometheusFunctions) {
  EXPECT_EQ(expand("{{ humanize $value }}", 1234567), "1.235M");
  EXPECT_EQ(expand("{{ $value | humanize }}", 0.0012), "1.2m");
  EXPECT_EQ(expand("{{ humanize 0 }}"), "0");
  EXPECT_EQ(expand("{{ humanize1024 $value }}", 1048576), "1Mi");
  EXPECT_EQ(expand("{{ humanizePercentage $value }}", 0.1234), "12.34%");
  EXPECT_EQ(expand("{{ humanizeDuration $value }}", 90061), "1d 1h 1m 1s");
  EXPECT_EQ(expand("{{ humanizeDuration $value }}", 61.5), "1m 1s");
  EXPECT_EQ(expand("{{ humanizeDuration $value }}", 1.5), "1.5s");
  EXPECT_EQ(expand("{{ humanizeDuration $value }}", 0.0015), "1.5ms");
  EXPECT_EQ(expand("{{ humanizeTimestamp $value }}", 1435065584.128),
            "2015-06-23 13:19:44.128 +0000 UTC");
  EXPECT_EQ(expand("{{ printf \"%.2f\" $value }}", 3.14159), "3.14");
  EXPECT_EQ(expand("{{ printf \"%s=%d %q %5.1f%%\" \"a\" 42 \"b\" $value }}", 9.25),
            "a=42 \"b\"   9.2%");
  // %q as Go's strconv.Quote: letter escapes where Go has them, \x for the rest.
  EXPECT_EQ(expand("{{ printf \"%q\" `\a\x7f\x01\t\\\"` }}"), "\"\\a\\x7f\\x01\\t\\\\\\\"\"");
  EXPECT_EQ(expand("{{ printf \"%d\" $value }}", 1), "%!d(float64=1)");
  EXPECT_EQ(expand("{{ printf \"%s %s\" \"a\" }}"), "a %!s(MISSING)");
  EXPECT_EQ(expand("{{ toUpper $labels.job }} {{ title \"hello world\" }}"), "NODE Hello World");
  EXPECT_EQ(expand("{{ $labels.instance | stripPort }}"), "host");
  EXPECT_EQ(expand("{{ reReplaceAll \"(.*):.*\" \"$1\" $labels.instance }}"), "host");
  EXPECT_EQ(expand("{{ humanize \"1000\" }}"), "1k");
}

TEST(AlertTemplate, Conditionals) {
  std::string t =
      "{{ if gt $value 80.0 }}critical{{ else if gt $value 50.0 }}warn{{ else }}ok{{ end }}";
  EXPECT_EQ(expand(t, 90), "critical");
  EXPECT_EQ(expand(t, 60), "warn");
  EXPECT_EQ(expand(t, 10), "ok");
  EXPECT_EQ(expand("{{ if eq $labels.job \"node\" }}yes{{ end }}"), "yes");
  EXPECT_EQ(expand("{{ if and (match \"^host\" $labels.instance) (not false) }}m{{ end }}"), "m");
}

TEST(AlertTemplate, ErrorsAreValuesWithPositions) {
  EXPECT_EQ(expand("{{ nosuch $value }}"), "PARSE: 1:4: function \"nosuch\" not defined");
  EXPECT_EQ(expand("a\n{{ $labels.x"), "PARSE: 2:1: unclosed action");
  EXPECT_EQ(expand("{{ if true }}x"), "PARSE: 1:1: unexpected EOF: if without end");
  EXPECT_EQ(expand("{{ $foo }}"), "PARSE: 1:4: undefined variable \"$foo\"");
  EXPECT_EQ(expand("{{ end }}"), "PARSE: 1:1: unexpected {{end}}");
  EXPECT_EQ(expand("{{ range $labels }}{{ end }}"),
            "PARSE: 1:1: {{range}} is not supported in moni's alert templates");
  EXPECT_EQ(expand("{{ humanize \"abc\" }}"),
            "EXEC: error calling humanize: strconv.ParseFloat: parsing \"abc\": invalid syntax");
  EXPECT_EQ(expand("{{ $value.x }}", 1), "EXEC: can't evaluate field x in type float64");
}

}  // namespace

// Go's escapes in quoted strings (strconv.Unquote): \x and octal are bytes,
// \u and \U code points; Prometheus loads such templates, moni refused them
// ("unknown escape sequence \x").
TEST(AlertTemplate, GoStringEscapes) {
  EXPECT_EQ(expand(R"({{ "\x41\101\u00e9\U0001F600\a\v" }})"), "AA\xC3\xA9\xF0\x9F\x98\x80\a\v");
  EXPECT_EQ(expand(R"({{ "\xff" }})"), "\xff");  // a byte, as Go
  for (const char* bad : {R"({{ "\xZ1" }})", R"({{ "\400" }})", R"({{ "\ud800" }})",
                          R"({{ "\U00110000" }})", R"({{ "\x4" }})"})
    EXPECT_FALSE(moni::rules::AlertTemplate::parse(bad)) << bad;
}
