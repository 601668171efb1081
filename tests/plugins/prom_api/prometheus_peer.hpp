// Test-only: a real Prometheus 2.42 process on a free loopback port serving
// a TSDB backfilled with promtool, and a minimal HTTP/1.0 GET client.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace moni::promql::test_support {

struct HttpReply {
  int status = 0;
  std::string body;
};

/// GET http://127.0.0.1:<port><target> (HTTP/1.0, Connection: close).
HttpReply http_get(int port, const std::string& target);
/// Percent-encodes a query parameter value.
std::string url_encode(const std::string& s);
/// A free TCP port on 127.0.0.1.
int free_port();

/// Starts argv[0] with stdout and stderr to `log`; returns its pid.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log);
/// Runs argv to completion; returns its exit code and, in `out`, its stdout.
int run(const std::vector<std::string>& argv, std::string* out = nullptr);
/// Stops a process started by spawn() (SIGTERM, then waits).
void stop(pid_t pid);
/// Polls GET `target` until it answers 200 or `seconds` pass.
bool wait_http_ok(int port, const std::string& target, int seconds);

/// Thread-safety: one thread.
class PrometheusPeer {
 public:
  /// Backfills `openmetrics_file` into a temporary TSDB with promtool and
  /// starts Prometheus on it. ok() tells whether it is ready; error() why not.
  explicit PrometheusPeer(const std::string& openmetrics_file);
  /// Starts Prometheus on a TSDB directory already filled (by promtool),
  /// with extra command-line flags; the directory is the caller's.
  PrometheusPeer(const std::string& tsdb_dir, const std::vector<std::string>& extra_flags);
  ~PrometheusPeer();
  bool ok() const { return pid_ > 0 && error_.empty(); }
  const std::string& error() const { return error_; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }

 private:
  void start(const std::string& tsdb, const std::vector<std::string>& extra_flags);

  std::string dir_;
  std::string error_;
  pid_t pid_ = -1;
  int port_ = 0;
};

}  // namespace moni::promql::test_support
