// scrape collector: labels, honor_labels, synthetic series, staleness,
// failures (HTTP, malformed bodies, limits, timeouts), gzip, OpenMetrics,
// file_sd, metric relabeling, and real peers (node_exporter, Prometheus).
#include <http_peer.hpp>
#include <plugin_harness.hpp>

#include <moni/text_format.hpp>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>
#include <unistd.h>

using moni::testing::OwnedBatch;
using moni::testing::PluginHarness;
namespace peer = moni::testpeer;

namespace {

std::string data(const std::string& rel) {
  std::ifstream f(std::string(MONI_TEST_DATA_DIR) + "/scrape/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string data_at(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string gzip(const std::string& s) {
  z_stream zs{};
  deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, s.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(s.data()));
  zs.avail_in = static_cast<uInt>(s.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

// A target whose response the test controls.
struct FakeTarget {
  std::mutex mu;
  std::string body;
  std::string content_type = "text/plain; version=0.0.4";
  int status = 200;
  bool gzip_it = false;
  int delay_ms = 0;
  std::atomic<int> hits{0};
  std::string last_accept, last_auth, last_path;
  peer::Server server{[this](const peer::Request& r) {
    ++hits;
    peer::Response out;
    int delay;
    {
      std::lock_guard lock(mu);
      last_accept = r.headers.count("accept") ? r.headers.at("accept") : "";
      last_auth = r.headers.count("authorization") ? r.headers.at("authorization") : "";
      last_path = r.target;
      out.status = status;
      out.headers["Content-Type"] = content_type;
      bool gz = gzip_it && r.headers.count("accept-encoding") &&
                r.headers.at("accept-encoding").find("gzip") != std::string::npos;
      out.body = gz ? gzip(body) : body;
      if (gz) out.headers["Content-Encoding"] = "gzip";
      delay = delay_ms;
    }
    if (delay) std::this_thread::sleep_for(std::chrono::milliseconds(delay));
    return out;
  }};
  std::string addr() { return "127.0.0.1:" + std::to_string(server.port()); }
  void set(const std::string& b) {
    std::lock_guard lock(mu);
    body = b;
  }
};

std::unique_ptr<PluginHarness> load(const std::string& toml) {
  auto h = PluginHarness::load(moni::testing::plugin_path("scrape"), toml, "agents");
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
  if (!h.ok()) return nullptr;
  auto s = (*h)->start();
  EXPECT_TRUE(s.ok());
  return std::move(*h);
}

double value(const OwnedBatch& b, std::string_view name, std::string_view k = {},
             std::string_view v = {}) {
  auto* s = b.one(name, k, v);
  EXPECT_NE(s, nullptr) << name;
  return s ? s->value : -12345;
}

size_t stale_count(const OwnedBatch& b) {
  size_t n = 0;
  for (const auto& s : b.samples) n += moni::is_stale_nan(s.value);
  return n;
}

bool logged(const PluginHarness& h, const std::string& what) {
  for (const auto& l : h.logs())
    if (l.find(what) != std::string::npos) return true;
  return false;
}

}  // namespace

TEST(Scrape, LabelsSyntheticSeriesAndMetadata) {
  FakeTarget t;
  t.set(data("basic.prom"));
  auto h = load("interval = \"1s\"\njob = \"app\"\ntargets = [\"" + t.addr() + "\"]\nlabels = { env = \"prod\" }");
  ASSERT_TRUE(h);
  auto b = h->collect(1'000'000);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_NE(t.last_accept.find("application/openmetrics-text"), std::string::npos);
  auto* s = b->one("app_requests_total", "code", "200");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->label("job"), "app");
  EXPECT_EQ(s->label("instance"), t.addr());
  EXPECT_EQ(s->label("env"), "prod");
  EXPECT_EQ(s->value, 10);
  EXPECT_EQ(s->timestamp_ms, 1'000'000);
  // Conflicting exposed labels are kept as exported_*.
  auto* info = b->one("app_info");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->label("job"), "app");
  EXPECT_EQ(info->label("exported_job"), "inner");
  EXPECT_EQ(info->label("exported_instance"), "inner:1");
  EXPECT_EQ(b->one("app_with_timestamp")->timestamp_ms, 1600000000000);
  EXPECT_EQ(value(*b, "up"), 1);
  EXPECT_EQ(b->one("up")->label("job"), "app");
  EXPECT_EQ(b->one("up")->label("env"), "prod");
  EXPECT_EQ(value(*b, "scrape_samples_scraped"), 5);
  EXPECT_EQ(value(*b, "scrape_samples_post_metric_relabeling"), 5);
  EXPECT_EQ(value(*b, "scrape_series_added"), 5);
  EXPECT_GT(value(*b, "scrape_duration_seconds"), 0);
  EXPECT_LT(value(*b, "scrape_duration_seconds"), 5);
  ASSERT_NE(b->meta("app_requests_total"), nullptr);
  EXPECT_EQ(b->meta("app_requests_total")->type, moni::MetricType::Counter);
  EXPECT_EQ(b->samples.size(), 5u + 5u);

