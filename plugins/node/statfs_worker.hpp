// statfs(2) on a helper thread with a deadline, so that one hung mount (a
// dead NFS server, a FUSE daemon that stopped answering) cannot stall the
// node collector.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <sys/vfs.h>

namespace moni::node {

/// Thread-safety: stat() is called from one thread at a time.
class StatfsWorker {
 public:
  enum class Outcome { Ok, Error, TimedOut };
  StatfsWorker();
  ~StatfsWorker();
  StatfsWorker(const StatfsWorker&) = delete;
  StatfsWorker& operator=(const StatfsWorker&) = delete;

  /// statfs(path). On TimedOut the call is still blocked in the kernel: its
  /// thread is abandoned (it exits when the call returns) and `path` stays
  /// in stuck() until then; a fresh thread serves the next call.
  Outcome stat(const std::string& path, std::chrono::milliseconds timeout, struct statfs& out,
               int& err);
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
