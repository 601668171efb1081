// Parser and renderer of the Prometheus text format and OpenMetrics.
#include <moni/text_format.hpp>

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <string>

namespace t = moni::text;

namespace {

struct Parsed {
  moni::text::Parser p;
  moni::Result<moni::text::ParseStats> r = moni::make_error("unset");
};

std::unique_ptr<Parsed> parse(std::string_view body, t::Format f = t::Format::Text,
                              int64_t def_ts = 1000) {
  auto out = std::make_unique<Parsed>();
  t::ParseOptions o;
  o.format = f;
  o.default_timestamp_ms = def_ts;
  out->r = out->p.parse(body, o);
  return out;
}

std::string labels_str(const t::ParsedSample& s) {
  std::string out;
  for (const auto& l : s.labels) out += std::string(l.name) + "=" + std::string(l.value) + ";";
  return out;
}

std::string fmt(double v) {
  std::string s;
  t::append_float(s, v);
  return s;
}

}  // namespace

TEST(TextParse, BasicSamplesLabelsSortedAndTimestamps) {
  auto p = parse(
      "# HELP http_requests_total The total number of HTTP requests.\n"
      "# TYPE http_requests_total counter\n"
      "http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n"
      "http_requests_total{code=\"400\", method=\"post\",} 3\n"
      "  metric_without_labels 12.47\n"
      "msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n"
      "\n"
      "# a comment\n"
      "something_weird{problem=\"division by zero\"} +Inf -3982045\n");
  ASSERT_TRUE(p->r.ok()) << p->r.error().message;
  ASSERT_EQ(p->p.size(), 5u);
  auto s0 = p->p.sample(0);
  EXPECT_EQ(labels_str(s0), "__name__=http_requests_total;code=200;method=post;");
  EXPECT_EQ(s0.value, 1027);
  EXPECT_EQ(s0.timestamp_ms, 1395066363000);
  EXPECT_TRUE(s0.has_timestamp);
  auto s1 = p->p.sample(1);
  EXPECT_EQ(labels_str(s1), "__name__=http_requests_total;code=400;method=post;");
  EXPECT_EQ(s1.timestamp_ms, 1000);
  EXPECT_FALSE(s1.has_timestamp);
  EXPECT_EQ(p->p.sample(2).name(), "metric_without_labels");
  EXPECT_DOUBLE_EQ(p->p.sample(2).value, 12.47);
  auto s3 = p->p.sample(3);
  EXPECT_EQ(s3.find("path"), "C:\\DIR\\FILE.TXT");
  EXPECT_EQ(s3.find("error"), "Cannot find file:\n\"FILE.TXT\"");
  EXPECT_EQ(s3.value, 1458255915);
  auto s4 = p->p.sample(4);
  EXPECT_TRUE(std::isinf(s4.value) && s4.value > 0);
  EXPECT_EQ(s4.timestamp_ms, -3982045);
  ASSERT_EQ(p->p.metadata().size(), 1u);
  EXPECT_EQ(p->p.metadata()[0].family, "http_requests_total");
  EXPECT_EQ(p->p.metadata()[0].type, moni::MetricType::Counter);
  EXPECT_EQ(p->p.metadata()[0].help, "The total number of HTTP requests.");
  EXPECT_EQ(p->r->samples, 5u);
}

TEST(TextParse, ManyUnsortedLabelsAreSortedAndDuplicatesFound) {
  // Past 32 labels the parser sorts with std::sort instead of insertion:
  // the order and the duplicate check must be the same.
  std::string body = "w{";
  for (int i = 3000; i > 0; --i) body += "l" + std::to_string(10000 + i) + "=\"v\",";
  body += "} 1\n";
  auto p = parse(body);
  ASSERT_TRUE(p->r.ok()) << p->r.error().message;
  auto s = p->p.sample(0);
  ASSERT_EQ(s.labels.size(), 3001u);
  EXPECT_EQ(s.labels[0].name, "__name__");
  for (size_t i = 1; i < s.labels.size(); ++i)
    EXPECT_EQ(s.labels[i].name, "l" + std::to_string(10000 + i)) << i;
  std::string dup = body;
  dup.insert(2, "l10007=\"x\",");
  auto d = parse(dup);
  ASSERT_FALSE(d->r.ok());
  EXPECT_NE(d->r.error().message.find("duplicate label name 'l10007'"), std::string::npos)
      << d->r.error().message;
}

