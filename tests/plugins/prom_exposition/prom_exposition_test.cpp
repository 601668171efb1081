// prom_exposition: /metrics content negotiation, gzip, staleness, concurrent
// writes and reads, /federate over a fake storage, promtool check metrics on
// an edge-case fixture, and a real Prometheus 2.42 scraping the output.
#include <http_peer.hpp>
#include <plugin_harness.hpp>

#include <moni/text_format.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <unistd.h>
#include <sstream>
#include <thread>

using moni::testing::PluginHarness;
namespace peer = moni::testpeer;

namespace {

std::unique_ptr<PluginHarness> load(const std::string& toml = "") {
  auto h = PluginHarness::load(moni::testing::plugin_path("prom_exposition"), toml);
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
  if (!h.ok()) return nullptr;
  auto s = (*h)->start();
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return std::move(*h);
}

std::string read_file(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string gunzip(const std::string& z) {
  z_stream zs{};
  inflateInit2(&zs, 15 + 16);
  std::string out(1 << 20, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(z.data()));
  zs.avail_in = static_cast<uInt>(z.size());
  std::string res;
  int rc;
  do {
    zs.next_out = reinterpret_cast<Bytef*>(out.data());
    zs.avail_out = static_cast<uInt>(out.size());
    rc = inflate(&zs, Z_NO_FLUSH);
    res.append(out.data(), out.size() - zs.avail_out);
  } while (rc == Z_OK);
  inflateEnd(&zs);
  return rc == Z_STREAM_END ? res : std::string("<gunzip failed>");
}

moni::Batch fixture_batch(int64_t ts) {
  moni::Batch b;
  auto r = moni::text::parse(read_file(std::string(MONI_TEST_DATA_DIR) + "/exposition/edge_cases.prom"),
                             b, {.default_timestamp_ms = ts});
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return b;
}

}  // namespace

TEST(PromExposition, ServesTextAndOpenMetricsByAccept) {
  auto h = load();
  ASSERT_TRUE(h);
  EXPECT_EQ(h->routes().size(), 1u);  // no storage: no /federate
  moni::Batch b;
  b.set_default_timestamp(1000);
  b.add("up_total", {{"job", "x"}}, 5);
  b.add("temp", {}, 1.5);
  b.describe("up_total", moni::MetricType::Counter, "Ups.");
  ASSERT_TRUE(h->write(b).ok());

  auto r = h->http("GET", "/metrics");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_EQ(r.body, "# HELP up_total Ups.\n# TYPE up_total counter\nup_total{job=\"x\"} 5\ntemp 1.5\n");

  r = h->http("GET", "/metrics", "",
              {{"accept", "application/openmetrics-text;version=1.0.0,text/plain;q=0.5"}});
  EXPECT_EQ(r.header("Content-Type"), "application/openmetrics-text; version=1.0.0; charset=utf-8");
  EXPECT_EQ(r.body,
            "# HELP up Ups.\n# TYPE up counter\nup_total{job=\"x\"} 5\n# TYPE temp unknown\ntemp "
            "1.5\n# EOF\n");

  r = h->http("POST", "/metrics");
  EXPECT_EQ(r.status, 405u);
}

TEST(PromExposition, GzipWhenAsked) {
  auto h = load();
  ASSERT_TRUE(h);
  moni::Batch b;
  for (int i = 0; i < 500; ++i) b.add("series", {{"i", std::to_string(i)}}, i, 1);
  ASSERT_TRUE(h->write(b).ok());
  auto plain = h->http("GET", "/metrics");
  auto z = h->http("GET", "/metrics", "", {{"accept-encoding", "gzip, deflate"}});
  EXPECT_EQ(z.header("Content-Encoding"), "gzip");
  EXPECT_LT(z.body.size(), plain.body.size() / 3);
  EXPECT_EQ(gunzip(z.body), plain.body);
  auto no = h->http("GET", "/metrics", "", {{"accept-encoding", "gzip;q=0"}});
  EXPECT_EQ(no.header("Content-Encoding"), "");
  auto off = load("gzip = false");
  ASSERT_TRUE(off->write(b).ok());
  EXPECT_EQ(off->http("GET", "/metrics", "", {{"accept-encoding", "gzip"}}).header("Content-Encoding"), "");
}

TEST(PromExposition, RepeatsTheLastResponseUntilAWriteOrAStaleSeries) {
  // A scrape with nothing written since the last one is answered with the
  // same body (and gzip form) without rendering; a write, a series going
  // stale or another format must render again.
  auto h = load("stale_after = \"1m\"");
  ASSERT_TRUE(h);
  auto cached = [&] {
    auto self = h->self_metrics();
    auto* c = self.one("moni_prom_exposition_cached_responses_total");
    return c ? c->value : -1.0;
  };
  const std::vector<std::pair<std::string, std::string>> gz{{"accept-encoding", "gzip"}};
  h->set_now_ms(1'000'000);
  moni::Batch b;
  for (int i = 0; i < 200; ++i) b.add("s", {{"i", std::to_string(i)}}, i, 1'000'000);
  b.add("old", {}, 7, 1'000'000);
  ASSERT_TRUE(h->write(b).ok());
  auto first = h->http("GET", "/metrics");
  EXPECT_EQ(cached(), 0);
  EXPECT_EQ(h->http("GET", "/metrics").body, first.body);
  EXPECT_EQ(cached(), 1);
  auto z1 = h->http("GET", "/metrics", "", gz);  // no gzip form held yet: compressed now
  EXPECT_EQ(cached(), 1);
  auto z2 = h->http("GET", "/metrics", "", gz);
  EXPECT_EQ(cached(), 2);
  EXPECT_EQ(z2.header("Content-Encoding"), "gzip");
  EXPECT_EQ(z2.body, z1.body);
  EXPECT_EQ(gunzip(z2.body), first.body);
  auto om = h->http("GET", "/metrics", "", {{"accept", "application/openmetrics-text"}});
  EXPECT_NE(om.body.find("# EOF"), std::string::npos);
  EXPECT_EQ(cached(), 2);

  // New data: both forms are rendered again (the deflate state is reused).
  h->set_now_ms(1'030'000);
  b.clear();
  for (int i = 0; i < 200; ++i) b.add("s", {{"i", std::to_string(i)}}, i + 1000, 1'030'000);
  ASSERT_TRUE(h->write(b).ok());
  auto z3 = h->http("GET", "/metrics", "", gz);
  EXPECT_EQ(cached(), 2);
  std::string fresh = gunzip(z3.body);
  EXPECT_NE(fresh.find("s{i=\"0\"} 1000\n"), std::string::npos);
  EXPECT_NE(fresh.find("old 7\n"), std::string::npos);
  EXPECT_EQ(h->http("GET", "/metrics").body, fresh);
  EXPECT_EQ(h->http("GET", "/metrics", "", gz).body, z3.body);
  EXPECT_EQ(cached(), 4);

  // "old" was last written at 1'000'000: stale after 1'060'000 although
  // nothing was written since.
  h->set_now_ms(1'060'000);
  EXPECT_EQ(h->http("GET", "/metrics").body, fresh);
  EXPECT_EQ(cached(), 5);
  h->set_now_ms(1'060'001);
  auto after = h->http("GET", "/metrics");
  EXPECT_EQ(after.body.find("old"), std::string::npos);
  EXPECT_NE(after.body.find("s{i=\"199\"} 1199\n"), std::string::npos);
  EXPECT_EQ(cached(), 5);
  EXPECT_EQ(gunzip(h->http("GET", "/metrics", "", gz).body), after.body);
}

TEST(PromExposition, MetadataLastWriterWinsWhenRemembered) {
  // The store skips metadata it saw at the same position in the last batch;
  // a family redefined elsewhere in between must still take the newer text.
  auto h = load();
  ASSERT_TRUE(h);
  moni::Batch a, b;
  a.add("x", {}, 1, 1);
  a.describe("x", moni::MetricType::Gauge, "one");
  b.add("x", {}, 2, 2);
  b.describe("x", moni::MetricType::Gauge, "one");
  b.describe("x", moni::MetricType::Counter, "two");  // the later one wins
  auto help = [&] {
    std::string body = h->http("GET", "/metrics").body;
    return body.substr(0, body.find('\n', body.find("# TYPE")));
  };
  ASSERT_TRUE(h->write(a).ok());
  EXPECT_EQ(help(), "# HELP x one\n# TYPE x gauge");
  ASSERT_TRUE(h->write(a).ok());
  EXPECT_EQ(help(), "# HELP x one\n# TYPE x gauge");
  ASSERT_TRUE(h->write(b).ok());
  EXPECT_EQ(help(), "# HELP x two\n# TYPE x counter");
  ASSERT_TRUE(h->write(a).ok());
  EXPECT_EQ(help(), "# HELP x one\n# TYPE x gauge");
}

TEST(PromExposition, KeepsLatestAndDropsStaleSeries) {
  auto h = load("stale_after = \"1m\"\npath = \"/m\"\ntimestamps = true");
  ASSERT_TRUE(h);
  h->set_now_ms(1'000'000);
  moni::Batch b;
  b.add("a", {}, 1, 999'000);
  b.add("b", {}, 1, 999'000);
  b.add("c", {}, 1, 999'000);
  ASSERT_TRUE(h->write(b).ok());
  b.clear();
  b.add("a", {}, 2, 1'000'000);
  b.add("b", {}, moni::stale_nan(), 1'000'000);  // ends b now
  b.add("c", {}, 0, 900'000);                  // older than held: ignored
  ASSERT_TRUE(h->write(b).ok());
  EXPECT_EQ(h->http("GET", "/m").body, "a 2 1000000\nc 1 999000\n");
  h->set_now_ms(1'030'000);
  b.clear();
  b.add("c", {}, 3, 1'030'000);
  ASSERT_TRUE(h->write(b).ok());
  h->set_now_ms(1'060'001);  // a not written for > 1m: gone; c still fresh
  EXPECT_EQ(h->http("GET", "/m").body, "c 3 1030000\n");
  auto self = h->self_metrics();
  ASSERT_NE(self.one("moni_prom_exposition_requests_total", "route", "metrics"), nullptr);
  EXPECT_EQ(self.one("moni_prom_exposition_requests_total", "route", "metrics")->value, 2);
}

TEST(PromExposition, CollectOnScrapeCollectsBeforeRendering) {
  auto h = load("collect_on_scrape = true\ncollect_timeout = \"4s\"");
  ASSERT_TRUE(h);
  int calls = 0;
  int64_t last_timeout = 0;
  h->set_collect_now([&](int64_t timeout_ms) -> moni::Result<void> {
    // What the host does: one cycle written to this sink before returning.
    ++calls;
    last_timeout = timeout_ms;
    moni::Batch b;
    b.add("collections", {}, calls, 1000 + calls);
    if (auto r = h->write(b); !r) return r;
    return {};
  });
  EXPECT_EQ(h->http("GET", "/metrics").body, "collections 1\n");
  EXPECT_EQ(h->http("GET", "/metrics").body, "collections 2\n");
  EXPECT_EQ(last_timeout, 4000);
  // Prometheus's own timeout bounds the collection (with a margin).
  h->http("GET", "/metrics", "", {{"x-prometheus-scrape-timeout-seconds", "2"}});
  EXPECT_EQ(last_timeout, 1800);
  // A failed collection still answers, with what is held, and is counted.
  h->set_collect_now([](int64_t) -> moni::Result<void> { return moni::make_error("too slow"); });
  auto r = h->http("GET", "/metrics");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body, "collections 3\n");
  auto self = h->self_metrics();
  ASSERT_NE(self.one("moni_prom_exposition_collect_errors_total"), nullptr);
  EXPECT_EQ(self.one("moni_prom_exposition_collect_errors_total")->value, 1);

  auto off = load();  // default: serves the last cycle, never collects
  ASSERT_TRUE(off);
  bool called = false;
  off->set_collect_now([&](int64_t) -> moni::Result<void> {
    called = true;
    return {};
  });
  off->http("GET", "/metrics");
  EXPECT_FALSE(called);
}

TEST(PromExposition, ReorderedAndInterleavedBatchesKeepEverySeriesOnce) {
  // The store predicts each series from the previous batch's order; batches
  // in another order, or from two collectors in turn, must still update in
  // place (no duplicate series, latest values).
  auto h = load();
  ASSERT_TRUE(h);
  moni::Batch a, b;
  for (int round = 1; round <= 3; ++round) {
    a.clear();
    b.clear();
    for (int i = 0; i < 5; ++i) {
      int k = round == 2 ? 4 - i : i;  // round 2 reversed
      a.add("a", {{"i", std::to_string(k)}}, round * 10 + k, 1000 * round);
      b.add("b", {{"i", std::to_string(k)}}, round * 100 + k, 1000 * round);
    }
    if (round == 3) a.add("a", {{"i", "new"}}, 1, 3000);
    ASSERT_TRUE(h->write(a).ok());
    ASSERT_TRUE(h->write(b).ok());
  }
  EXPECT_EQ(h->http("GET", "/metrics").body,
            "a{i=\"0\"} 30\na{i=\"1\"} 31\na{i=\"2\"} 32\na{i=\"3\"} 33\na{i=\"4\"} 34\n"
            "a{i=\"new\"} 1\n"
            "b{i=\"0\"} 300\nb{i=\"1\"} 301\nb{i=\"2\"} 302\nb{i=\"3\"} 303\nb{i=\"4\"} 304\n");
}

TEST(PromExposition, ConcurrentWritesAndScrapes) {
  auto h = load();
  ASSERT_TRUE(h);
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    moni::Batch b;
    for (int round = 0; round < 200; ++round) {
      b.clear();
      for (int i = 0; i < 200; ++i)
        b.add("w", {{"i", std::to_string((i + round) % 300)}}, round, round);
      b.describe("w", moni::MetricType::Gauge, "written");
      ASSERT_TRUE(h->write(b).ok());
    }
    stop = true;
  });
  int scrapes = 0;
  moni::text::Parser p;
  while (!stop || scrapes < 3) {
    auto r = h->http("GET", "/metrics");
    auto pr = p.parse(r.body);
    ASSERT_TRUE(pr.ok()) << pr.error().message;
    ++scrapes;
  }
  writer.join();
  auto r = h->http("GET", "/metrics");
  ASSERT_TRUE(p.parse(r.body).ok());
  EXPECT_EQ(p.size(), 300u);
}

TEST(PromExposition, ConfigErrors) {
  auto h = PluginHarness::load(moni::testing::plugin_path("prom_exposition"),
                               "path = \"metrics\"\nstale_after = \"5x\"\nbogus = 1");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("path must start with '/'"), std::string::npos);
  EXPECT_NE(h.error().message.find("stale_after"), std::string::npos);
  EXPECT_NE(h.error().message.find("unknown option 'bogus'"), std::string::npos);
}

// ---- /federate over an in-memory storage reader.
namespace {
struct FakeSeries {
  std::vector<moni_label> labels;
  std::vector<int64_t> ts;
  std::vector<double> vals;
};
struct FakeStorage {
  std::vector<FakeSeries> series;
  moni_storage_reader reader{};
  std::vector<moni::Matcher> last_matchers;
  int64_t last_mint = 0, last_maxt = 0;
};
struct FakeCursor {
  FakeStorage* st;
  std::vector<size_t> hits;
  size_t next = 0;
};
// The fake supports regexes of the form "prefix.*" only.
bool re_match(const std::string& v, const std::string& re) {
  if (re.size() >= 2 && re.ends_with(".*")) return v.starts_with(re.substr(0, re.size() - 2));
  return v == re;
}
bool matches(const FakeSeries& s, const std::vector<moni::Matcher>& ms) {
  for (const auto& m : ms) {
    std::string v(moni::find_label(s.labels.data(), static_cast<uint32_t>(s.labels.size()), m.name));
    bool ok;
    switch (m.type) {
      case moni::MatchType::Equal: ok = v == m.value; break;
      case moni::MatchType::NotEqual: ok = v != m.value; break;
      case moni::MatchType::Regex: ok = re_match(v, m.value); break;
      default: ok = !re_match(v, m.value); break;
    }
    if (!ok) return false;
  }
  return true;
}
int fake_select(void* self, const moni_matcher* m, size_t n, int64_t mint, int64_t maxt, int,
                moni_series_cursor** out, moni_error*) {
  auto* st = static_cast<FakeStorage*>(self);
  st->last_matchers = moni::from_abi(m, n);
  st->last_mint = mint;
  st->last_maxt = maxt;
  auto* c = new FakeCursor{st, {}, 0};
  for (size_t i = 0; i < st->series.size(); ++i)
    if (matches(st->series[i], st->last_matchers)) c->hits.push_back(i);
  *out = reinterpret_cast<moni_series_cursor*>(c);
  return MONI_OK;
}
int fake_next(moni_series_cursor* cur, moni_series_view* v, moni_error*) {
  auto* c = reinterpret_cast<FakeCursor*>(cur);
  if (c->next >= c->hits.size()) return 0;
  const FakeSeries& s = c->st->series[c->hits[c->next++]];
  *v = {s.labels.data(), static_cast<uint32_t>(s.labels.size()), s.ts.data(), s.vals.data(),
        s.ts.size()};
  return 1;
}
void fake_close(moni_series_cursor* cur) { delete reinterpret_cast<FakeCursor*>(cur); }
int fake_metadata(void*, moni_str, moni_metadata_fn fn, void* user, moni_error*) {
  moni_metadata m{moni::ms("node_load1"), MONI_METRIC_GAUGE, moni::ms("1m load average."), {}};
  fn(user, &m);
  return MONI_OK;
}
}  // namespace

TEST(PromExposition, FederateFromStorage) {
  FakeStorage st;
  static const char* kLabels[][3][2] = {
      {{"__name__", "node_load1"}, {"instance", "a:9100"}, {"job", "node"}},
      {{"__name__", "node_load1"}, {"instance", "b:9100"}, {"job", "node"}},
      {{"__name__", "other"}, {"instance", "a:9100"}, {"job", "x"}},
  };
  for (auto& ls : kLabels) {
    FakeSeries s;
    for (auto& l : ls) s.labels.push_back({moni::ms(l[0]), moni::ms(l[1])});
    st.series.push_back(s);
  }
  st.series[0].ts = {100'000, 200'000};
  st.series[0].vals = {0.5, 0.75};
  st.series[1].ts = {190'000, 200'000};
  st.series[1].vals = {1, moni::stale_nan()};  // ended: not federated
  st.series[2].ts = {150'000};
  st.series[2].vals = {7};
  st.reader = {sizeof(moni_storage_reader), &st, &fake_select, &fake_next, &fake_close,
               nullptr, nullptr, &fake_metadata};
  auto h = PluginHarness::load(moni::testing::plugin_path("prom_exposition"), "");
  ASSERT_TRUE(h.ok());
  (*h)->set_storage(&st.reader);
  (*h)->set_now_ms(210'000);
  ASSERT_TRUE((*h)->start().ok());
  auto r = (*h)->http("GET", "/federate?match[]=%7Bjob%3D%22node%22%7D&match[]=node_load1");
  EXPECT_EQ(r.status, 200u);
  EXPECT_EQ(r.body,
            "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\n"
            "node_load1{instance=\"a:9100\",job=\"node\"} 0.75 200000\n");
  EXPECT_EQ(st.last_mint, 210'000 - 300'000);
  EXPECT_EQ(st.last_maxt, 210'000);
  ASSERT_EQ(st.last_matchers.size(), 1u);
  EXPECT_EQ(st.last_matchers[0].name, "__name__");

  r = (*h)->http("GET", "/federate?match[]=" "%7B__name__%3D~%22o.*%22%2Cjob!%3D%22node%22%7D");
  EXPECT_EQ(r.body, "other{instance=\"a:9100\",job=\"x\"} 7 150000\n");
  ASSERT_EQ(st.last_matchers.size(), 2u);
  EXPECT_EQ(st.last_matchers[0].type, moni::MatchType::Regex);
  EXPECT_EQ(st.last_matchers[1].type, moni::MatchType::NotEqual);

  EXPECT_EQ((*h)->http("GET", "/federate").status, 400u);
  auto bad = (*h)->http("GET", "/federate?match[]=%7Bjob%3D%22%22%7D");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("does not match the empty string"), std::string::npos) << bad.body;
  bad = (*h)->http("GET", "/federate?match[]=%7Bjob%3D~%22(%22%7D");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("bad regex"), std::string::npos) << bad.body;
  bad = (*h)->http("GET", "/federate?match[]=node_load1%7Bjob%7D");
  EXPECT_EQ(bad.status, 400u);
  EXPECT_NE(bad.body.find("position 15"), std::string::npos) << bad.body;
  (*h)->stop();
}

TEST(PromExposition, PromtoolAcceptsEdgeCaseOutput) {
  auto h = load();
  ASSERT_TRUE(h);
  moni::Batch b = fixture_batch(5000);
  ASSERT_TRUE(h->write(b).ok());
  auto r = h->http("GET", "/metrics");
  ASSERT_EQ(r.status, 200u);
  // Every edge case made it through, formatted as Prometheus would.
  EXPECT_NE(r.body.find("msg=\"Cannot find file:\\n\\\"FILE.TXT\\\"\",path=\"C:\\\\DIR\\\\FILE.TXT\""),
            std::string::npos);
  EXPECT_NE(r.body.find("edge_temperature_celsius{room=\"int\"} 1073741824\n"), std::string::npos);
  EXPECT_NE(r.body.find("edge_temperature_celsius{room=\"nan\"} NaN\n"), std::string::npos);
  EXPECT_NE(r.body.find("edge_temperature_celsius{room=\"cold\"} -Inf\n"), std::string::npos);
  EXPECT_NE(r.body.find("# HELP edge_temperature_celsius \n"), std::string::npos);
  EXPECT_NE(r.body.find("edge_empty_label_dropped_bytes 4096\n"), std::string::npos);
  EXPECT_NE(r.body.find("edge_untyped_info_value{UPPER=\"y\",_underscore=\"x\",a=\"1\""),
            std::string::npos);
  std::string out;
  int rc = peer::run({"/usr/bin/promtool", "check", "metrics"}, r.body, &out);
  // No parse error; the only lint finding is the fixture's deliberately
  // empty HELP.
  EXPECT_EQ(rc, 3) << out << "\n---\n" << r.body;
  EXPECT_EQ(out, "edge_temperature_celsius no help text\n") << r.body;
  // Without that family the output is lint-clean.
  moni::Batch clean;
  auto full = fixture_batch(5000);
  moni::BatchView v(full.view());
  for (const auto& s : v)
    if (s.name() != "edge_temperature_celsius") clean.add_sorted(s.raw().labels, s.raw().label_count, s.value(), 5000);
  for (const auto& m : v.metadata()) clean.describe(moni::sv(m.family), static_cast<moni::MetricType>(m.type), moni::sv(m.help), moni::sv(m.unit));
  auto h2 = load();
  ASSERT_TRUE(h2->write(clean).ok());
  rc = peer::run({"/usr/bin/promtool", "check", "metrics"}, h2->http("GET", "/metrics").body, &out);
  EXPECT_EQ(rc, 0) << out;
  // A body without HELP is only a lint finding (exit 3), never a parse error.
  rc = peer::run({"/usr/bin/promtool", "check", "metrics"}, "no_help_metric 1\n", &out);
  EXPECT_EQ(rc, 3) << out;
  rc = peer::run({"/usr/bin/promtool", "check", "metrics"}, "bad{ 1\n", &out);
  EXPECT_EQ(rc, 1) << out;
}

// A real Prometheus scrapes the plugin's /metrics through a loopback server
// that forwards to the harness (the host's HTTP server in production).
TEST(PromExposition, RealPrometheusScrapes) {
  auto h = load();
  ASSERT_TRUE(h);
  moni::Batch b = fixture_batch(5000);
  b.add("moni_known_value", {{"kind", "test"}}, 42.25, 5000);
  b.describe("moni_known_value", moni::MetricType::Gauge, "A value the test looks for.");
  ASSERT_TRUE(h->write(b).ok());
  std::atomic<int> om_requests{0}, text_requests{0};
  peer::Server server([&](const peer::Request& req) {
    std::vector<std::pair<std::string, std::string>> hdrs;
    for (const auto& [k, v] : req.headers)
      if (k != "accept" || req.target != "/text") hdrs.emplace_back(k, v);
    auto r = h->http("GET", "/metrics", "", hdrs);
    (r.header("Content-Type").find("openmetrics") != std::string::npos ? om_requests : text_requests)++;
    peer::Response out;
    out.status = static_cast<int>(r.status);
    for (const auto& [k, v] : r.headers) out.headers[k] = v;
    out.body = r.body;
    return out;
  });
  std::string dir = peer::temp_dir("moni-expo-prom-");
  uint16_t port = peer::free_port();
  {
    std::ofstream cfg(dir + "/prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\n"
        << "scrape_configs:\n"
        << "  - job_name: moni\n    static_configs:\n      - targets: ['127.0.0.1:" << server.port()
        << "']\n"
        << "  - job_name: moni_text\n    metrics_path: /text\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << server.port() << "']\n";
  }
  peer::Process prom({"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
                      "--storage.tsdb.path=" + dir + "/data",
                      "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                     dir + "/prometheus.log");
  auto query = [&](const std::string& q) -> nlohmann::json {
    std::string enc;
    for (unsigned char c : q) {
      if (std::isalnum(c)) enc += static_cast<char>(c);
      else {
        char buf[4];
        snprintf(buf, sizeof buf, "%%%02X", c);
        enc += buf;
      }
    }
    auto r = peer::http_get(port, "/api/v1/query?query=" + enc, {}, std::chrono::seconds(2));
    if (r.status != 200) return nlohmann::json();
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (j.is_discarded() || j["status"] != "success") return nlohmann::json();
    return j["data"]["result"];
  };
  auto value_of = [&](const std::string& q) -> std::string {
    auto res = query(q);
    if (!res.is_array() || res.size() != 1) return "";
    return res[0]["value"][1].get<std::string>();
  };
  bool ok = peer::wait_until(
      [&] { return value_of("up{job=\"moni\"}") == "1" && value_of("up{job=\"moni_text\"}") == "1"; },
      std::chrono::seconds(30));
  ASSERT_TRUE(ok) << read_file(dir + "/prometheus.log");
  EXPECT_GT(om_requests.load(), 0);    // Prometheus negotiated OpenMetrics
  EXPECT_GT(text_requests.load(), 0);  // and the text format on /text
  for (const char* job : {"moni", "moni_text"}) {
    SCOPED_TRACE(job);
    std::string sel = std::string("{job=\"") + job + "\"";
    EXPECT_EQ(value_of("moni_known_value" + sel + ",kind=\"test\"}"), "42.25");
    EXPECT_EQ(value_of("edge_temperature_celsius" + sel + ",room=\"int\"}"), "1073741824");
    EXPECT_EQ(value_of("edge_temperature_celsius" + sel + ",room=\"cold\"}"), "-Inf");
    EXPECT_EQ(value_of("edge_requests_total" + sel + ",code=\"500\"}"), "3");
    EXPECT_EQ(value_of("edge_latency_seconds_count" + sel + "}"), "8");
    EXPECT_EQ(value_of("count(edge_latency_seconds_bucket" + sel + "})"), "4");
    EXPECT_EQ(value_of("scrape_samples_scraped" + sel + "}"), "25");  // 24 fixture + 1
    auto msg = query("edge_requests_total" + sel + ",code=\"500\"}");
    ASSERT_TRUE(msg.is_array() && msg.size() == 1);
    EXPECT_EQ(msg[0]["metric"]["msg"], "Cannot find file:\n\"FILE.TXT\"");
    EXPECT_EQ(msg[0]["metric"]["path"], "C:\\DIR\\FILE.TXT");
  }
  std::string rm;
  peer::run({"/bin/rm", "-rf", dir}, "", &rm);
}

// End to end through the real host when it is built in the same tree: a
// fake exporter is scraped by moni's scrape collector, served by
// prom_exposition on moni's /metrics, and scraped from there by a real
// Prometheus.
TEST(PromExposition, EndToEndWithTheHost) {
  std::string moni_bin = std::string(MONI_BINARY_DIR) + "/bin/moni";
  if (access(moni_bin.c_str(), X_OK) != 0) GTEST_SKIP() << "host not built: " << moni_bin;
  peer::Server exporter([](const peer::Request&) {
    peer::Response r;
    r.status = 200;
    r.headers["Content-Type"] = "text/plain; version=0.0.4";
    r.body = "# HELP e2e_known_value A value the test looks for.\n# TYPE e2e_known_value gauge\n"
             "e2e_known_value{kind=\"e2e\"} 42.5\n";
    return r;
  });
  std::string dir = peer::temp_dir("moni-expo-e2e-");
  uint16_t moni_port = peer::free_port(), prom_port = peer::free_port();
  {
    std::ofstream cfg(dir + "/moni.toml");
    cfg << "[host]\nlisten = \"127.0.0.1:" << moni_port << "\"\ndata_dir = \"" << dir << "/data\"\n"
        << "[collectors.exporter]\nplugin = \"scrape\"\ninterval = \"1s\"\njob = \"fake\"\n"
        << "targets = [\"127.0.0.1:" << exporter.port() << "\"]\n"
        << "[outputs.metrics]\nplugin = \"prom_exposition\"\n"
        << "[pipelines.main]\ncollectors = [\"exporter\"]\nsinks = [\"metrics\"]\n";
    std::ofstream p(dir + "/prometheus.yml");
    p << "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n"
      << "  - job_name: moni\n    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:"
      << moni_port << "']\n";
  }
  std::filesystem::create_directories(dir + "/data");
  peer::Process moni({moni_bin, "run", "--config", dir + "/moni.toml"}, dir + "/moni.log");
  peer::Process prom({"/usr/bin/prometheus", "--config.file=" + dir + "/prometheus.yml",
                      "--storage.tsdb.path=" + dir + "/tsdb",
                      "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)},
                     dir + "/prometheus.log");
  auto value_of = [&](const std::string& q) -> std::string {
    std::string enc;
    for (unsigned char c : q) {
      char buf[4];
      snprintf(buf, sizeof buf, "%%%02X", c);
      enc += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : std::string(buf);
    }
    auto r = peer::http_get(prom_port, "/api/v1/query?query=" + enc, {}, std::chrono::seconds(2));
    auto j = nlohmann::json::parse(r.body, nullptr, false);
    if (r.status != 200 || j.is_discarded() || !j["data"]["result"].is_array() ||
        j["data"]["result"].size() != 1)
      return "";
    return j["data"]["result"][0]["value"][1].get<std::string>();
  };
  bool ok = peer::wait_until(
      [&] {
        return value_of("up{job=\"moni\"}") == "1" &&
               value_of("e2e_known_value{kind=\"e2e\",job=\"fake\"}") == "42.5";
      },
      std::chrono::seconds(40));
  EXPECT_TRUE(ok) << "moni log:\n" << read_file(dir + "/moni.log") << "\nprometheus log:\n"
                  << read_file(dir + "/prometheus.log");
  // moni's own scrape of the exporter is visible through Prometheus too.
  EXPECT_EQ(value_of("up{job=\"fake\"}"), "1");
  std::filesystem::remove_all(dir);
}
