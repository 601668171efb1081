#include "cgroup_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

namespace moni_cgroup {
namespace {

// Files the kernel itself marks modified (cgroup_file_notify) when its
// counters move; their events say nothing about limits. Under memory
// pressure memory.events can fire 50 times a second.
bool kernel_event_file(std::string_view name) {
  static constexpr std::string_view kNames[] = {
      "cgroup.events",  "memory.events",     "memory.events.local", "memory.swap.events",
      "pids.events",    "pids.events.local", "misc.events",         "misc.events.local",
      "hugetlb.events", "cgroup.stat",
  };
  for (std::string_view n : kNames)
    if (name == n) return true;
  // hugetlb.<size>.events(.local)
  return name.substr(0, 8) == "hugetlb." &&
         (name.ends_with(".events") || name.ends_with(".events.local"));
}

// Writes and replacements of files, subdirectories made and removed. Reads,
// opens and closes are not asked for: the collector's own reads raise
// nothing.
constexpr uint32_t kMask =
    IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ONLYDIR | IN_DONT_FOLLOW;

}  // namespace

CgroupWatch::CgroupWatch(size_t max_watches) : max_(max_watches) {
  if (max_ > 0) fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

CgroupWatch::~CgroupWatch() {
  if (fd_ >= 0) ::close(fd_);
}

int CgroupWatch::add(const char* path) {
  if (fd_ < 0 || watches_ >= max_) return -1;
  int wd = ::inotify_add_watch(fd_, path, kMask);
  if (wd < 0) return -1;
  ++watches_;
  return wd;
}

void CgroupWatch::remove(int wd) {
  if (fd_ < 0 || wd < 0) return;
  // A watch holds its directory's inode: a removed cgroup's stays allocated
  // until the watch goes, so forgotten cgroups always drop theirs.
  // EINVAL: the kernel dropped it already (its IN_IGNORED is still queued).
  ::inotify_rm_watch(fd_, wd);
  if (watches_ > 0) --watches_;
}

void CgroupWatch::dropped() {
  if (watches_ > 0) --watches_;
}

bool CgroupWatch::drain(std::vector<Event>& out) {
  out.clear();
  if (fd_ < 0) return true;
  if (buf_.size() < 65536) buf_.resize(65536);
  bool complete = true;
  for (;;) {
    ssize_t n = ::read(fd_, buf_.data(), buf_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: the queue is empty
    for (size_t off = 0; off + sizeof(inotify_event) <= size_t(n);) {
      inotify_event ev;
      __builtin_memcpy(&ev, buf_.data() + off, sizeof ev);
      const char* name = buf_.data() + off + sizeof ev;
      off += sizeof ev + ev.len;
      if (ev.mask & IN_Q_OVERFLOW) {
        complete = false;
        continue;
      }
      if (ev.mask & IN_IGNORED) {
        // Dropped by the kernel (its directory went), or after remove().
        out.push_back({ev.wd, Change::kGone});
        continue;
      }
      if (ev.mask & IN_ISDIR) {
        if (ev.mask & (IN_CREATE | IN_MOVED_TO)) out.push_back({ev.wd, Change::kSubdirAdded});
        if (ev.mask & (IN_DELETE | IN_MOVED_FROM)) out.push_back({ev.wd, Change::kSubdirRemoved});
        continue;
      }
      if (ev.mask & (IN_DELETE | IN_MOVED_FROM)) {
        // A file went: only on test trees (cgroupfs files go with their
        // directory), and a limit file may have been among them.
        out.push_back({ev.wd, Change::kFileWritten});
        continue;
      }
      std::string_view nm(name, ev.len);
      nm = nm.substr(0, nm.find('\0'));
      if (!kernel_event_file(nm)) out.push_back({ev.wd, Change::kFileWritten});
    }
    if (size_t(n) < buf_.size() / 2) break;  // drained: spare the EAGAIN read
  }
  return complete;
}

}  // namespace moni_cgroup