TEST(TextParse, SpecialValues) {
  auto p = parse("a NaN\nb -Inf\nc +Inf\nd inf\ne -0\nf 1e-400\ng .5\n");
  ASSERT_TRUE(p->r.ok()) << p->r.error().message;
  EXPECT_TRUE(std::isnan(p->p.sample(0).value));
  EXPECT_FALSE(moni::is_stale_nan(p->p.sample(0).value));
  EXPECT_EQ(p->p.sample(1).value, -INFINITY);
  EXPECT_EQ(p->p.sample(2).value, INFINITY);
  EXPECT_EQ(p->p.sample(3).value, INFINITY);
  EXPECT_EQ(p->p.sample(4).value, 0.0);
  EXPECT_EQ(p->p.sample(5).value, 0.0);
  EXPECT_EQ(p->p.sample(6).value, 0.5);
}

TEST(TextParse, EmptyLabelValuesAreDropped) {
  auto p = parse("x{a=\"\",b=\"1\"} 1\n");
  ASSERT_TRUE(p->r.ok());
  EXPECT_EQ(labels_str(p->p.sample(0)), "__name__=x;b=1;");
}

TEST(TextParse, HistogramMetadataFamily) {
  auto p = parse(
      "# HELP rpc_duration_seconds A histogram\n"
      "# TYPE rpc_duration_seconds histogram\n"
      "rpc_duration_seconds_bucket{le=\"0.05\"} 24054\n"
      "rpc_duration_seconds_bucket{le=\"+Inf\"} 144320\n"
      "rpc_duration_seconds_sum 53423\n"
      "rpc_duration_seconds_count 144320\n"
      "# TYPE s summary\n# TYPE u untyped\n# TYPE g gauge\n");
  ASSERT_TRUE(p->r.ok());
  ASSERT_EQ(p->p.metadata().size(), 4u);
  EXPECT_EQ(p->p.metadata()[0].type, moni::MetricType::Histogram);
  EXPECT_EQ(p->p.metadata()[1].type, moni::MetricType::Summary);
  EXPECT_EQ(p->p.metadata()[2].type, moni::MetricType::Unknown);
  EXPECT_EQ(p->p.metadata()[3].type, moni::MetricType::Gauge);
}

TEST(TextParse, ErrorsCarryLineAndColumnAndLeaveBatchUntouched) {
  moni::Batch b;
  b.set_default_timestamp(5);
  b.add("pre", {}, 1);
  struct Case {
    const char* body;
    const char* want;
  } cases[] = {
      {"ok 1\nbad{a=\"x} 1\n", "line 2, column 7: unterminated label value"},
      {"ok 1\nx{a=\"\\t\"} 1\n", "line 2, column 6: invalid escape sequence '\\t'"},
      {"x{1a=\"b\"} 1\n", "invalid label name"},
      {"x{a=\"b\" 1\n", "expected ',' or '}'"},
      {"x 1", "missing newline at the end of the body"},
      {"x abc\n", "invalid value 'abc'"},
      {"x\n", "missing value"},
      {"x 1 12.5\n", "unexpected content after the timestamp"},
      {"x 1 2 3\n", "unexpected content after the timestamp"},
      {"x{a=\"1\",a=\"2\"} 1\n", "duplicate label name 'a'"},
      {"x{__name__=\"y\"} 1\n", "duplicate label name '__name__'"},
      {"# TYPE x countr\n", "invalid metric type 'countr'"},
      {"# TYPE x\n", "missing metric type"},
      {"x{a=\"\xff\\n\"} 1\n", "invalid UTF-8 in label value"},
      {std::string_view("x{a=\"b\0c\"} 1\n", 14).data(), ""},  // replaced below
      {"1x 1\n", "invalid metric name"},
      {"x 1e999\n", "invalid value"},
      {"x nan(1)\n", "invalid value"},
      {"x 0x10\n", "invalid value"},
  };
  for (const auto& c : cases) {
    if (!*c.want) continue;
    moni::text::ParseOptions o;
    auto r = moni::text::parse(c.body, b, o);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_NE(r.error().message.find(c.want), std::string::npos)
        << c.body << " -> " << r.error().message;
    EXPECT_EQ(b.size(), 1u);
  }
  std::string nul("x{a=\"b\0c\"} 1\n", 14);
  auto r = moni::text::parse(nul, b);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("NUL byte in label value"), std::string::npos);
  std::string nul2("x\0 1\n", 5);
  EXPECT_FALSE(moni::text::parse(nul2, b).ok());
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.view().metadata_count, 0u);
}