  // Second scrape: one series gone -> a staleness marker; nothing added.
  t.set("app_requests_total{code=\"200\"} 11\napp_temperature_celsius 22\napp_info{version=\"1.2\"} 1\napp_with_timestamp 5 1600000000000\n");
  b = h->collect(1'001'000);
  ASSERT_TRUE(b.ok());
  auto gone = b->find("app_requests_total", "code", "500");
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_TRUE(moni::is_stale_nan(gone[0].value));
  EXPECT_EQ(gone[0].timestamp_ms, 1'001'000);
  EXPECT_EQ(value(*b, "scrape_series_added"), 1);  // app_info without exported_* labels is new
  auto old_info = b->find("app_info", "exported_job", "inner");
  ASSERT_EQ(old_info.size(), 1u);
  EXPECT_TRUE(moni::is_stale_nan(old_info[0].value));
}

TEST(Scrape, HonorLabels) {
  FakeTarget t;
  t.set(data("basic.prom"));
  auto h = load("interval = \"1s\"\nhonor_labels = true\nhonor_timestamps = false\ntargets = [\"" + t.addr() + "\"]");
  ASSERT_TRUE(h);
  auto b = h->collect(2'000'000);
  ASSERT_TRUE(b.ok());
  auto* info = b->one("app_info");
  ASSERT_NE(info, nullptr);
  EXPECT_EQ(info->label("job"), "inner");
  EXPECT_EQ(info->label("instance"), "inner:1");
  EXPECT_EQ(info->label("exported_job"), "");
  EXPECT_EQ(b->one("app_requests_total", "code", "200")->label("job"), "agents");  // default job
  EXPECT_EQ(b->one("app_with_timestamp")->timestamp_ms, 2'000'000);
}

TEST(Scrape, MalformedBodyMeansUpZeroNoSamplesAndAClearError) {
  FakeTarget t;
  t.set(data("basic.prom"));
  auto h = load("interval = \"1s\"\ntargets = [\"" + t.addr() + "\"]");
  ASSERT_TRUE(h);
  ASSERT_TRUE(h->collect(1'000'000).ok());
  int64_t now = 1'000'000;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(MONI_TEST_DATA_DIR) + "/scrape/malformed")) {
    SCOPED_TRACE(entry.path().filename().string());
    t.set(data("malformed/" + entry.path().filename().string()));
    now += 1000;
    auto b = h->collect(now);
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(value(*b, "up"), 0);
    EXPECT_EQ(value(*b, "scrape_samples_scraped"), 0);
    // Only the synthetic series and staleness markers of the last good scrape.
    for (const auto& s : b->samples)
      EXPECT_TRUE(s.name().starts_with("up") || s.name().starts_with("scrape_") || moni::is_stale_nan(s.value))
          << s.name();
  }
  EXPECT_TRUE(logged(*h, "scrape of http://" + t.addr() + "/metrics failed: invalid text format body: line "));
  auto self = h->self_metrics();
  EXPECT_EQ(value(self, "moni_scrape_failures_total"), 13);
  // First failure after a good scrape ended all its series.
  t.set(data("basic.prom"));
  ASSERT_TRUE(h->collect(now + 1000).ok());
  t.set("broken{\n");
  auto b = h->collect(now + 2000);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(stale_count(*b), 5u);
  EXPECT_TRUE(logged(*h, "recovered"));
}

