#include "cgroup_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace moni_cgroup {
namespace {

// Directory structure only: IN_MODIFY, IN_ACCESS and the like on a directory
// are events on its children and would flag every child dentry as "parent
// watched", costing each read of a kept-open file a parent lookup.
constexpr uint32_t kDirMask =
    IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR | IN_DONT_FOLLOW;
constexpr uint32_t kFileMask = IN_MODIFY | IN_DONT_FOLLOW;

}  // namespace

CgroupWatch::CgroupWatch(size_t max_watches) : max_(max_watches) {
  if (max_ > 0) fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
}

CgroupWatch::~CgroupWatch() {
  if (fd_ >= 0) ::close(fd_);
}

int CgroupWatch::add_dir(const char* path) { return add(path, kDirMask); }
int CgroupWatch::add_file(const char* path) { return add(path, kFileMask); }

int CgroupWatch::add(const char* path, uint32_t mask) {
  if (fd_ < 0 || watches_ >= max_) return -1;
  int wd = ::inotify_add_watch(fd_, path, mask);
  if (wd < 0) return -1;
  ++watches_;
  return wd;
}

void CgroupWatch::remove(int wd) {
  if (fd_ < 0 || wd < 0) return;
  // A watch holds its inode: a removed cgroup's stays allocated until the
  // watch goes, so forgotten cgroups always drop theirs. EINVAL: the kernel
  // dropped it already (its IN_IGNORED is still queued).
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
      std::memcpy(&ev, buf_.data() + off, sizeof ev);
      off += sizeof ev + ev.len;
      if (ev.mask & IN_Q_OVERFLOW) {
        complete = false;
      } else if (ev.mask & IN_IGNORED) {
        out.push_back({ev.wd, Change::kGone});
      } else if (ev.mask & IN_ISDIR) {
        if (ev.mask & (IN_CREATE | IN_MOVED_TO)) out.push_back({ev.wd, Change::kSubdirAdded});
        if (ev.mask & (IN_DELETE | IN_MOVED_FROM)) out.push_back({ev.wd, Change::kSubdirRemoved});
      } else if (ev.mask & (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO)) {
        // Only on test trees: cgroupfs files come and go with the kernel.
        out.push_back({ev.wd, Change::kFileReplaced});
      } else if (ev.mask & IN_MODIFY) {
        out.push_back({ev.wd, Change::kFileWritten});
      }
    }
    if (size_t(n) < buf_.size() / 2) break;  // drained: spare the EAGAIN read
  }
  return complete;
}

}  // namespace moni_cgroup
