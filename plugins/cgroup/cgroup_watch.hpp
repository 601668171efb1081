// CgroupWatch: inotify watches on cgroup directories and limit files, so that
// limits are re-read when written and an unchanged cgroup tree is not listed
// again, instead of polling both every few collections.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moni_cgroup {

/// One inotify instance; no watch is added once `max_watches` are held, and
/// every add fails when inotify is unavailable (the caller then polls).
/// Directories are watched for subdirectories made, removed or renamed only
/// (no event "on a child": a watch asking for those would make every read
/// of every file in the directory pay for a parent lookup in the kernel);
/// files are watched for writes.
/// Thread-safety: none; used by the collecting thread only.
class CgroupWatch {
 public:
  enum class Change : uint8_t {
    kFileWritten,    // a watched file was written
    kFileReplaced,   // a file was made, removed or renamed in a watched directory
    kSubdirAdded,    // a subdirectory appeared
    kSubdirRemoved,  // a subdirectory was removed or renamed away
    kGone,           // the watch ended (its inode is gone, or remove())
  };
  struct Event {
    int wd;
    Change change;
  };

  explicit CgroupWatch(size_t max_watches);
  ~CgroupWatch();
  CgroupWatch(const CgroupWatch&) = delete;
  CgroupWatch& operator=(const CgroupWatch&) = delete;

  /// Watches directory `path`; returns its watch descriptor, or -1 (no
  /// inotify, budget spent, no such directory).
  int add_dir(const char* path);
  /// Watches file `path` for writes; -1 as add_dir (a file the cgroup does
  /// not have is simply not watched).
  int add_file(const char* path);
  /// Stops a watch (its cgroup is forgotten; the inode may still exist).
  void remove(int wd);
  /// The kernel dropped watch `wd` (a kGone event for a watch not removed).
  void dropped();

  /// Reads the events queued since the last call without blocking into
  /// `out` (reused). Returns false when the kernel's queue overflowed and
  /// events were lost: everything watched must then be treated as changed.
  bool drain(std::vector<Event>& out);

  bool enabled() const { return fd_ >= 0; }
  size_t watches() const { return watches_; }

 private:
  int add(const char* path, uint32_t mask);

  int fd_ = -1;
  size_t max_ = 0, watches_ = 0;
  std::string buf_;
};

}  // namespace moni_cgroup