TEST(TextParse, Limits) {
  moni::text::Parser p;
  moni::text::ParseOptions o;
  o.max_samples = 2;
  EXPECT_TRUE(p.parse("a 1\nb 1\n", o).ok());
  auto r = p.parse("a 1\nb 1\nc 1\n", o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("sample limit of 2 exceeded"), std::string::npos);
  EXPECT_EQ(p.size(), 0u);
  o = {};
  o.max_label_value_length = 4;
  EXPECT_FALSE(p.parse("a{x=\"12345\"} 1\n", o).ok());
  EXPECT_TRUE(p.parse("a{x=\"1234\"} 1\n", o).ok());
  o = {};
  o.max_labels = 1;
  EXPECT_FALSE(p.parse("a{x=\"1\",y=\"2\"} 1\n", o).ok());
  o = {};
  o.max_label_name_length = 2;
  EXPECT_FALSE(p.parse("a{xyz=\"1\"} 1\n", o).ok());
  o = {};
  o.max_body_bytes = 4;
  EXPECT_FALSE(p.parse("a 12\n", o).ok());
}

TEST(TextParse, Duplicates) {
  moni::text::Parser p;
  moni::text::ParseOptions o;
  std::string body = "a{x=\"1\"} 1\na{x=\"2\"} 2\na{x=\"1\"} 3\n";
  ASSERT_TRUE(p.parse(body, o).ok());
  EXPECT_EQ(p.size(), 3u);
  o.duplicates = moni::text::Duplicates::DropLater;
  auto r = p.parse(body, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(p.size(), 2u);
  EXPECT_EQ(r->duplicates_dropped, 1u);
  EXPECT_EQ(p.sample(0).value, 1);
  o.duplicates = moni::text::Duplicates::Error;
  auto e = p.parse(body, o);
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.error().message.find("line 3"), std::string::npos);
  // A moved parser still checks duplicates correctly.
  moni::text::Parser q = std::move(p);
  EXPECT_FALSE(q.parse(body, o).ok());
}

TEST(OpenMetricsParse, Basics) {
  auto p = parse(
      "# TYPE acme_http_router_request_seconds summary\n"
      "# UNIT acme_http_router_request_seconds seconds\n"
      "# HELP acme_http_router_request_seconds Latency \\\"quoted\\\".\n"
      "acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n"
      "acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0 1520430000.123\n"
      "# TYPE foo counter\n"
      "foo_total 17.0 1520879607.789 # {trace_id=\"KOO5S4vxi0o\"} 0.67\n"
      "# TYPE e info\n"
      "e_info{} 1\n"
      "# EOF\n",
      t::Format::OpenMetrics);
  ASSERT_TRUE(p->r.ok()) << p->r.error().message;
  ASSERT_EQ(p->p.size(), 4u);
  EXPECT_EQ(p->p.sample(1).timestamp_ms, 1520430000123);
  EXPECT_EQ(p->p.sample(2).timestamp_ms, 1520879607789);
  EXPECT_EQ(p->p.sample(2).value, 17);
  EXPECT_EQ(p->p.sample(0).timestamp_ms, 1000);
  auto md = p->p.metadata();
  ASSERT_EQ(md.size(), 3u);
  EXPECT_EQ(md[0].unit, "seconds");
  EXPECT_EQ(md[0].help, "Latency \"quoted\".");
  EXPECT_EQ(md[2].type, moni::MetricType::Info);
}

