#include "notifier.hpp"

#include <time.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "http_client/http_client.hpp"

namespace moni::rules {

namespace {

using Clock = std::chrono::steady_clock;
using http_client::HttpClient;

nlohmann::json label_object(const Labels& labels) {
  nlohmann::json o = nlohmann::json::object();
  for (const auto& l : labels) o[l.name] = l.value;
  return o;
}

}  // namespace

std::string alerts_endpoint(const AlertmanagerOptions& am) {
  std::string base = am.url;
  while (!base.empty() && base.back() == '/') base.pop_back();
  std::string_view prefix = am.path_prefix;
  while (!prefix.empty() && prefix.front() == '/') prefix.remove_prefix(1);
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  if (!prefix.empty()) base += "/" + std::string(prefix);
  return base + "/api/v2/alerts";
}

std::string format_rfc3339(int64_t ms) {
  int64_t secs = ms / 1000, frac = ms % 1000;
  if (frac < 0) {
    frac += 1000;
    --secs;
  }
  time_t t = static_cast<time_t>(secs);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(frac));
  return buf;
}

std::string encode_alerts(std::span<const OutgoingAlert> alerts) {
  nlohmann::json arr = nlohmann::json::array();
  for (const auto& a : alerts) {
    nlohmann::json o;
    o["labels"] = label_object(a.labels);
    o["annotations"] = label_object(a.annotations);
    if (a.starts_at_ms) o["startsAt"] = format_rfc3339(a.starts_at_ms);
    if (a.ends_at_ms) o["endsAt"] = format_rfc3339(a.ends_at_ms);
    if (!a.generator_url.empty()) o["generatorURL"] = a.generator_url;
    arr.push_back(std::move(o));
  }
  // Label values are not guaranteed UTF-8 (they come from scraped data):
  // replace invalid bytes instead of throwing on the delivery thread.
  return arr.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// ---- Notifier

struct Notifier::Impl {
  struct Am {
    AlertmanagerOptions opt;
    std::string endpoint;  // the alertmanager label
    std::unique_ptr<HttpClient> client;
    std::thread thread;
    uint64_t cursor = 0;  // next sequence number to send; guarded by mu
    std::atomic<uint64_t> sent{0}, errors{0}, latency_count{0}, latency_us{0};
    bool failing = false;  // delivery thread only: log once per failure streak
  };

  NotifierOptions opt;
  LogFn warn;
  std::vector<std::unique_ptr<Am>> ams;

  mutable std::mutex mu;
  std::condition_variable cv;
  std::deque<OutgoingAlert> queue;  // sequence numbers head_seq .. head_seq+size-1
  uint64_t head_seq = 0;
  uint64_t dropped = 0;
  bool stopping = false;
  Clock::time_point flush_deadline{};
  size_t running = 0;
  bool joined = false;

  uint64_t end_seq() const { return head_seq + queue.size(); }

  // Forgets alerts every Alertmanager has been sent (or has given up on).
  void trim() {
    uint64_t min_cursor = UINT64_MAX;
    for (const auto& a : ams) min_cursor = std::min(min_cursor, a->cursor);
    while (!queue.empty() && head_seq < min_cursor) {
      queue.pop_front();
      ++head_seq;
    }
  }

  void log(const std::string& m) const {
    if (warn) warn(m);
  }

  http_client::HttpReply post(Am& am, const std::string& body) {
    http_client::Headers headers{{"Content-Type", "application/json"},
                                 {"User-Agent", "moni-rules"}};
    if (!am.opt.username.empty()) {
      std::string password = am.opt.password;
      if (!am.opt.password_file.empty()) {
        std::ifstream f(am.opt.password_file);
        std::stringstream ss;
        ss << f.rdbuf();
        password = ss.str();
        while (!password.empty() && (password.back() == '\n' || password.back() == '\r'))
          password.pop_back();
      }
      headers.emplace_back("Authorization", http_client::basic_auth(am.opt.username, password));
    }
    auto t0 = Clock::now();
    auto reply = am.client->post(body, headers);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0).count();
    am.latency_us += static_cast<uint64_t>(us);
    am.latency_count += 1;
    return reply;
  }

  void deliver(Am& am) {
    std::unique_lock lk(mu);
    for (;;) {
      cv.wait(lk, [&] { return stopping || am.cursor < end_seq(); });
      am.cursor = std::max(am.cursor, head_seq);  // overflow dropped what it had not sent
      if (am.cursor >= end_seq() || (stopping && Clock::now() >= flush_deadline)) break;
      size_t off = static_cast<size_t>(am.cursor - head_seq);
      size_t n = std::min(opt.batch_size, queue.size() - off);
      std::vector<OutgoingAlert> batch(queue.begin() + static_cast<ptrdiff_t>(off),
                                       queue.begin() + static_cast<ptrdiff_t>(off + n));
      const uint64_t batch_end = am.cursor + n;
      const uint64_t superseded_after = end_seq();  // alerts queued later replace this batch
      lk.unlock();

      std::string body = encode_alerts(batch);
      bool delivered = false;
      for (int attempt = 0;; ++attempt) {
        auto reply = post(am, body);
        if (reply.status >= 200 && reply.status < 300) {
          am.sent += n;
          delivered = true;
          if (am.failing) log("rules: alertmanager " + am.endpoint + " reachable again");
          am.failing = false;
          break;
        }
        am.errors += 1;
        std::string why =
            reply.status ? "HTTP " + std::to_string(reply.status) + ": " + reply.body.substr(0, 512)
                         : reply.error;
        if (!am.failing)
          log("rules: sending " + std::to_string(n) + " alert(s) to " + am.endpoint +
              " failed: " + why);
        am.failing = true;
        bool retryable = reply.status == 0 || reply.status == 429 || reply.status >= 500;
        if (!retryable) break;
        auto backoff = std::chrono::milliseconds(
            std::min<int64_t>(opt.max_backoff_ms, int64_t{100} << std::min(attempt, 16)));
        lk.lock();
        auto newer = [&] { return stopping || end_seq() > superseded_after; };
        bool give_up = cv.wait_for(lk, backoff, newer);
        lk.unlock();
        if (give_up) break;
      }
      lk.lock();
      if (!delivered) dropped += n;
      am.cursor = std::max(am.cursor, batch_end);
      trim();
    }
    --running;
    cv.notify_all();
  }
};

