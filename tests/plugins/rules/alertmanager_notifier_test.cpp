// Notifier: the v2 API body, and delivery to a real prometheus-alertmanager
// 0.25 on loopback (alerts appear, resolve, survive an Alertmanager outage).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "alertmanager_peer.hpp"
#include "notifier.hpp"
#include "prometheus_peer.hpp"
#include "url_query.hpp"

namespace moni::rules {
namespace {

using test_support::AlertmanagerPeer;
using test_support::find_alert;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

OutgoingAlert make_alert(const std::string& name, int64_t starts, int64_t ends, Labels extra = {}) {
  OutgoingAlert a;
  a.labels = {{"alertname", name}, {"instance", "host-1:9100"}, {"severity", "page"}};
  for (auto& l : extra) a.labels.push_back(l);
  std::sort(a.labels.begin(), a.labels.end());
  a.annotations = {{"description", "value is 42"}, {"summary", name + " on host-1:9100"}};
  a.starts_at_ms = starts;
  a.ends_at_ms = ends;
  a.generator_url = generator_url("http://moni.test:9095", "up == 0");
  return a;
}

double metric(const Notifier& n, std::string_view name, std::string_view am = {}) {
  Batch b;
  n.self_metrics(b);
  const moni_batch& v = b.view();
  for (size_t i = 0; i < v.sample_count; ++i) {
    const auto& s = v.samples[i];
    if (find_label(s.labels, s.label_count, "__name__") != name) continue;
    if (!am.empty() && find_label(s.labels, s.label_count, "alertmanager") != am) continue;
    return s.value;
  }
  return -1;
}

template <class F>
bool eventually(F f, int ms) {
  for (int i = 0; i < ms / 20; ++i) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return f();
}

TEST(AlertmanagerNotifierFormat, Rfc3339AndGeneratorUrl) {
  EXPECT_EQ(format_rfc3339(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(format_rfc3339(1764095400123), "2025-11-25T18:30:00.123Z");
  EXPECT_EQ(generator_url("http://h:9095/", "rate(x[5m]) > 0.5"),
            "http://h:9095/graph?g0.expr=rate%28x%5B5m%5D%29+%3E+0.5&g0.tab=1");
  AlertmanagerOptions am;
  am.url = "http://127.0.0.1:9093/";
  EXPECT_EQ(alerts_endpoint(am), "http://127.0.0.1:9093/api/v2/alerts");
  am.path_prefix = "/am/";
  EXPECT_EQ(alerts_endpoint(am), "http://127.0.0.1:9093/am/api/v2/alerts");
}

TEST(AlertmanagerNotifierFormat, PostableAlertsBody) {
  OutgoingAlert a = make_alert("HostDown", 1764095400000, 0);
  a.annotations.push_back({"bad", std::string("\xff\xfe", 2)});  // not UTF-8: replaced
  auto j = nlohmann::json::parse(encode_alerts(std::vector<OutgoingAlert>{a}));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["labels"]["alertname"], "HostDown");
  EXPECT_EQ(j[0]["labels"]["severity"], "page");
  EXPECT_EQ(j[0]["annotations"]["summary"], "HostDown on host-1:9100");
  EXPECT_EQ(j[0]["startsAt"], "2025-11-25T18:30:00.000Z");
  EXPECT_FALSE(j[0].contains("endsAt"));  // zero: left to Alertmanager
  EXPECT_EQ(j[0]["generatorURL"], "http://moni.test:9095/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
}

// Nothing listens on a port freed a moment ago: every request fails to
// connect, so the queue fills up.
TEST(AlertmanagerNotifierQueue, FullQueueDropsOldest) {
  NotifierOptions o;
  AlertmanagerOptions am;
  am.url = "http://127.0.0.1:" + std::to_string(promql::test_support::free_port());
  o.alertmanagers.push_back(am);
  o.queue_capacity = 3;
  o.batch_size = 1;
  o.flush_timeout_ms = 200;
  auto n = Notifier::create(o);
  ASSERT_TRUE(n) << n.error().message;
  std::vector<OutgoingAlert> alerts;
  for (int i = 0; i < 5; ++i) alerts.push_back(make_alert("A" + std::to_string(i), now_ms(), 0));
  (*n)->send(alerts);
  EXPECT_LE((*n)->queue_length(), 3u);
  EXPECT_GE(metric(**n, "moni_rules_notifications_dropped_total"), 2);
  EXPECT_EQ(metric(**n, "moni_rules_notifications_queue_capacity"), 3);
  EXPECT_TRUE(eventually(
      [&] {
        return metric(**n, "moni_rules_notifications_errors_total", alerts_endpoint(am)) >= 1;
      },
      3000));
  auto t0 = std::chrono::steady_clock::now();
  (*n)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(metric(**n, "moni_rules_notifications_sent_total", alerts_endpoint(am)), 0);
  // Everything not delivered is counted once: 5 sent in, none out.
  EXPECT_EQ(metric(**n, "moni_rules_notifications_dropped_total"), 5);
}

// A one-shot HTTP server on loopback that records the request it gets.
struct RecordingServer {
  int fd = -1, port = 0;
  std::string request;
  std::thread thread;
  explicit RecordingServer(int status) {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 4) != 0) return;
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread = std::thread([this, status] {
      int c = accept(fd, nullptr, nullptr);
      if (c < 0) return;
      char buf[8192];
      for (;;) {  // headers, then Content-Length bytes of body
        ssize_t n = read(c, buf, sizeof buf);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
        size_t end = request.find("\r\n\r\n");
        if (end == std::string::npos) continue;
        size_t cl = request.find("Content-Length: ");
        size_t want = cl == std::string::npos ? 0 : std::stoul(request.substr(cl + 16));
        if (request.size() >= end + 4 + want) break;
      }
      std::string resp = "HTTP/1.1 " + std::to_string(status) +
                         " X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
      (void)!write(c, resp.data(), resp.size());
      close(c);
    });
  }
  ~RecordingServer() {
    shutdown(fd, SHUT_RDWR);
    if (thread.joinable()) thread.join();
    close(fd);
  }
};

TEST(AlertmanagerNotifierRequest, PathPrefixBasicAuthFromFileAndJsonBody) {
  RecordingServer srv(200);
  ASSERT_GT(srv.port, 0);
  char tmpl[] = "/tmp/moni-rules-pass-XXXXXX";
  int pf = mkstemp(tmpl);
  ASSERT_GE(pf, 0);
  std::string secret = "s3cr3t\n";  // the trailing newline is not part of it
  ASSERT_EQ(write(pf, secret.data(), secret.size()), static_cast<ssize_t>(secret.size()));
  close(pf);
  NotifierOptions o;
  AlertmanagerOptions am;
  am.url = "http://127.0.0.1:" + std::to_string(srv.port);
  am.path_prefix = "/alertmanager";
  am.username = "moni";
  am.password_file = tmpl;
  o.alertmanagers.push_back(am);
  auto n = Notifier::create(o);
  ASSERT_TRUE(n) << n.error().message;
  (*n)->send({make_alert("MoniTestAuth", 1764095400000, 1764095700000)});
  ASSERT_TRUE(eventually(
      [&] { return metric(**n, "moni_rules_notifications_sent_total", alerts_endpoint(am)) == 1; },
      5000));
  (*n)->stop();
  unlink(tmpl);
  const std::string& req = srv.request;
  EXPECT_EQ(req.rfind("POST /alertmanager/api/v2/alerts HTTP/1.1\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("Authorization: Basic bW9uaTpzM2NyM3Q=\r\n"), std::string::npos) << req;
  EXPECT_NE(req.find("Content-Type: application/json\r\n"), std::string::npos) << req;
  auto body = nlohmann::json::parse(req.substr(req.find("\r\n\r\n") + 4), nullptr, false);
  ASSERT_TRUE(body.is_array()) << req;
  ASSERT_EQ(body.size(), 1u);
  EXPECT_EQ(body[0]["labels"]["alertname"], "MoniTestAuth");
  EXPECT_EQ(body[0]["startsAt"], "2025-11-25T18:30:00.000Z");
  EXPECT_EQ(body[0]["endsAt"], "2025-11-25T18:35:00.000Z");
}

class AlertmanagerNotifierLive : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!AlertmanagerPeer::available())
      GTEST_SKIP() << AlertmanagerPeer::kBinary
                   << " missing (apt-get install prometheus-alertmanager)";
  }
  static NotifierOptions options(std::initializer_list<std::string> urls) {
    NotifierOptions o;
    for (const auto& u : urls) {
      AlertmanagerOptions am;
      am.url = u;
      am.timeout_ms = 2000;
      o.alertmanagers.push_back(am);
    }
    o.max_backoff_ms = 300;
    return o;
  }
};

TEST_F(AlertmanagerNotifierLive, SentAlertsAppearWithLabelsAndAnnotations) {
  AlertmanagerPeer peer;
  ASSERT_TRUE(peer.start()) << peer.error();
  auto n = Notifier::create(options({peer.url()}));
  ASSERT_TRUE(n) << n.error().message;
  int64_t t = now_ms();
  (*n)->send({make_alert("MoniTestHostDown", t - 60000, t + 300000),
              make_alert("MoniTestDiskFull", t - 1000, t + 300000, {{"mountpoint", "/data"}})});
  auto alerts = peer.wait_alerts([](const auto& a) { return a.size() >= 2; }, 10);
  ASSERT_EQ(alerts.size(), 2u) << alerts.dump();
  auto down = find_alert(alerts, "MoniTestHostDown");
  ASSERT_FALSE(down.is_null());
  EXPECT_EQ(down["labels"], (nlohmann::json{{"alertname", "MoniTestHostDown"},
                                            {"instance", "host-1:9100"},
                                            {"severity", "page"}}));
  EXPECT_EQ(down["annotations"]["summary"], "MoniTestHostDown on host-1:9100");
  EXPECT_EQ(down["annotations"]["description"], "value is 42");
  EXPECT_EQ(down["generatorURL"], "http://moni.test:9095/graph?g0.expr=up+%3D%3D+0&g0.tab=1");
  EXPECT_EQ(down["status"]["state"], "active");
  EXPECT_EQ(down["startsAt"].get<std::string>().substr(0, 19),
            format_rfc3339(t - 60000).substr(0, 19));
  auto disk = find_alert(alerts, "MoniTestDiskFull");
  ASSERT_FALSE(disk.is_null());
  EXPECT_EQ(disk["labels"]["mountpoint"], "/data");
  std::string ep = peer.url() + "/api/v2/alerts";
  // Alertmanager lists the alerts before the notifier has read its answer;
  // the queue empties once the delivery is counted.
  EXPECT_TRUE(eventually([&] { return (*n)->queue_length() == 0; }, 10000));
  EXPECT_EQ(metric(**n, "moni_rules_notifications_sent_total", ep), 2);
  EXPECT_EQ(metric(**n, "moni_rules_notifications_errors_total", ep), 0);
  EXPECT_GE(metric(**n, "moni_rules_notification_latency_seconds_count", ep), 1);
  EXPECT_EQ(metric(**n, "moni_rules_notifications_queue_length"), 0);
  (*n)->stop();
  EXPECT_EQ(metric(**n, "moni_rules_notifications_dropped_total"), 0);
}

TEST_F(AlertmanagerNotifierLive, BatchesOfAtMost64Alerts) {
  AlertmanagerPeer peer;
  ASSERT_TRUE(peer.start()) << peer.error();
  auto n = Notifier::create(options({peer.url()}));
  ASSERT_TRUE(n) << n.error().message;
  std::string ep = peer.url() + "/api/v2/alerts";
  int64_t t = now_ms();
  std::vector<OutgoingAlert> many;
  for (int i = 0; i < 150; ++i)
    many.push_back(make_alert("MoniTestMany", t, t + 300000, {{"shard", std::to_string(i)}}));
  (*n)->send(std::move(many));
  ASSERT_TRUE(eventually(
      [&] { return metric(**n, "moni_rules_notifications_sent_total", ep) == 150; }, 10000));
  EXPECT_EQ(metric(**n, "moni_rules_notification_latency_seconds_count", ep), 3);  // 64+64+22
  auto alerts = peer.wait_alerts([](const auto& a) { return a.size() == 150; }, 10);
  EXPECT_EQ(alerts.size(), 150u);
}

TEST_F(AlertmanagerNotifierLive, EndsAtInThePastResolves) {
  AlertmanagerPeer peer;
  ASSERT_TRUE(peer.start()) << peer.error();
  auto n = Notifier::create(options({peer.url()}));
  ASSERT_TRUE(n) << n.error().message;
  int64_t t = now_ms();
  (*n)->send({make_alert("MoniTestResolves", t - 60000, t + 300000),
              make_alert("MoniTestStays", t - 60000, t + 300000)});
  auto alerts = peer.wait_alerts([](const auto& a) { return a.size() == 2; }, 10);
  ASSERT_EQ(alerts.size(), 2u) << alerts.dump();
  // Resolution: the same labels with endsAt in the past.
  (*n)->send({make_alert("MoniTestResolves", t - 60000, now_ms() - 1000)});
  alerts = peer.wait_alerts(
      [](const auto& a) { return find_alert(a, "MoniTestResolves").is_null(); }, 10);
  EXPECT_TRUE(find_alert(alerts, "MoniTestResolves").is_null()) << alerts.dump();
  EXPECT_FALSE(find_alert(alerts, "MoniTestStays").is_null()) << alerts.dump();
}

TEST_F(AlertmanagerNotifierLive, RetriesDeliverOnceAlertmanagerIsUp) {
  AlertmanagerPeer peer;  // port chosen, not started yet
  auto n = Notifier::create(options({peer.url()}));
  ASSERT_TRUE(n) << n.error().message;
  std::string ep = peer.url() + "/api/v2/alerts";
  int64_t t = now_ms();
  (*n)->send({make_alert("MoniTestLate", t, t + 300000)});
  ASSERT_TRUE(eventually(
      [&] { return metric(**n, "moni_rules_notifications_errors_total", ep) >= 2; }, 5000))
      << "no retries while Alertmanager is down";
  EXPECT_EQ((*n)->queue_length(), 1u);
  ASSERT_TRUE(peer.start()) << peer.error();
  auto alerts =
      peer.wait_alerts([](const auto& a) { return !find_alert(a, "MoniTestLate").is_null(); }, 10);
  EXPECT_FALSE(find_alert(alerts, "MoniTestLate").is_null()) << alerts.dump();
  // The delivery is counted, then the queue emptied (one lock apart).
  EXPECT_TRUE(eventually([&] { return (*n)->queue_length() == 0; }, 10000));
  EXPECT_EQ(metric(**n, "moni_rules_notifications_sent_total", ep), 1);
  EXPECT_EQ(metric(**n, "moni_rules_notifications_dropped_total"), 0);
}

TEST_F(AlertmanagerNotifierLive, NewerAlertsSupersedeAFailingBatch) {
  AlertmanagerPeer peer;  // down at first
  auto n = Notifier::create(options({peer.url()}));
  ASSERT_TRUE(n) << n.error().message;
  std::string ep = peer.url() + "/api/v2/alerts";
  int64_t t = now_ms();
  (*n)->send({make_alert("MoniTestOld", t, t + 300000)});
  ASSERT_TRUE(eventually(
      [&] { return metric(**n, "moni_rules_notifications_errors_total", ep) >= 1; }, 5000));
  (*n)->send({make_alert("MoniTestNew", t, t + 300000)});
  EXPECT_TRUE(
      eventually([&] { return metric(**n, "moni_rules_notifications_dropped_total") == 1; }, 3000));
  ASSERT_TRUE(peer.start()) << peer.error();
  auto alerts =
      peer.wait_alerts([](const auto& a) { return !find_alert(a, "MoniTestNew").is_null(); }, 10);
  EXPECT_FALSE(find_alert(alerts, "MoniTestNew").is_null()) << alerts.dump();
  EXPECT_TRUE(find_alert(alerts, "MoniTestOld").is_null()) << alerts.dump();
}

// A listening socket that never accepts: connections complete in the
// kernel, requests hang until the client's timeout.
struct HangingListener {
  int fd = -1, port = 0;
  HangingListener() {
    fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || listen(fd, 16) != 0) return;
    socklen_t len = sizeof a;
    getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~HangingListener() { close(fd); }
};

TEST_F(AlertmanagerNotifierLive, EveryAlertmanagerGetsTheAlertsAndAHangingOneDelaysNone) {
  AlertmanagerPeer a, b;
  ASSERT_TRUE(a.start()) << a.error();
  ASSERT_TRUE(b.start()) << b.error();
  HangingListener hang;
  ASSERT_GT(hang.port, 0);
  std::string stuck = "http://127.0.0.1:" + std::to_string(hang.port);
  auto o = options({stuck, a.url(), b.url()});
  o.alertmanagers[0].timeout_ms = 5000;
  auto n = Notifier::create(o);
  ASSERT_TRUE(n) << n.error().message;
  int64_t t = now_ms();
  auto t0 = std::chrono::steady_clock::now();
  (*n)->send({make_alert("MoniTestEverywhere", t, t + 300000)});
  auto has = [](const auto& al) { return !find_alert(al, "MoniTestEverywhere").is_null(); };
  EXPECT_TRUE(has(a.wait_alerts(has, 5)));
  EXPECT_TRUE(has(b.wait_alerts(has, 5)));
  // Both well before the stuck one's 5 s timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  EXPECT_EQ(metric(**n, "moni_rules_notifications_errors_total", stuck + "/api/v2/alerts"), 0);
  // stop() aborts the hanging request after its flush time, not after 5 s.
  auto t1 = std::chrono::steady_clock::now();
  (*n)->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t1, std::chrono::milliseconds(3500));
  EXPECT_EQ(metric(**n, "moni_rules_notifications_dropped_total"), 1);  // the stuck one's
}

TEST_F(AlertmanagerNotifierLive, RejectedAlertsAreNotRetried) {
  AlertmanagerPeer peer;
  ASSERT_TRUE(peer.start()) << peer.error();
  auto n = Notifier::create(options({peer.url()}));
  ASSERT_TRUE(n) << n.error().message;
  std::string ep = peer.url() + "/api/v2/alerts";
  OutgoingAlert bad;  // no labels: Alertmanager answers 400
  bad.starts_at_ms = now_ms();
  (*n)->send({bad});
  ASSERT_TRUE(
      eventually([&] { return metric(**n, "moni_rules_notifications_dropped_total") == 1; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(metric(**n, "moni_rules_notifications_errors_total", ep), 1);
  EXPECT_EQ(metric(**n, "moni_rules_notifications_sent_total", ep), 0);
}

}  // namespace
}  // namespace moni::rules
