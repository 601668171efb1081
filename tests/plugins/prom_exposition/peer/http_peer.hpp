// Test peers for exposition/scrape tests: a blocking loopback HTTP client,
// a tiny threaded HTTP server, and helpers to run real programs
// (prometheus, promtool, node_exporter) as child processes stopped by PID.
// Boost.Beast lives only in http_peer.cpp.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <sys/types.h>

namespace moni::testpeer {

struct Request {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

struct Response {
  int status = 0;  // 0: connection failed
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string error;
  std::string header(const std::string& lower) const {
    auto it = headers.find(lower);
    return it == headers.end() ? std::string() : it->second;
  }
};

/// GET http://127.0.0.1:<port><target>. Never throws.
Response http_get(uint16_t port, const std::string& target,
                  const std::map<std::string, std::string>& headers = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(10));

/// Serves every request with `handler` on 127.0.0.1:<free port>, one thread
/// per connection, "Connection: close". Thread-safety: handler runs on
/// several threads at once.
class Server {
 public:
  using Handler = std::function<Response(const Request&)>;
  explicit Server(Handler handler);
  ~Server();
  uint16_t port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// A port that was free a moment ago on 127.0.0.1.
uint16_t free_port();

/// A running child process, killed (SIGTERM, then SIGKILL) and reaped on
/// destruction.
class Process {
 public:
  /// Starts argv[0] with args; stdout/stderr go to `log_file`.
  Process(const std::vector<std::string>& argv, const std::string& log_file);
  ~Process();
  pid_t pid() const { return pid_; }
  bool running();

 private:
  pid_t pid_ = -1;
};

/// Runs a program to completion with `stdin_data`; returns its exit code
/// (or -1) and its combined output.
int run(const std::vector<std::string>& argv, const std::string& stdin_data, std::string* output);

/// Polls `cond` every 100 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& cond, std::chrono::milliseconds timeout);

/// A fresh temporary directory (removed by the caller if wanted).
std::string temp_dir(const std::string& prefix);

}  // namespace moni::testpeer
