// statfs(2) on a helper thread with a deadline, so that one hung mount (a
// dead NFS server, a FUSE daemon that stopped answering) cannot stall the
// node collector. All mounts of a cycle go over in one hand-off.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>
#include <sys/vfs.h>

namespace moni::node {

/// Thread-safety: stat_all() is called from one thread at a time.
class StatfsWorker {
 public:
  enum class Outcome { Ok, Error, TimedOut };
  struct Job {
    std::string path;
    struct statfs st {};
    int err = 0;
    Outcome outcome = Outcome::Error;
  };
  StatfsWorker();
  ~StatfsWorker();
  StatfsWorker(const StatfsWorker&) = delete;
  StatfsWorker& operator=(const StatfsWorker&) = delete;

  /// statfs of jobs[0..n) in order. A path that takes longer than `timeout`
  /// is TimedOut: its thread is abandoned (it exits when the call returns),
  /// the path stays in stuck() until then, and a fresh thread takes the rest.
  void stat_all(std::vector<Job>& jobs, size_t n, std::chrono::milliseconds timeout);
  /// Whether a previous statfs of `path` timed out and has not returned yet.
  bool stuck(const std::string& path) const;

 private:
  struct Channel;
  struct Stuck;
  void spawn();
  std::shared_ptr<Channel> ch_;
  std::shared_ptr<Stuck> stuck_;
};

}  // namespace moni::node
