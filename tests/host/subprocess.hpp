// Test helpers: run the real moni binary as a child process, talk HTTP to
// it without curl, and make temporary directories.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace moni::test {

/// A temporary directory (mode 0755), removed on destruction.
struct TempDir {
  TempDir();
  ~TempDir();
  std::string path;
  std::string file(const std::string& name) const { return path + "/" + name; }
  void write(const std::string& name, const std::string& text) const;
};

std::string read_file(const std::string& path);

struct RunResult {
  int exit_code = -1;
  std::string out, err;
};

/// Runs a command to completion (argv[0] is a path).
RunResult run(const std::vector<std::string>& argv,
              const std::map<std::string, std::string>& env = {});

/// A child process with stdout/stderr captured to files.
class Child {
 public:
  Child(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {});
  ~Child();
  void signal(int sig);
  /// Waits up to `timeout_ms`; the exit code, or -1 on timeout (child killed).
  int wait(int timeout_ms);
  std::string err() const;
  /// Waits until stderr contains `text` (true) or the timeout passes.
  bool wait_for_log(const std::string& text, int timeout_ms) const;
  /// The port from the "listening on ADDR:PORT" log line (0 when absent).
  int port(int timeout_ms = 10000) const;
  int pid() const { return pid_; }

 private:
  TempDir dir_;
  int pid_ = -1;
  bool exited_ = false;
};

struct HttpReply {
  int status = 0;
  std::string headers, body;
};
/// GET over a plain TCP socket to 127.0.0.1:port.
HttpReply http_get(int port, const std::string& path, const std::string& extra_headers = "");

/// The value of the series whose exposition line starts with `series`
/// (e.g. `moni_collector_runs_total{instance_name="a",plugin="p"}`); -1 if absent.
double metric(const std::string& text, const std::string& series);

}  // namespace moni::test