TEST(OpenMetricsParse, Errors) {
  struct Case {
    const char* body;
    const char* want;
  } cases[] = {
      {"a 1\n", "missing \"# EOF\""},
      {"a 1\n# EOF\nb 1\n", "unexpected content after \"# EOF\""},
      {"a 1\n\n# EOF\n", "empty line"},
      {"# TYPE a gauge\n# TYPE a gauge\n# EOF\n", "second TYPE line"},
      {"# TYPE a untyped\n# EOF\n", "invalid metric type 'untyped'"},
      {"# UNIT a_bytes seconds\n# EOF\n", "not a suffix"},
      {"# random comment\n# EOF\n", "expected \"# HELP\""},
      {"a  1\n# EOF\n", "invalid value"},
      {"a 1 NaN\n# EOF\n", "invalid timestamp"},
      {"a{b=\"c\",} 1\n# EOF\n", "trailing comma"},
      {"a 1 # {x=\"y\"}\n# EOF\n", "exemplar value"},
  };
  for (const auto& c : cases) {
    auto p = parse(c.body, t::Format::OpenMetrics);
    ASSERT_FALSE(p->r.ok()) << c.body;
    EXPECT_NE(p->r.error().message.find(c.want), std::string::npos)
        << c.body << " -> " << p->r.error().message;
  }
  EXPECT_TRUE(parse("a 1\n# EOF", t::Format::OpenMetrics)->r.ok());
}

TEST(TextFormat, ContentNegotiation) {
  EXPECT_EQ(t::format_from_content_type("application/openmetrics-text; version=1.0.0"),
            t::Format::OpenMetrics);
  EXPECT_EQ(t::format_from_content_type("text/plain; version=0.0.4"), t::Format::Text);
  EXPECT_EQ(t::format_from_content_type(""), t::Format::Text);
  EXPECT_EQ(t::negotiate("application/openmetrics-text;version=1.0.0,application/"
                         "openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/"
                         "*;q=0.1"),
            t::Format::OpenMetrics);
  EXPECT_EQ(t::negotiate("text/plain;version=0.0.4;q=1,*/*;q=0.1"), t::Format::Text);
  EXPECT_EQ(t::negotiate(""), t::Format::Text);
  EXPECT_EQ(t::negotiate("*/*"), t::Format::Text);
}

TEST(TextRender, FloatFormatting) {
  EXPECT_EQ(fmt(0), "0");
  EXPECT_EQ(fmt(-0.0), "0");
  EXPECT_EQ(fmt(1), "1");
  EXPECT_EQ(fmt(-1), "-1");
  EXPECT_EQ(fmt(1e6), "1000000");
  EXPECT_EQ(fmt(1073741824), "1073741824");
  EXPECT_EQ(fmt(1e18), "1000000000000000000");
  EXPECT_EQ(fmt(1e20), "1e+20");
  EXPECT_EQ(fmt(0.1), "0.1");
  EXPECT_EQ(fmt(1e-5), "1e-05");
  EXPECT_EQ(fmt(2.5), "2.5");
  EXPECT_EQ(fmt(NAN), "NaN");
  EXPECT_EQ(fmt(INFINITY), "+Inf");
  EXPECT_EQ(fmt(-INFINITY), "-Inf");
  EXPECT_EQ(fmt(0.30000000000000004), "0.30000000000000004");
  for (double v : {0.1, 1.0 / 3, 1e-300, 123456.789, 5e-324, 1.7976931348623157e308, -2.5e-7}) {
    std::string s = fmt(v);
    double back = std::strtod(s.c_str(), nullptr);
    EXPECT_EQ(std::bit_cast<uint64_t>(back), std::bit_cast<uint64_t>(v)) << s;
  }
}