// Prometheus fails a whole scrape on one label value or HELP text that is
// not UTF-8 (2.42: "invalid UTF-8 label value", "help text is not a valid
// utf8 string"), in both formats; so does the scrape collector, naming the
// line and column, while multi-byte UTF-8 passes intact. The same targets
// scraped by a real Prometheus come out down and up alike.
TEST(Scrape, LabelValueOrHelpNotUtf8FailsTheTargetAsInPrometheus) {
  FakeTarget good, label, help, om;
  good.set(data("utf8/good.prom"));
  label.set(data("utf8/bad_label.prom"));
  label.gzip_it = true;  // checked after decoding
  help.set(data("utf8/bad_help.prom"));
  om.set(data("utf8/bad_label.om"));
  om.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
  auto h = load("interval = \"1s\"\njob = \"utf8\"\ntargets = [\"" + good.addr() + "\", \"" +
                label.addr() + "\", \"" + help.addr() + "\", \"" + om.addr() + "\"]");
  ASSERT_TRUE(h);
  auto b = h->collect(1'000'000);
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(value(*b, "up", "instance", good.addr()), 1);
  for (FakeTarget* t : {&label, &help, &om}) EXPECT_EQ(value(*b, "up", "instance", t->addr()), 0) << t->addr();
  auto* s = b->one("utf8_good_info");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->label("path"), "/mnt/Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93 \xf0\x9f\x98\x80");
  EXPECT_EQ(s->label("quote"), "a\"b");
  ASSERT_NE(b->meta("utf8_good_info"), nullptr);
  EXPECT_EQ(b->meta("utf8_good_info")->help, "Temp\xc3\xa9rature \xe2\x9c\x93 of a mount whose path is UTF-8.");
  // All or nothing: the good lines of a failed body are not kept either.
  for (const char* n : {"utf8_bad", "utf8_ok", "utf8_bad_help", "utf8_om", "utf8_om_ok"})
    EXPECT_EQ(b->find(n).size(), 0u) << n;
  auto failed = [&](FakeTarget& t, const std::string& why) {
    return logged(*h, "scrape of http://" + t.addr() + "/metrics failed: " + why);
  };
  // The quoted line escapes the bytes that are not UTF-8: the log stays UTF-8.
  EXPECT_TRUE(failed(label, "invalid text format body: line 2, column 16: invalid UTF-8 in label "
                            "value: \"utf8_bad{path=\\\"/mnt/\\xff\\xfe\\\"} 1\""));
  EXPECT_TRUE(failed(help, "invalid text format body: line 1, column 22: invalid UTF-8 in HELP "
                           "text: \"# HELP utf8_bad_help Latin-1, not UTF-8: \\xe9t\\xe9.\""));
  EXPECT_TRUE(failed(om, "invalid OpenMetrics body: line 2, column 15: invalid UTF-8 in label "
                         "value: \"utf8_om{path=\\\"\\xed\\xa0\\x80\\\"} 1\""));
  for (const auto& l : h->logs()) EXPECT_TRUE(moni::text::detail::valid_utf8(l)) << l;
  EXPECT_EQ(value(h->self_metrics(), "moni_scrape_failures_total"), 3);
  // Fixed at the target: up again.
  label.set(data("utf8/good.prom"));
  b = h->collect(1'001'000);
  EXPECT_EQ(value(*b, "up", "instance", label.addr()), 1);

  if (access("/usr/bin/prometheus", X_OK) != 0) GTEST_SKIP() << "no prometheus";
  label.set(data("utf8/bad_label.prom"));
  std::string dir = peer::temp_dir("moni-scrape-utf8-");
  uint16_t port = peer::free_port();
  {
    std::ofstream p(dir + "/p.yml");
    p << "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n";
    for (auto [job, t] : {std::pair{"good", &good}, {"label", &label}, {"help", &help}, {"om", &om}})
      p << "  - job_name: " << job << "\n    static_configs: [{targets: ['" << t->addr() << "']}]\n";
  }
  peer::Process prom({"/usr/bin/prometheus", "--config.file=" + dir + "/p.yml",
                      "--storage.tsdb.path=" + dir + "/data",
                      "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                     dir + "/prom.log");
  std::map<std::string, std::pair<std::string, std::string>> seen;  // job -> health, lastError
  bool all = peer::wait_until(
      [&] {
        auto r = peer::http_get(port, "/api/v1/targets", {}, std::chrono::seconds(2));
        auto j = nlohmann::json::parse(r.body, nullptr, false);
        if (r.status != 200 || j.is_discarded()) return false;
        seen.clear();
        for (const auto& t : j["data"]["activeTargets"])
          if (t["health"] != "unknown")
            seen[t["labels"]["job"].get<std::string>()] = {t["health"].get<std::string>(),
                                                           t["lastError"].get<std::string>()};
        return seen.size() == 4;
      },
      std::chrono::seconds(30));
  ASSERT_TRUE(all) << data_at(dir + "/prom.log");
  EXPECT_EQ(seen["good"].first, "up") << seen["good"].second;
  EXPECT_EQ(seen["label"].first, "down");
  EXPECT_EQ(seen["label"].second, "invalid UTF-8 label value");
  EXPECT_EQ(seen["help"].first, "down");
  EXPECT_NE(seen["help"].second.find("not a valid utf8"), std::string::npos) << seen["help"].second;
  EXPECT_EQ(seen["om"].first, "down");
  EXPECT_NE(seen["om"].second.find("UTF-8"), std::string::npos) << seen["om"].second;
  std::filesystem::remove_all(dir);
}

TEST(Scrape, HttpErrorsLimitsGzipAndOpenMetrics) {
  FakeTarget t;
  t.set(data("basic.prom"));
  t.status = 503;
  auto h = load("interval = \"1s\"\ntargets = [\"" + t.addr() + "\"]\nsample_limit = 4");
  ASSERT_TRUE(h);
  auto b = h->collect(1'000'000);
  EXPECT_EQ(value(*b, "up"), 0);
  EXPECT_TRUE(logged(*h, "server returned HTTP status 503"));
  t.status = 200;
  b = h->collect(1'001'000);
  EXPECT_EQ(value(*b, "up"), 0);
  EXPECT_TRUE(logged(*h, "sample_limit exceeded (5 samples > 4)"));
  EXPECT_EQ(b->find("app_requests_total").size(), 0u);

  // gzip + body_size_limit applies to the decoded body.
  t.gzip_it = true;
  auto g = load("interval = \"1s\"\ntargets = [\"" + t.addr() + "\"]\nbody_size_limit = 100");
  b = g->collect(1'000'000);
  EXPECT_EQ(value(*b, "up"), 0);
  EXPECT_TRUE(logged(*g, "after gzip decoding"));
  auto g2 = load("interval = \"1s\"\ntargets = [\"" + t.addr() + "\"]\nbody_size_limit = \"1MiB\"");
  b = g2->collect(1'000'000);
  EXPECT_EQ(value(*b, "up"), 1);
  EXPECT_EQ(value(*b, "app_temperature_celsius"), 21.5);

  // OpenMetrics by Content-Type.
  t.gzip_it = false;
  t.content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8";
  t.set(data("basic.om"));
  b = g2->collect(1'001'000);
  EXPECT_EQ(value(*b, "up"), 1);
  EXPECT_EQ(value(*b, "app_requests_total", "code", "200"), 10);
  ASSERT_NE(b->meta("app_requests"), nullptr);
  EXPECT_EQ(b->meta("app_temperature_celsius")->unit, "celsius");
  // Text parsed as OpenMetrics (no # EOF) fails clearly.
  t.set(data("basic.prom"));
  b = g2->collect(1'002'000);
  EXPECT_EQ(value(*b, "up"), 0);
  EXPECT_TRUE(logged(*g2, "invalid OpenMetrics body"));
}

TEST(Scrape, SlowTargetDoesNotDelayOthers) {
  FakeTarget fast, slow, dead_port_holder;
  fast.set("a 1\n");
  slow.set("b 1\n");
  slow.delay_ms = 1500;
  uint16_t closed = peer::free_port();  // nothing listens there
  auto h = load("interval = \"2s\"\nscrape_timeout = \"700ms\"\ntargets = [\"" + fast.addr() + "\", \"" +
                slow.addr() + "\", \"127.0.0.1:" + std::to_string(closed) + "\"]");
  ASSERT_TRUE(h);
  auto t0 = std::chrono::steady_clock::now();
  auto b = h->collect(1'000'000);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_TRUE(b.ok());
  EXPECT_LT(secs, 2.0);
  EXPECT_EQ(value(*b, "up", "instance", fast.addr()), 1);
  EXPECT_EQ(value(*b, "up", "instance", slow.addr()), 0);
  EXPECT_EQ(value(*b, "up", "instance", "127.0.0.1:" + std::to_string(closed)), 0);
  EXPECT_EQ(value(*b, "a"), 1);
  EXPECT_TRUE(logged(*h, "timeout after 700ms"));
  EXPECT_TRUE(logged(*h, "connecting"));
}

TEST(Scrape, FileDiscoveryJsonAndTomlWithStalenessForVanishedTargets) {
  FakeTarget a, b;
  a.set("from_a 1\n");
  b.set("from_b 2\n");
  std::string dir = peer::temp_dir("moni-scrape-sd-");
  auto write = [&](const std::string& name, std::string body) {
    for (auto [from, to] : {std::pair{std::string("@A@"), a.addr()}, {std::string("@B@"), b.addr()}})
      for (size_t p; (p = body.find(from)) != std::string::npos;) body.replace(p, from.size(), to);
    std::ofstream(dir + "/" + name + ".tmp") << body;
    std::filesystem::rename(dir + "/" + name + ".tmp", dir + "/" + name);
  };
  write("targets.json", data("targets.json"));
  auto h = load("interval = \"1s\"\njob = \"sd\"\nfile_sd = [\"" + dir + "/*.json\", \"" + dir + "/*.toml\"]");
  ASSERT_TRUE(h);
  auto r = h->collect(1'000'000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(value(*r, "from_a"), 1);
  EXPECT_EQ(r->one("from_a")->label("env"), "prod");
  EXPECT_EQ(a.last_path, "/a");
  EXPECT_EQ(value(*r, "from_b"), 2);
  EXPECT_EQ(r->one("from_b")->label("job"), "sd");
  EXPECT_EQ(value(h->self_metrics(), "moni_scrape_targets"), 2);
  // b vanishes from the file: its series and synthetic series go stale.
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  write("targets.json", "[{\"targets\": [\"" + a.addr() + "\"], \"labels\": {\"env\": \"prod\", \"__metrics_path__\": \"/a\"}}]");
  r = h->collect(1'001'000);
  ASSERT_TRUE(r.ok());
  auto fb = r->find("from_b");
  ASSERT_EQ(fb.size(), 1u);
  EXPECT_TRUE(moni::is_stale_nan(fb[0].value));
  auto upb = r->find("up", "instance", b.addr());
  ASSERT_EQ(upb.size(), 1u);
  EXPECT_TRUE(moni::is_stale_nan(upb[0].value));
  // A TOML file adds a target; a broken file is reported and ignored.
  write("more.toml", data("targets.toml"));
  write("broken.json", "[{\"targets\": 5}]");
  r = h->collect(1'002'000);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->find("from_a").size(), 2u);  // env=prod and env=toml
  EXPECT_TRUE(logged(*h, "\"targets\" must be an array of strings"));
  std::filesystem::remove_all(dir);
}

TEST(Scrape, MetricRelabelingAndPerTargetInterval) {
  FakeTarget t, slow_interval;
  t.set(data("basic.prom"));
  slow_interval.set("every_other 1\n");
  auto h = load("interval = \"1s\"\ntargets = [\"" + t.addr() +
                "\"]\n[[static_configs]]\ntargets = [\"" + slow_interval.addr() +
                "\"]\nscrape_interval = \"2s\"\n"
                "[[metric_relabel_configs]]\nsource_labels = [\"__name__\"]\nregex = \"app_(requests|info).*\"\naction = \"drop\"\n"
                "[[metric_relabel_configs]]\nsource_labels = [\"__name__\"]\nregex = \"(.*)_celsius\"\ntarget_label = \"unit\"\nreplacement = \"C\"\n");
  ASSERT_TRUE(h);
  auto b = h->collect(1'000'000);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->find("app_requests_total").size(), 0u);
  EXPECT_EQ(b->one("app_temperature_celsius")->label("unit"), "C");
  EXPECT_EQ(value(*b, "scrape_samples_scraped", "instance", t.addr()), 5);
  EXPECT_EQ(value(*b, "scrape_samples_post_metric_relabeling", "instance", t.addr()), 2);
  EXPECT_EQ(slow_interval.hits.load(), 1);
  ASSERT_TRUE(h->collect(1'001'000).ok());
  EXPECT_EQ(slow_interval.hits.load(), 1);  // not due yet
  ASSERT_TRUE(h->collect(1'002'000).ok());
  EXPECT_EQ(slow_interval.hits.load(), 2);
  EXPECT_EQ(t.hits.load(), 3);
}

