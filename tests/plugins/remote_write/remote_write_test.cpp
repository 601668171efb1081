// remote_write against a fake receiver: wire format and headers, relabeling,
// 4xx/429/5xx handling, slow and resetting receivers, the queue cap, and the
// queue surviving a restart.
#include <bit>
#include <chrono>
#include <fstream>
#include <map>
#include <set>

#include "rw_test_util.hpp"

using namespace rwtest;
using moni::testing::PluginHarness;

namespace {

std::string label_string(const prometheus::TimeSeries& ts) {
  std::string s;
  for (const auto& l : ts.labels()) s += l.name() + "=" + l.value() + ",";
  return s;
}

// (series, timestamp) -> how many accepted requests carried it.
std::map<std::pair<std::string, int64_t>, int> accepted_points(const FakeReceiver& r) {
  std::map<std::pair<std::string, int64_t>, int> out;
  for (const auto& req : r.accepted())
    for (const auto& ts : req.write.timeseries())
      for (const auto& s : ts.samples()) out[{label_string(ts), s.timestamp()}]++;
  return out;
}

int64_t ms_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t)
      .count();
}

}  // namespace

TEST(RemoteWriteConfig, ReportsEveryErrorWithItsKey) {
  TempDir dir;
  auto h = PluginHarness::load(moni::testing::plugin_path("remote_write"),
                               "[[endpoints]]\nurl = \"ftp://x\"\nmin_shards = 5\nmax_shards = 2\n"
                               "bogus = 1\n[[endpoints.write_relabel_configs]]\naction = \"keep\"\n"
                               "regex = \"(\"\n",
                               "rw", dir.path);
  ASSERT_FALSE(h.ok());
  const std::string& m = h.error().message;
  EXPECT_NE(m.find("must start with http:// or https://"), std::string::npos) << m;
  EXPECT_NE(m.find("min_shards (5) must be <= max_shards (2)"), std::string::npos) << m;
  EXPECT_NE(m.find("unknown option 'endpoints[0].bogus'"), std::string::npos) << m;
  EXPECT_NE(m.find("source_labels must not be empty"), std::string::npos) << m;
  EXPECT_NE(m.find("is invalid"), std::string::npos) << m;

  auto none = PluginHarness::load(moni::testing::plugin_path("remote_write"), "", "rw", dir.path);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("missing required option 'endpoints'"), std::string::npos);
}