TEST(TextRender, GroupsFamiliesAndEscapes) {
  moni::Batch b;
  b.set_default_timestamp(1500);
  b.add("req_total", {{"code", "200"}}, 3);
  b.add("temp", {{"room", "a\"b\\c\nd"}}, 21.5);
  b.add("req_total", {{"code", "500"}}, 1);
  b.add("lat_seconds_bucket", {{"le", "0.1"}}, 1);
  b.add("lat_seconds_bucket", {{"le", "+Inf"}}, 2);
  b.add("lat_seconds_sum", {}, 0.25);
  b.add("lat_seconds_count", {}, 2);
  b.add("gone", {}, moni::stale_nan());
  b.add("bad-name", {}, 1);
  b.describe("req_total", moni::MetricType::Counter, "Requests.\nSecond line \\ backslash");
  b.describe("lat_seconds", moni::MetricType::Histogram, "Latency.", "seconds");
  std::string out;
  auto st = t::render(b.view(), out);
  EXPECT_EQ(out,
            "# HELP req_total Requests.\\nSecond line \\\\ backslash\n"
            "# TYPE req_total counter\n"
            "req_total{code=\"200\"} 3\n"
            "req_total{code=\"500\"} 1\n"
            "temp{room=\"a\\\"b\\\\c\\nd\"} 21.5\n"
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.1\"} 1\n"
            "lat_seconds_bucket{le=\"+Inf\"} 2\n"
            "lat_seconds_sum 0.25\n"
            "lat_seconds_count 2\n");
  EXPECT_EQ(st.samples, 7u);
  EXPECT_EQ(st.skipped, 2u);
  EXPECT_EQ(st.families, 3u);

  out.clear();
  t::RenderOptions o;
  o.format = t::Format::OpenMetrics;
  o.timestamps = true;
  t::render(b.view(), out, o);
  EXPECT_EQ(out,
            "# HELP req Requests.\\nSecond line \\\\ backslash\n"
            "# TYPE req counter\n"
            "req_total{code=\"200\"} 3 1.5\n"
            "req_total{code=\"500\"} 1 1.5\n"
            "# TYPE temp unknown\n"
            "temp{room=\"a\\\"b\\\\c\\nd\"} 21.5 1.5\n"
            "# HELP lat_seconds Latency.\n"
            "# TYPE lat_seconds histogram\n"
            "# UNIT lat_seconds seconds\n"
            "lat_seconds_bucket{le=\"0.1\"} 1 1.5\n"
            "lat_seconds_bucket{le=\"+Inf\"} 2 1.5\n"
            "lat_seconds_sum 0.25 1.5\n"
            "lat_seconds_count 2 1.5\n"
            "# EOF\n");
}

TEST(TextRender, RoundTripsThroughTheParser) {
  moni::Batch b;
  b.set_default_timestamp(1700000000123);
  b.add("x_total", {{"a", "1"}, {"b", "q\"\\\n"}}, 1e-7);
  b.add("y", {}, -INFINITY);
  b.add("z", {{"Upper", "v"}}, 123456789.5);
  b.describe("x", moni::MetricType::Counter, "help \"x\"");
  for (auto f : {t::Format::Text, t::Format::OpenMetrics}) {
    std::string out;
    t::RenderOptions o;
    o.format = f;
    o.timestamps = true;
    t::render(b.view(), out, o);
    moni::text::Parser p;
    moni::text::ParseOptions po;
    po.format = f;
    auto r = p.parse(out, po);
    ASSERT_TRUE(r.ok()) << out << r.error().message;
    ASSERT_EQ(p.size(), 3u);
    EXPECT_EQ(p.sample(0).find("b"), "q\"\\\n");
    EXPECT_EQ(p.sample(0).value, 1e-7);
    EXPECT_EQ(p.sample(0).timestamp_ms, 1700000000123);
    EXPECT_EQ(p.sample(1).value, -INFINITY);
    EXPECT_EQ(labels_str(p.sample(2)), "Upper=v;__name__=z;");
  }
}

// ---- malformed bodies: errors, never crashes, never partial results.
#include <filesystem>
#include <fstream>
#include <sstream>

TEST(TextParse, MalformedCorpusFails) {
  std::string dir = std::string(MONI_TEST_DATA_DIR) + "/scrape/malformed";
  size_t n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    std::ifstream f(e.path(), std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    moni::Batch b;
    auto r = moni::text::parse(ss.str(), b);
    EXPECT_FALSE(r.ok()) << e.path();
    if (!r.ok()) {
      EXPECT_EQ(r.error().message.rfind("line ", 0), 0u) << r.error().message;
    }
    EXPECT_EQ(b.size(), 0u);
    ++n;
  }
  EXPECT_GE(n, 13u);
}

