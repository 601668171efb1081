// The database directory's exclusive lock (like Prometheus's TSDB lockfile):
// one process writes a database at a time. LMDB's own lock.mdb lets several
// writers in; our in-memory state (series ids, heads, WAL position) does not.
#pragma once

#include <memory>
#include <moni/result.hpp>
#include <string>

namespace moni::tsdb {

/// Holds flock(LOCK_EX) on `<dir>/LOCK` (the holder's pid written in it)
/// for its lifetime; the kernel drops it when the process dies, so a LOCK
/// file left by a killed process never blocks. Within one process a second
/// acquire by the same owner (a reloaded storage instance started before
/// the old one stops) shares the lock; another owner is refused.
/// Thread-safety: acquire and destruction may run on any thread.
class DirLock {
 public:
  /// Creates `dir` if missing and takes its lock for `owner` (the storage
  /// instance's name), or returns why not: "lmdb_tsdb: database directory
  /// DIR is in use by pid N (another moni run or import?); stop it first".
  [[nodiscard]] static Result<std::unique_ptr<DirLock>> acquire(const std::string& dir,
                                                                const std::string& owner);
  ~DirLock();
  DirLock(const DirLock&) = delete;
  DirLock& operator=(const DirLock&) = delete;

  /// The name of the lock file in a database directory.
  static constexpr const char* file_name = "LOCK";

  struct Held;  // one per locked directory in this process

 private:
  explicit DirLock(std::shared_ptr<Held> h) : held_(std::move(h)) {}
  std::shared_ptr<Held> held_;
};

}  // namespace moni::tsdb