TEST(RemoteWrite, SendsSpecCompliantSnappyProtobufWithLabelsAndAuth) {
  TempDir dir;
  FakeReceiver rx;
  auto h =
      load("external_labels = { cluster = \"c1\", region = \"r1\" }\n" +
               endpoint(rx.url(),
                        "headers = { \"X-Scope-OrgID\" = \"tenant-1\" }\n"
                        "basic_auth = { username = \"moni\", password = \"s3cret\" }\n"
                        "[[endpoints.write_relabel_configs]]\n"
                        "source_labels = [\"__name__\"]\nregex = \"drop_me.*\"\naction = \"drop\"\n"
                        "[[endpoints.write_relabel_configs]]\n"
                        "source_labels = [\"job\"]\nregex = \"(.*)-svc\"\n"
                        "target_label = \"service\"\nreplacement = \"$1\"\n"
                        "[[endpoints.write_relabel_configs]]\n"
                        "regex = \"secret|region\"\naction = \"labeldrop\"\n"),
           dir.path);
  ASSERT_TRUE(h);
  int64_t t0 = now_ms() - 5000;
  moni::Batch b;
  b.describe("m1", moni::MetricType::Gauge, "A test gauge.");
  b.add("m1", {{"job", "api-svc"}, {"secret", "x"}}, 1.5, t0);
  b.add("m1", {{"job", "api-svc"}, {"secret", "x"}}, 2.5, t0 + 1000);
  b.add("drop_me_total", {{"job", "api-svc"}}, 3, t0);
  b.add("m2", {{"cluster", "own"}}, moni::stale_nan(), t0);
  ASSERT_TRUE(h->write(b).ok());
  ASSERT_TRUE(h->flush().ok());
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_sent_total") == 3; }, 10000));
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_relabel_dropped_total"), 1);
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_pending"), 0);

  std::map<std::string, std::vector<std::pair<int64_t, double>>> got;
  bool saw_metadata = false;
  for (const auto& r : rx.requests()) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.target, "/api/v1/write");
    EXPECT_EQ(r.headers.at("content-encoding"), "snappy");
    EXPECT_EQ(r.headers.at("content-type"), "application/x-protobuf");
    EXPECT_EQ(r.headers.at("x-prometheus-remote-write-version"), "0.1.0");
    EXPECT_TRUE(r.headers.at("user-agent").starts_with("moni-remote-write/"));
    EXPECT_EQ(r.headers.at("authorization"), "Basic bW9uaTpzM2NyZXQ=");
    EXPECT_EQ(r.headers.at("x-scope-orgid"), "tenant-1");
    ASSERT_TRUE(r.decoded) << "body is not snappy-compressed prometheus.WriteRequest";
    for (const auto& ts : r.write.timeseries()) {
      for (int i = 1; i < ts.labels_size(); ++i)
        EXPECT_LT(ts.labels(i - 1).name(), ts.labels(i).name()) << "labels must be sorted";
      for (const auto& s : ts.samples())
        got[label_string(ts)].push_back({s.timestamp(), s.value()});
    }
    for (const auto& md : r.write.metadata())
      if (md.metric_family_name() == "m1") {
        saw_metadata = true;
        EXPECT_EQ(md.type(), prometheus::MetricMetadata::GAUGE);
        EXPECT_EQ(md.help(), "A test gauge.");
      }
  }
  EXPECT_TRUE(saw_metadata);
  ASSERT_EQ(got.size(), 2u);
  auto m1 = got["__name__=m1,cluster=c1,job=api-svc,service=api,"];
  ASSERT_EQ(m1.size(), 2u);
  EXPECT_EQ(m1[0], std::make_pair(t0, 1.5));
  EXPECT_EQ(m1[1], std::make_pair(t0 + 1000, 2.5));
  auto m2 = got["__name__=m2,cluster=own,"];  // own label wins over the external one
  ASSERT_EQ(m2.size(), 1u);
  EXPECT_EQ(std::bit_cast<uint64_t>(m2[0].second), MONI_STALE_NAN_BITS);
}

TEST(RemoteWrite, Http400IsDroppedCountedAndNotRetried) {
  TempDir dir;
  FakeReceiver rx;
  rx.set_policy([](const Request&, size_t) { return Answer{400}; });
  auto h = load(endpoint(rx.url(), "max_shards = 1\n"), dir.path);
  ASSERT_TRUE(h);
  moni::Batch b;
  for (int i = 0; i < 10; ++i) b.add("bad", {{"i", std::to_string(i)}}, i, now_ms());
  ASSERT_TRUE(h->write(b).ok());
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_failed_total") == 10; }, 10000));
  size_t n = rx.requests().size();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(rx.requests().size(), n) << "a 4xx must not be retried";
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_sent_total"), 0);
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_retried_total"), 0);
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_pending"), 0);
}

// A receiver answering with megabytes: a 200 is a success (the samples were
// resent forever when the oversized body failed the request), and a 400's
// body reaches the log cut to 1 KiB, control characters replaced.
TEST(RemoteWrite, HugeAnswerBodiesNeitherResendNorFloodTheLog) {
  TempDir dir;
  FakeReceiver rx;
  rx.set_policy([](const Request&, size_t i) {
    Answer a{i == 0 ? 200 : 400};
    a.body = std::string(3 << 20, i == 0 ? 'k' : '\n');
    (*a.body)[0] = 'E';
    return a;
  });
  auto h = load(endpoint(rx.url(), "max_shards = 1\n"), dir.path);
  ASSERT_TRUE(h);
  moni::Batch b;
  for (int i = 0; i < 10; ++i) b.add("big", {{"i", std::to_string(i)}}, i, now_ms());
  ASSERT_TRUE(h->write(b).ok());
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_sent_total") == 10; }, 10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(rx.requests().size(), 1u) << "a 200 must not be resent";
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_retried_total"), 0);
  moni::Batch b2;
  b2.add("big", {{"i", "x"}}, 1, now_ms());
  ASSERT_TRUE(h->write(b2).ok());
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_failed_total") == 1; }, 10000));
  bool seen = false;
  for (const auto& l : h->logs())
    if (l.find("rejected 1 samples with HTTP 400") != std::string::npos) {
      seen = true;
      EXPECT_LT(l.size(), 1400u) << "the 3 MB body is not logged whole";
      EXPECT_EQ(l.find('\n'), std::string::npos) << "no line breaks from the receiver";
    }
  EXPECT_TRUE(seen);
}