TEST(TextParse, HugeLabelsAndBodies) {
  moni::text::Parser p;
  moni::text::ParseOptions o;
  // A 1 MiB label value: fine without a limit, an error with one.
  std::string big = "x{a=\"" + std::string(1 << 20, 'v') + "\"} 1\n";
  ASSERT_TRUE(p.parse(big, o).ok());
  EXPECT_EQ(p.sample(0).find("a").size(), size_t{1} << 20);
  o.max_label_value_length = 1024;
  auto r = p.parse(big, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("label value longer than 1024 bytes"), std::string::npos);
  // 100 MB bodies: over the size limit, a 100 MB label value, and a 100 MB
  // comment followed by a truncated line.
  std::string huge(100u << 20, 'c');
  o = {};
  o.max_body_bytes = 64u << 20;
  r = p.parse(huge, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exceeds the limit of 67108864 bytes"), std::string::npos);
  huge.replace(0, 5, "x{a=\"");
  huge.replace(huge.size() - 5, 5, "\"} 1\n");
  o = {};
  o.max_label_value_length = 1 << 20;
  r = p.parse(huge, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("label value longer than"), std::string::npos);
  huge[0] = '#';
  huge[huge.size() - 5] = '\n';
  huge.replace(huge.size() - 4, 4, "x 1 ");
  r = p.parse(huge, {});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("line 2, column 5: missing newline"), std::string::npos)
      << r.error().message;
  EXPECT_EQ(p.size(), 0u);
}

TEST(TextParse, DuplicateSeriesAndManySamples) {
  std::string body;
  for (int i = 0; i < 10000; ++i) body += "m{i=\"" + std::to_string(i % 5000) + "\"} " + std::to_string(i) + "\n";
  moni::text::Parser p;
  moni::text::ParseOptions o;
  o.duplicates = moni::text::Duplicates::DropLater;
  auto r = p.parse(body, o);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->samples, 5000u);
  EXPECT_EQ(r->duplicates_dropped, 5000u);
  EXPECT_EQ(p.sample(4999).value, 4999);
  o.duplicates = moni::text::Duplicates::Error;
  r = p.parse(body, o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("line 5001"), std::string::npos);
  o.duplicates = moni::text::Duplicates::Allow;
  o.max_samples = 9999;
  EXPECT_FALSE(p.parse(body, o).ok());
}

// RenderOptions::layout_key: a second render of the same layout reuses the
// grouping, and its output is what a fresh render of the new values gives,
// including a value turned into a staleness marker; another key regroups.
TEST(Renderer, ReusedLayoutRendersNewValuesAsAFreshRender) {
  auto make = [](double a, double b, double c) {
    moni::Batch x;
    x.add("req_total", {{"code", "200"}}, a);
    x.add("temp", {{"room", "a"}}, b);
    x.add("req_total", {{"code", "500"}}, c);
    x.describe("req_total", moni::MetricType::Counter, "Requests.");
    return x;
  };
  moni::Batch b = make(1, 2, 3);
  // One batch whose values change in place: same addresses, as the
  // exposition store's snapshot gives.
  std::vector<moni_sample> smp(b.view().samples, b.view().samples + b.view().sample_count);
  moni_batch mb{smp.data(), smp.size(), b.view().metadata, b.view().metadata_count};
  t::Renderer r;
  t::RenderOptions o;
  o.layout_key = 7;
  std::string out;
  r.render(mb, out, o);
  EXPECT_EQ(out,
            "# HELP req_total Requests.\n# TYPE req_total counter\n"
            "req_total{code=\"200\"} 1\nreq_total{code=\"500\"} 3\ntemp{room=\"a\"} 2\n");
  for (auto& s : smp) s.value *= 10;
  smp[1].value = moni::stale_nan();  // temp
  std::string again, fresh;
  auto st = r.render(mb, again, o);
  t::render(mb, fresh);
  EXPECT_EQ(again, fresh);
  EXPECT_EQ(again,
            "# HELP req_total Requests.\n# TYPE req_total counter\n"
            "req_total{code=\"200\"} 10\nreq_total{code=\"500\"} 30\n");
  EXPECT_EQ(st.samples, 2u);
  EXPECT_EQ(st.skipped, 1u);
  // A new key (the layout changed): grouped again from the batch.
  moni::Batch c;
  c.add("other", {}, 5);
  o.layout_key = 8;
  out.clear();
  r.render(c.view(), out, o);
  EXPECT_EQ(out, "other 5\n");
  // Same key as the cached one but another sample count: not reused.
  o.layout_key = 7;
  out.clear();
  r.render(c.view(), out, o);
  EXPECT_EQ(out, "other 5\n");
}

