// CgroupWatch: inotify watches on cgroup directories, so that limits are
// re-read when a limit file is written and a leaf cgroup is listed again when
// a subdirectory appears in it, instead of polling both every few collections.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace moni_cgroup {

/// One inotify instance; no watch is added once `max_watches` are held, and
/// every add() fails when inotify is unavailable (the caller then polls).
/// Thread-safety: none; used by the collecting thread only.
class CgroupWatch {
 public:
  enum class Change : uint8_t {
    kFileWritten,    // a file other than a kernel event file was written or replaced
    kSubdirAdded,    // a subdirectory appeared
    kSubdirRemoved,  // a subdirectory was removed or renamed away
    kGone,           // the watch ended (its directory is gone, or remove())
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
  /// inotify, budget spent, or the directory is already watched under
  /// another descriptor's owner: the caller keeps polling it).
  int add(const char* path);
  /// Stops a watch (its cgroup is forgotten; the directory may still exist).
  void remove(int wd);
  /// The kernel dropped watch `wd` (a kGone event for a watch not removed).
  void dropped();

  /// Reads the events queued since the last call without blocking into
  /// `out` (reused). Returns false when the kernel's queue overflowed and
  /// events were lost: every watched directory must then be treated as
  /// changed.
  bool drain(std::vector<Event>& out);

  bool enabled() const { return fd_ >= 0; }
  size_t watches() const { return watches_; }

 private:
  int fd_ = -1;
  size_t max_ = 0, watches_ = 0;
  std::string buf_;
};

}  // namespace moni_cgroup
