// Test-only: a real prometheus-alertmanager (Debian 0.25) on a free loopback
// port, clustering off, with a temporary storage dir and a null receiver.
#pragma once

#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>

namespace moni::rules::test_support {

/// Thread-safety: one thread.
class AlertmanagerPeer {
 public:
  static constexpr const char* kBinary = "/usr/bin/prometheus-alertmanager";
  static bool available();

  /// Chooses a free port (or uses `port`) and a temp dir; does not start.
  explicit AlertmanagerPeer(int port = 0);
  ~AlertmanagerPeer();
  AlertmanagerPeer(const AlertmanagerPeer&) = delete;
  AlertmanagerPeer& operator=(const AlertmanagerPeer&) = delete;

  /// Starts the process and waits until /-/ready answers; false (see
  /// error()) when it does not within 20 s.
  bool start();
  /// SIGTERM and wait, by PID.
  void stop();
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& error() const { return error_; }

  /// GET /api/v2/alerts (active alerts); null when the request fails.
  nlohmann::json alerts() const;
  /// Polls alerts() until `pred` holds or `seconds` pass; returns the last.
  template <class Pred>
  nlohmann::json wait_alerts(Pred pred, int seconds) const;

 private:
  std::string dir_;
  std::string error_;
  pid_t pid_ = -1;
  int port_ = 0;
};

bool sleep_poll_step();  // sleeps 100 ms; returns true

template <class Pred>
nlohmann::json AlertmanagerPeer::wait_alerts(Pred pred, int seconds) const {
  nlohmann::json last;
  for (int i = 0; i < seconds * 10; ++i) {
    last = alerts();
    if (last.is_array() && pred(last)) return last;
    sleep_poll_step();
  }
  return last;
}

/// The alert of `alerts` whose label alertname equals `name` (or null).
nlohmann::json find_alert(const nlohmann::json& alerts, const std::string& name);

}  // namespace moni::rules::test_support