TEST(RemoteWrite, Retries429HonoringRetryAfterAnd500ThenDeliversOnce) {
  TempDir dir;
  FakeReceiver rx;
  rx.set_policy([](const Request&, size_t i) {
    if (i == 0) return Answer{429, "1"};
    if (i == 1) return Answer{500};
    return Answer{200};
  });
  auto h = load(endpoint(rx.url(), "max_shards = 1\n"), dir.path);
  ASSERT_TRUE(h);
  moni::Batch b;
  int64_t t = now_ms();
  for (int i = 0; i < 5; ++i) b.add("retry_me", {{"i", std::to_string(i)}}, i, t);
  ASSERT_TRUE(h->write(b).ok());
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_sent_total") == 5; }, 15000));
  auto arrivals = rx.arrivals();
  ASSERT_GE(arrivals.size(), 3u);
  EXPECT_GE(arrivals[1] - arrivals[0], 950) << "Retry-After: 1 must delay the retry by a second";
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_retried_total"), 10);
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_failed_total"), 0);
  auto pts = accepted_points(rx);
  EXPECT_EQ(pts.size(), 5u);
  for (auto& [k, n] : pts) EXPECT_EQ(n, 1) << k.first;
}

TEST(RemoteWrite, SlowAndResettingReceiverNeverBlocksWrite) {
  TempDir dir;
  FakeReceiver rx;
  rx.set_policy([](const Request&, size_t i) {
    if (i == 0) return Answer{200, "", 4000};
    if (i == 1 || i == 2) return Answer{200, "", 0, true};
    return Answer{200};
  });
  auto h = load(endpoint(rx.url(), "max_shards = 2\n"), dir.path);
  ASSERT_TRUE(h);
  int64_t worst = 0;
  size_t total = 0;
  int64_t t0 = now_ms() - 60000;
  for (int k = 0; k < 30; ++k) {
    moni::Batch b;
    for (int s = 0; s < 20; ++s) b.add("slow", {{"s", std::to_string(s)}}, k, t0 + k * 100);
    total += b.size();
    auto start = std::chrono::steady_clock::now();
    ASSERT_TRUE(h->write(b).ok());
    worst = std::max(worst, ms_since(start));
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
  }
  EXPECT_LT(worst, 2000) << "write() waited for the network";
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_pending") == 0; }, 20000));
  auto pts = accepted_points(rx);
  EXPECT_EQ(pts.size(), total);
  for (auto& [k, n] : pts) EXPECT_EQ(n, 1) << k.first << "@" << k.second;
  EXPECT_GT(metric(*h, "moni_remote_write_samples_retried_total"), 0);
}

