// Notifier: delivers alerts to one or more Alertmanagers through the v2 API
// (POST <url><path_prefix>api/v2/alerts, a JSON array of postable alerts).
//
// How the rule engine uses it (see notifier_config.hpp for the options):
//   Config ctor:   NotifierOptions n = parse_notifier_options(reader);
//   start():       auto r = Notifier::create(n, [&ctx](std::string_view m) { ctx.warn(m); });
//                  (only when !n.alertmanagers.empty(); r fails on bad TLS files)
//   after a group: notifier->send(std::move(alerts));   // never blocks
//   self_metrics:  notifier->self_metrics(batch);
//   stop():        notifier->stop();                    // flushes briefly, joins
//   generatorURL:  generator_url(n.external_url, rule.expr)   (url_query.hpp)
// Transport: http, and https through the Debian OpenSSL (TLS options below).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <moni/batch.hpp>
#include <moni/result.hpp>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "rule_spec.hpp"

namespace moni::rules {

/// One Alertmanager to deliver to.
struct AlertmanagerOptions {
  std::string url;                // http(s)://host:port[/base]
  std::string path_prefix = "/";  // appended to url's path, before api/v2/alerts
  int64_t timeout_ms = 10000;     // per request
  std::string username;           // basic auth when not empty
  std::string password;           // or:
  std::string password_file;      // read at every request (rotation works)
  std::string ca_file, cert_file, key_file, server_name;  // https only
  bool insecure_skip_verify = false;
};

struct NotifierOptions {
  std::vector<AlertmanagerOptions> alertmanagers;
  size_t queue_capacity = 10000;    // like --alertmanager.notification-queue-capacity
  size_t batch_size = 64;           // max alerts per request, as Prometheus
  std::string external_url;         // base of generatorURL links, without trailing '/'
  int64_t flush_timeout_ms = 2000;  // how long stop() keeps delivering what is queued
  int64_t max_backoff_ms = 5000;    // retry backoff doubles from 100 ms up to this
};

/// The full URL alerts are posted to ("http://h:9093/api/v2/alerts").
std::string alerts_endpoint(const AlertmanagerOptions& am);

/// RFC 3339 UTC with milliseconds ("2026-11-25T18:30:00.123Z").
std::string format_rfc3339(int64_t ms);

/// The v2 API body for `alerts`; a zero starts_at/ends_at is left out
/// (Alertmanager then uses its own clock / resolve_timeout).
std::string encode_alerts(std::span<const OutgoingAlert> alerts);

/// Queues alerts and posts them, batch by batch, to every Alertmanager from
/// one background thread per Alertmanager (a down one delays no other).
/// A failed batch (connection error, timeout, 429, 5xx) is retried with
/// backoff until alerts sent after its first attempt supersede it; 4xx
/// answers are not retried. A full queue drops its oldest alerts.
/// Thread-safety: send(), self_metrics() and queue_length() from any thread;
/// stop() once, from one thread.
class Notifier {
 public:
  using LogFn = std::function<void(std::string_view)>;
  /// Starts the delivery threads. Fails on TLS setup errors (bad CA file...).
  static Result<std::unique_ptr<Notifier>> create(NotifierOptions options, LogFn warn = {});
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  /// Queues `alerts` for every Alertmanager; never blocks on the network.
  void send(std::vector<OutgoingAlert> alerts);
  /// Delivers what is queued for at most flush_timeout_ms, then aborts
  /// requests in flight and joins the threads. Idempotent.
  void stop();
  /// moni_rules_notifications_* and moni_rules_notification_latency_seconds.
  void self_metrics(Batch& out) const;
  /// Alerts some Alertmanager has not been sent yet.
  size_t queue_length() const;

 private:
  Notifier();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace moni::rules
