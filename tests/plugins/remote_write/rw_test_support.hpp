// Test peers for remote_write: a programmable fake receiver (bad answers,
// slow answers, connection resets) that decodes every request with the
// protoc-generated prometheus.WriteRequest, and a real Prometheus started
// as a plain process on a free loopback port.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "remote.pb.h"

namespace rwtest {

int64_t now_ms();
uint16_t free_port();
/// GET http://127.0.0.1:port/target; {status, body}; status 0 on error.
std::pair<int, std::string> http_get(uint16_t port, const std::string& target);
/// Polls `pred` every 20 ms until true or `timeout_ms` passed.
bool wait_for(const std::function<bool()>& pred, int64_t timeout_ms);

struct Request {
  std::string method, target;
  std::map<std::string, std::string> headers;  // lower-cased names
  std::string raw_body;
  bool decoded = false;
  prometheus::WriteRequest write;
  size_t samples() const;
};

/// What the receiver does with one request.
struct Answer {
  Answer(int s = 200, std::string ra = {}, int delay = 0, bool rst = false)
      : status(s), retry_after(std::move(ra)), delay_ms(delay), reset(rst) {}
  int status = 200;
  std::string retry_after;
  int delay_ms = 0;                 // sleep before answering
  bool reset = false;               // close with RST instead of answering
  std::optional<std::string> body;  // the answer's body (default: a short text on errors)
};

/// Thread-safety: all methods are thread-safe.
class FakeReceiver {
 public:
  using Policy = std::function<Answer(const Request&, size_t index)>;
  FakeReceiver();
  ~FakeReceiver();
  uint16_t port() const { return port_; }
  std::string url(const std::string& path = "/api/v1/write") const;
  void set_policy(Policy p);
  std::vector<Request> requests() const;
  /// Requests answered 2xx, in arrival order.
  std::vector<Request> accepted() const;
  size_t accepted_samples() const;
  /// Arrival time (steady ms) of every request.
  std::vector<int64_t> arrivals() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

/// A real Prometheus with --web.enable-remote-write-receiver.
class Prometheus {
 public:
  Prometheus(std::string tsdb_dir, uint16_t port) : dir_(std::move(tsdb_dir)), port_(port) {}
  ~Prometheus() { stop(); }
  /// Starts and waits for /-/ready (false after `timeout_ms`).
  bool start(int64_t timeout_ms = 30000);
  /// SIGTERM by PID and wait (SIGKILL after 10 s).
  void stop();
  uint16_t port() const { return port_; }
  std::string write_url() const;
  /// /api/v1/query?query=<expr>&time=<t>; the JSON body.
  std::string query(const std::string& expr, int64_t time_ms) const;
  pid_t pid() const { return pid_; }
  /// YAML appended to the generated config (scrape_configs, remote_write...);
  /// replaces the default global section when it starts with "global:".
  void set_config(std::string yaml) { config_ = std::move(yaml); }

 private:
  std::string dir_;
  uint16_t port_;
  pid_t pid_ = -1;
  std::string config_ = "global:\n  scrape_interval: 1h\n";
};

std::string url_encode(const std::string& s);

}  // namespace rwtest