TEST(RemoteWrite, QueueCapDropsOldestAndCounts) {
  TempDir dir;
  uint16_t dead = free_port();  // nobody listens: every send fails
  auto h = load(endpoint("http://127.0.0.1:" + std::to_string(dead) + "/api/v1/write",
                         "max_shards = 1\nqueue_max_size = \"64KiB\"\nsend_metadata = false\n"),
                dir.path);
  ASSERT_TRUE(h);
  int64_t t0 = now_ms() - 60000;
  const int batches = 40, per = 100;
  for (int k = 0; k < batches; ++k) {
    moni::Batch b;
    for (int s = 0; s < per; ++s)
      b.add("capped_metric_with_a_long_name", {{"series", "series-number-" + std::to_string(s)}}, k,
            t0 + k * 1000);
    ASSERT_TRUE(h->write(b).ok());
  }
  double dropped = metric(*h, "moni_remote_write_samples_dropped_total");
  double pending = metric(*h, "moni_remote_write_samples_pending");
  EXPECT_GT(dropped, 0);
  EXPECT_GT(pending, 0);
  EXPECT_EQ(dropped + pending, batches * per);
  EXPECT_LE(metric(*h, "moni_remote_write_queue_bytes"), 2 * 65536);
  h.reset();

  // The survivors are the newest samples.
  FakeReceiver rx;
  h = load(endpoint(rx.url(), "max_shards = 1\nqueue_max_size = \"64KiB\"\n"), dir.path);
  ASSERT_TRUE(h);
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_pending") == 0; }, 10000));
  auto pts = accepted_points(rx);
  EXPECT_EQ(pts.size(), static_cast<size_t>(pending));
  int64_t min_ts = INT64_MAX, max_ts = 0;
  for (auto& [k, n] : pts) {
    min_ts = std::min(min_ts, k.second);
    max_ts = std::max(max_ts, k.second);
  }
  EXPECT_EQ(max_ts, t0 + (batches - 1) * 1000);
  EXPECT_GT(min_ts, t0);
}

TEST(RemoteWrite, QueueSurvivesRestartWhileReceiverIsDown) {
  TempDir dir;
  uint16_t dead = free_port();
  auto h = load(endpoint("http://127.0.0.1:" + std::to_string(dead) + "/api/v1/write"), dir.path);
  ASSERT_TRUE(h);
  int64_t t0 = now_ms() - 60000;
  for (int k = 0; k < 3; ++k) {
    moni::Batch b;
    for (int s = 0; s < 100; ++s)
      b.add("persisted", {{"s", std::to_string(s)}}, s + k, t0 + k * 1000);
    ASSERT_TRUE(h->write(b).ok());
  }
  EXPECT_EQ(metric(*h, "moni_remote_write_samples_pending"), 300);
  h.reset();  // stop + destroy: a moni restart

  FakeReceiver rx;
  h = load(endpoint(rx.url()), dir.path);
  ASSERT_TRUE(h);
  EXPECT_GE(metric(*h, "moni_remote_write_samples_pending") +
                metric(*h, "moni_remote_write_samples_sent_total"),
            300);
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_sent_total") == 300; }, 10000));
  auto pts = accepted_points(rx);
  EXPECT_EQ(pts.size(), 300u);
  for (auto& [k, n] : pts) EXPECT_EQ(n, 1);
}

TEST(RemoteWrite, BearerTokenFileAndTlsSetupErrors) {
  TempDir dir;
  FakeReceiver rx;
  {
    std::ofstream f(dir.path + "/token");
    f << "tok-123\n";
  }
  auto h =
      load(endpoint(rx.url("/api/v1/push"), "bearer_token_file = \"" + dir.path + "/token\"\n"),
           dir.path);
  ASSERT_TRUE(h);
  moni::Batch b;
  b.add("bearer", {}, 1, now_ms());
  ASSERT_TRUE(h->write(b).ok());
  ASSERT_TRUE(
      wait_for([&] { return metric(*h, "moni_remote_write_samples_sent_total") == 1; }, 10000));
  auto reqs = rx.requests();
  ASSERT_FALSE(reqs.empty());
  EXPECT_EQ(reqs[0].target, "/api/v1/push");
  EXPECT_EQ(reqs[0].headers.at("authorization"), "Bearer tok-123");

  // https with an unreadable CA file fails at start with the file named.
  auto t =
      PluginHarness::load(moni::testing::plugin_path("remote_write"),
                          endpoint("https://127.0.0.1:1/api/v1/write",
                                   "tls = { ca_file = \"" + dir.path + "/missing-ca.pem\" }\n"),
                          "tls", dir.path);
  ASSERT_TRUE(t.ok()) << t.error().message;
  auto r = (*t)->start();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("TLS setup"), std::string::npos) << r.error().message;
}