Notifier::Notifier() : impl_(std::make_unique<Impl>()) {}

Notifier::~Notifier() { stop(); }

Result<std::unique_ptr<Notifier>> Notifier::create(NotifierOptions options, LogFn warn) {
  std::unique_ptr<Notifier> n(new Notifier());
  Impl& im = *n->impl_;
  if (options.batch_size == 0) options.batch_size = 1;
  if (options.queue_capacity == 0) options.queue_capacity = 1;
  im.opt = std::move(options);
  im.warn = std::move(warn);
  for (const auto& o : im.opt.alertmanagers) {
    auto am = std::make_unique<Impl::Am>();
    am->opt = o;
    am->endpoint = alerts_endpoint(o);
    auto url = http_client::parse_url(am->endpoint);
    if (!url) return make_error("rules: alertmanager: " + url.error().message);
    http_client::TlsOptions tls{o.ca_file, o.cert_file, o.key_file, o.server_name,
                                o.insecure_skip_verify};
    http_client::ClientOptions co;
    co.timeout_ms = o.timeout_ms;
    co.keep_status_of_long_body = true;  // Alertmanager's 200 stays a 200
    auto client = HttpClient::create(*url, tls, co);
    if (!client)
      return make_error("rules: alertmanager " + am->endpoint + ": " + client.error().message);
    am->client = std::move(client.value());
    im.ams.push_back(std::move(am));
  }
  im.running = im.ams.size();
  for (auto& am : im.ams) {
    Impl::Am* p = am.get();
    am->thread = std::thread([&im, p] { im.deliver(*p); });
  }
  return n;
}

void Notifier::send(std::vector<OutgoingAlert> alerts) {
  Impl& im = *impl_;
  if (alerts.empty() || im.ams.empty()) return;
  {
    std::lock_guard lk(im.mu);
    if (im.stopping) {
      im.dropped += alerts.size();
      return;
    }
    for (auto& a : alerts) im.queue.push_back(std::move(a));
    while (im.queue.size() > im.opt.queue_capacity) {
      im.queue.pop_front();
      ++im.head_seq;
      ++im.dropped;
    }
  }
  im.cv.notify_all();
}

void Notifier::stop() {
  Impl& im = *impl_;
  std::unique_lock lk(im.mu);
  if (im.joined) return;
  if (!im.stopping) {
    im.stopping = true;
    im.flush_deadline = Clock::now() + std::chrono::milliseconds(im.opt.flush_timeout_ms);
  }
  im.cv.notify_all();
  if (!im.cv.wait_until(lk, im.flush_deadline, [&] { return im.running == 0; }))
    for (auto& am : im.ams) am->client->abort();  // requests in flight end now
  lk.unlock();
  for (auto& am : im.ams)
    if (am->thread.joinable()) am->thread.join();
  lk.lock();
  // What is still queued was never delivered to someone.
  im.dropped += im.queue.size();
  im.queue.clear();
  im.joined = true;
}

size_t Notifier::queue_length() const {
  std::lock_guard lk(impl_->mu);
  return impl_->queue.size();
}

void Notifier::self_metrics(Batch& out) const {
  const Impl& im = *impl_;
  uint64_t dropped;
  size_t qlen;
  {
    std::lock_guard lk(im.mu);
    dropped = im.dropped;
    qlen = im.queue.size();
  }
  out.describe("moni_rules_notifications_sent_total", MetricType::Counter,
               "Alerts delivered to an Alertmanager (2xx answers).");
  out.describe("moni_rules_notifications_errors_total", MetricType::Counter,
               "Failed requests to an Alertmanager (connection errors, timeouts, non-2xx).");
  out.describe("moni_rules_notification_latency_seconds", MetricType::Summary,
               "Time of requests to an Alertmanager.");
  for (const auto& am : im.ams) {
    LabelRef l[] = {{"alertmanager", am->endpoint}};
    out.add("moni_rules_notifications_sent_total", l, static_cast<double>(am->sent.load()));
    out.add("moni_rules_notifications_errors_total", l, static_cast<double>(am->errors.load()));
    out.add("moni_rules_notification_latency_seconds_sum", l,
            static_cast<double>(am->latency_us.load()) / 1e6);
    out.add("moni_rules_notification_latency_seconds_count", l,
            static_cast<double>(am->latency_count.load()));
  }
  out.describe("moni_rules_notifications_dropped_total", MetricType::Counter,
               "Alerts not delivered to some Alertmanager: queue overflow, superseded retries, "
               "4xx answers, or still queued at shutdown.");
  out.add("moni_rules_notifications_dropped_total", {}, static_cast<double>(dropped));
  out.describe("moni_rules_notifications_queue_length", MetricType::Gauge,
               "Alerts queued that some Alertmanager was not sent yet.");
  out.add("moni_rules_notifications_queue_length", {}, static_cast<double>(qlen));
  out.describe("moni_rules_notifications_queue_capacity", MetricType::Gauge,
               "Capacity of the alert queue.");
  out.add("moni_rules_notifications_queue_capacity", {},
          static_cast<double>(im.opt.queue_capacity));
}

}  // namespace moni::rules