// ---- error messages are valid UTF-8 whatever the body holds.
#include <random>

TEST(TextEscapeForLog, EscapesWhatIsNotUtf8AndControlsOnly) {
  using t::escape_for_log;
  EXPECT_EQ(escape_for_log(""), "");
  EXPECT_EQ(escape_for_log("plain \"q\" \\ ok"), "plain \"q\" \\ ok");  // quotes, backslashes kept
  EXPECT_EQ(escape_for_log("/mnt/\xff\xfe"), "/mnt/\\xff\\xfe");
  EXPECT_EQ(escape_for_log("caf\xe9"), "caf\\xe9");                         // Latin-1
  EXPECT_EQ(escape_for_log("a\tb\nc\x7f\x01"), "a\\x09b\\x0ac\\x7f\\x01");  // controls
  EXPECT_EQ(escape_for_log(std::string("a\0b", 3)), "a\\x00b");
  // Multi-byte UTF-8 (2, 3 and 4 bytes) is copied as is.
  const std::string utf8 =
      "Gr\xc3\xbc\xc3\x9f"
      "e \xe2\x9c\x93 \xf0\x9f\x98\x80";
  EXPECT_EQ(escape_for_log(utf8), utf8);
  // Each byte of an ill-formed sequence once: surrogate, overlong, above
  // U+10FFFF, stray continuation, a character cut short (middle and end).
  EXPECT_EQ(escape_for_log("\xed\xa0\x80"), "\\xed\\xa0\\x80");
  EXPECT_EQ(escape_for_log("\xc0\xaf/\xe0\x80\xaf"), "\\xc0\\xaf/\\xe0\\x80\\xaf");
  EXPECT_EQ(escape_for_log("\xf4\x90\x80\x80|\xf5"), "\\xf4\\x90\\x80\\x80|\\xf5");
  EXPECT_EQ(escape_for_log("\x80x"), "\\x80x");
  EXPECT_EQ(escape_for_log("\xe2\x9c-\xe2\x9c"), "\\xe2\\x9c-\\xe2\\x9c");
  EXPECT_EQ(escape_for_log("\xf0\x9f\x98"), "\\xf0\\x9f\\x98");
  // Every result is valid UTF-8, every single byte included.
  for (int c = 0; c < 256; ++c) {
    std::string s(1, static_cast<char>(c));
    std::string e = escape_for_log(s);
    EXPECT_TRUE(t::detail::valid_utf8(e)) << c;
    EXPECT_EQ(e == s, c >= 0x20 && c < 0x7f) << c;
  }
}

// A line with a byte that is not UTF-8 fails with a message that is itself
// valid UTF-8 and shows that byte as \xff; everything else of the line, and
// what the message says about it, reads as before.
TEST(TextParse, ErrorsQuoteBytesThatAreNotUtf8Escaped) {
  struct Case {
    t::Format f;
    std::string body, want;
  } cases[] = {
      {t::Format::Text, "ok 1\nx{path=\"/mnt/\xff\"} 1\n",
       "line 2, column 9: invalid UTF-8 in label value: \"x{path=\\\"/mnt/\\xff\\\"} 1\""},
      {t::Format::OpenMetrics, "x{path=\"\xed\xa0\x80\"} 1\n# EOF\n",
       "line 1, column 9: invalid UTF-8 in label value: \"x{path=\\\"\\xed\\xa0\\x80\\\"} 1\""},
      {t::Format::Text, "# HELP x caf\xe9 \\\\ tab\tend\n",
       "line 1, column 10: invalid UTF-8 in HELP text: \"# HELP x caf\\xe9 \\\\\\\\ tab\\x09end\""},
      // Body bytes inside the description itself are escaped too.
      {t::Format::Text, "# TYPE x caf\xe9\n",
       "line 1, column 10: invalid metric type 'caf\\xe9': \"# TYPE x caf\\xe9\""},
      {t::Format::Text, "x 1\xff\n", "line 1, column 3: invalid value '1\\xff': \"x 1\\xff\""},
      {t::Format::Text, "x{a=\"\\\xff\"} 1\n",
       "line 1, column 6: invalid escape sequence '\\\\xff' in label value"},
      {t::Format::Text, "x\xff 1\n",
       "line 1, column 2: expected a blank before the value: \"x\\xff 1\""},
      {t::Format::Text, "\xfe 1\n", "line 1, column 1: invalid metric name: \"\\xfe 1\""},
      // Valid multi-byte UTF-8 is quoted as is.
      {t::Format::Text, "# TYPE x gr\xc3\xbc\xc3\x9f\n",
       "invalid metric type 'gr\xc3\xbc\xc3\x9f': \"# TYPE x gr\xc3\xbc\xc3\x9f\""},
  };
  for (const auto& c : cases) {
    auto p = parse(c.body, c.f);
    ASSERT_FALSE(p->r.ok()) << c.body;
    const std::string& m = p->r.error().message;
    EXPECT_TRUE(t::detail::valid_utf8(m)) << t::escape_for_log(m);
    EXPECT_NE(m.find(c.want), std::string::npos) << t::escape_for_log(m) << "\nwant " << c.want;
    EXPECT_EQ(p->p.size(), 0u);
  }
}