TEST(Scrape, BasicAuthAndConfigErrors) {
  FakeTarget t;
  t.set("a 1\n");
  auto h = load("interval = \"1s\"\ntargets = [\"" + t.addr() + "\"]\nbasic_auth = { username = \"u\", password = \"p@ss\" }");
  ASSERT_TRUE(h->collect(1'000'000).ok());
  EXPECT_EQ(t.last_auth, "Basic dTpwQHNz");
  auto bad = PluginHarness::load(moni::testing::plugin_path("scrape"),
                                 "interval = \"5s\"\nscrape_timeout = \"10s\"\ntargets = [\"a:b\", \"x:1/y\"]\nscheme = \"ftp\"\nbogus = 1");
  ASSERT_FALSE(bad.ok());
  const auto& m = bad.error().message;
  EXPECT_NE(m.find("scrape_timeout (10s) must not exceed the interval (5s)"), std::string::npos) << m;
  EXPECT_NE(m.find("\"a:b\" has an invalid port"), std::string::npos) << m;
  EXPECT_NE(m.find("\"x:1/y\" is not host:port"), std::string::npos) << m;
  EXPECT_NE(m.find("scheme must be one of"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown option 'bogus'"), std::string::npos) << m;
  auto none = PluginHarness::load(moni::testing::plugin_path("scrape"), "");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no targets"), std::string::npos);
}

namespace {
// Samples in a body fetched with Prometheus's Accept header.
size_t count_served(uint16_t port, const std::string& path) {
  auto r = peer::http_get(port, path,
                          {{"Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"}});
  EXPECT_EQ(r.status, 200) << r.error;
  moni::text::Parser p;
  moni::text::ParseOptions o;
  o.format = moni::text::format_from_content_type(r.header("content-type"));
  auto pr = p.parse(r.body, o);
  EXPECT_TRUE(pr.ok()) << (pr.ok() ? "" : pr.error().message);
  return pr.ok() ? pr->samples : 0;
}
}  // namespace

TEST(Scrape, RealNodeExporter) {
  std::string dir = peer::temp_dir("moni-scrape-ne-");
  uint16_t port = peer::free_port();
  peer::Process ne({"/usr/bin/prometheus-node-exporter", "--web.listen-address=127.0.0.1:" + std::to_string(port),
                    "--collector.disable-defaults", "--collector.loadavg", "--collector.meminfo",
                    "--collector.uname", "--collector.stat", "--collector.cpu", "--collector.filesystem",
                    "--web.disable-exporter-metrics"},
                   dir + "/ne.log");
  ASSERT_TRUE(peer::wait_until([&] { return peer::http_get(port, "/metrics").status == 200; },
                               std::chrono::seconds(10)));
  auto h = load("interval = \"5s\"\njob = \"node\"\ntargets = [\"127.0.0.1:" + std::to_string(port) + "\"]");
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  auto b = h->collect(now);
  size_t served = count_served(port, "/metrics");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(value(*b, "up"), 1);
  EXPECT_GT(served, 50u);
  EXPECT_EQ(value(*b, "scrape_samples_scraped"), static_cast<double>(served));
  EXPECT_EQ(b->samples.size(), served + 5);
  EXPECT_NE(b->one("node_load1"), nullptr);
  EXPECT_EQ(b->one("node_load1")->label("job"), "node");
  std::filesystem::remove_all(dir);
}

TEST(Scrape, RealPrometheusSelfMetrics) {
  std::string dir = peer::temp_dir("moni-scrape-prom-");
  uint16_t port = peer::free_port();
  std::ofstream(dir + "/p.yml") << "global:\n  scrape_interval: 1h\n";
  peer::Process prom({"/usr/bin/prometheus", "--config.file=" + dir + "/p.yml", "--storage.tsdb.path=" + dir + "/data",
                      "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                     dir + "/prom.log");
  ASSERT_TRUE(peer::wait_until([&] { return peer::http_get(port, "/-/ready").status == 200; },
                               std::chrono::seconds(30)));
  // Warm up the handler's own series, then scrape and count.
  count_served(port, "/metrics");
  auto h = load("interval = \"5s\"\njob = \"prometheus\"\ntargets = [\"127.0.0.1:" + std::to_string(port) + "\"]");
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  auto b = h->collect(now);
  size_t served = count_served(port, "/metrics");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(value(*b, "up"), 1);
  EXPECT_GT(served, 300u);
  EXPECT_EQ(value(*b, "scrape_samples_scraped"), static_cast<double>(served));
  EXPECT_NE(b->meta("prometheus_build_info"), nullptr);
  std::filesystem::remove_all(dir);
}

// Parsing and emitting on several threads (host ABI >= 1.2): each target's
// samples of one cycle arrive as one complete batch, labelled with that
// target only, whatever the order the responses came in; on a 1.1 host the
// same batches come from one thread.
namespace {
std::string target_body(int k, int series) {
  std::string b = "# HELP load_value A value per target.\n# TYPE load_value gauge\n";
  for (int i = 0; i < series; ++i)
    b += "load_value{series=\"" + std::to_string(i) + "\"} " + std::to_string(k * 100000 + i) +
         "\n";
  return b;
}

void expect_one_batch_per_target(const std::vector<OwnedBatch>& batches,
                                 std::vector<std::unique_ptr<FakeTarget>>& targets, int series) {
  ASSERT_EQ(batches.size(), targets.size());
  std::set<std::string> seen;
  for (const auto& b : batches) {
    ASSERT_FALSE(b.samples.empty());
    std::string inst = b.samples[0].label("instance");
    EXPECT_TRUE(seen.insert(inst).second) << inst << " in two batches";
    size_t k = 0;
    while (k < targets.size() && targets[k]->addr() != inst) ++k;
    ASSERT_LT(k, targets.size()) << "unknown instance " << inst;
    // Every series of the target plus its 5 synthetic ones, nobody else's.
    EXPECT_EQ(b.samples.size(), static_cast<size_t>(series) + 5) << inst;
    for (const auto& s : b.samples) EXPECT_EQ(s.label("instance"), inst) << s.name();
    auto loads = b.find("load_value");
    ASSERT_EQ(loads.size(), static_cast<size_t>(series)) << inst;
    for (const auto& s : loads)
      EXPECT_EQ(s.value, static_cast<double>(k) * 100000 + std::stod(s.label("series"))) << inst;
    EXPECT_EQ(b.one("up")->value, 1) << inst;
    EXPECT_EQ(b.one("scrape_samples_scraped")->value, series) << inst;
    ASSERT_NE(b.meta("load_value"), nullptr) << inst;
  }
}
}  // namespace

TEST(ScrapeConcurrency, EachTargetIsOneCompleteBatchFromSeveralThreads) {
  constexpr int kTargets = 6, kSeries = 3000;
  std::vector<std::unique_ptr<FakeTarget>> targets;
  std::string list;
  for (int k = 0; k < kTargets; ++k) {
    targets.push_back(std::make_unique<FakeTarget>());
    targets.back()->set(target_body(k, kSeries));
    targets.back()->delay_ms = (k % 3) * 20;  // responses arrive out of order
    list += (k ? ", \"" : "\"") + targets.back()->addr() + "\"";
  }
  auto h = load("interval = \"1s\"\nparse_workers = 3\ntargets = [" + list + "]");
  ASSERT_TRUE(h);
  size_t most_threads = 0;
  for (int cycle = 0; cycle < 3; ++cycle) {
    auto b = h->collect_batches(1'000'000 + cycle * 1000);
    ASSERT_TRUE(b.ok()) << b.error().message;
    expect_one_batch_per_target(*b, targets, kSeries);
    EXPECT_LE(h->last_emit_threads(), 3u) << "more threads than parse_workers";
    most_threads = std::max(most_threads, h->last_emit_threads());
  }
  // One worker could in theory take every response of a cycle; not of three.
  EXPECT_GE(most_threads, 2u) << "every target was parsed on one thread";
  // Again: nothing went stale, every series was seen before.
  auto b = h->collect(1'003'000);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(stale_count(*b), 0u);
  for (const auto& s : b->find("scrape_series_added")) EXPECT_EQ(s.value, 0) << s.label("instance");
}

TEST(ScrapeConcurrency, AnOlderHostGetsTheSameBatchesFromOneThread) {
  constexpr int kTargets = 4, kSeries = 500;
  std::vector<std::unique_ptr<FakeTarget>> targets;
  std::string list;
  for (int k = 0; k < kTargets; ++k) {
    targets.push_back(std::make_unique<FakeTarget>());
    targets.back()->set(target_body(k, kSeries));
    list += (k ? ", \"" : "\"") + targets.back()->addr() + "\"";
  }
  auto h = load("interval = \"1s\"\nparse_workers = 4\ntargets = [" + list + "]");
  ASSERT_TRUE(h);
  h->set_host_abi_minor(1);
  auto b = h->collect_batches(1'000'000);
  ASSERT_TRUE(b.ok()) << b.error().message;
  expect_one_batch_per_target(*b, targets, kSeries);
  EXPECT_EQ(h->last_emit_threads(), 1u);
  h->set_host_abi_minor(MONI_ABI_MINOR);
  b = h->collect_batches(1'001'000);
  ASSERT_TRUE(b.ok()) << b.error().message;
  expect_one_batch_per_target(*b, targets, kSeries);
}

TEST(ScrapeConcurrency, ParseWorkersMustNotBeNegative) {
  auto h = PluginHarness::load(moni::testing::plugin_path("scrape"),
                               "targets = [\"127.0.0.1:1\"]\nparse_workers = -1", "agents");
  ASSERT_FALSE(h.ok());
  EXPECT_NE(h.error().message.find("parse_workers"), std::string::npos) << h.error().message;
}