// The quote stops at 80 bytes without cutting a multi-byte character in two.
TEST(TextParse, ErrorQuoteIsCutBetweenCharacters) {
  const std::string head = "m{a=\"" + std::string(74, 'a');  // 79 bytes
  auto p = parse(head + "\xc3\xa9\xff\"} 1\n");              // é spans bytes 80-81
  ASSERT_FALSE(p->r.ok());
  const std::string& m = p->r.error().message;
  EXPECT_TRUE(t::detail::valid_utf8(m)) << t::escape_for_log(m);
  std::string want_tail = std::string(74, 'a') + "...\"";
  EXPECT_EQ(m.substr(m.size() - want_tail.size()), want_tail) << m;
  // A byte that is not UTF-8 at byte 80 is escaped whole, then the cut.
  p = parse(head + "\xff\xc3\xa9\"} 1\n");
  ASSERT_FALSE(p->r.ok());
  EXPECT_NE(p->r.error().message.find(std::string(74, 'a') + "\\xff...\""), std::string::npos)
      << p->r.error().message;
  // A line of exactly 80 bytes is quoted whole.
  p = parse("m{a=\"" + std::string(70, 'b') + "\xff\"} 1\n");  // 5 + 70 + 1 + 4 bytes
  ASSERT_FALSE(p->r.ok());
  const std::string& whole = p->r.error().message;
  const std::string end = std::string(70, 'b') + "\\xff\\\"} 1\"";
  EXPECT_EQ(whole.substr(whole.size() - end.size()), end) << whole;
}

// Random bytes spliced into valid lines, both formats: whatever fails, its
// message is valid UTF-8.
TEST(TextParse, EveryErrorMessageIsValidUtf8) {
  const std::string lines[] = {"# HELP a_total Some help.\n",
                               "# TYPE a_total counter\n",
                               "a_total{x=\"1\",y=\"z\"} 3 1000\n",
                               "b 1.5\n",
                               "# EOF\n",
                               "c{p=\"/mnt/a\\\\b\\n\\\"\"} NaN\n",
                               "# UNIT d_seconds seconds\n"};
  std::mt19937 rng(20261126);
  size_t failed = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body;
    for (int k = 0, n = 1 + static_cast<int>(rng() % 4); k < n; ++k)
      body += lines[rng() % std::size(lines)];
    for (int k = 0, n = 1 + static_cast<int>(rng() % 3); k < n; ++k) {
      size_t at = rng() % body.size();
      uint32_t r = rng();
      if (r & 1)
        body[at] = static_cast<char>(0x80 | (r >> 8));  // a high byte
      else
        body.insert(at, 1, static_cast<char>(r >> 8));  // any byte
    }
    auto p = parse(body, (i & 1) ? t::Format::OpenMetrics : t::Format::Text);
    if (p->r.ok()) continue;
    ++failed;
    ASSERT_TRUE(t::detail::valid_utf8(p->r.error().message))
        << t::escape_for_log(p->r.error().message);
  }
  EXPECT_GT(failed, 15000u);
}
