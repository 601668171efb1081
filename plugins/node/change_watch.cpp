#include "change_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>

namespace moni::node {
namespace {

constexpr uint32_t kFileEvents =
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF;
constexpr uint32_t kDirEvents =
    kFileEvents | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR;
// Events after which a watch is gone or events were lost: arm again.
constexpr uint32_t kRearm = IN_IGNORED | IN_Q_OVERFLOW | IN_UNMOUNT | IN_DELETE_SELF | IN_MOVE_SELF;

std::string dir_of(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

ChangeWatch::~ChangeWatch() { close_fd(); }

void ChangeWatch::close_fd() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

void ChangeWatch::rearm() { close_fd(); }

bool ChangeWatch::arm() {
  fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return false;
  for (const auto& f : files_) {
    // The directory must be watchable, or a file created there later would
    // go unseen; the file itself (through links) need not exist yet.
    if (::inotify_add_watch(fd_, dir_of(f).c_str(), kDirEvents) < 0) return false;
    if (::inotify_add_watch(fd_, f.c_str(), kFileEvents) < 0 && errno != ENOENT) return false;
    char real[PATH_MAX];
    if (::realpath(f.c_str(), real) && f != real &&
        ::inotify_add_watch(fd_, dir_of(real).c_str(), kDirEvents) < 0)
      return false;
  }
  return true;
}

bool ChangeWatch::quiet() {
  if (failed_) return false;
  if (fd_ < 0) {
    if (!arm()) {
      close_fd();
      failed_ = true;
    }
    return false;
  }
  alignas(inotify_event) char buf[4096];
  bool any = false, again = false;
  for (;;) {
    ssize_t n = ::read(fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {  // an error: set the watches up again next time
      again = true;
      break;
    }
    any = true;
    for (ssize_t off = 0; off + static_cast<ssize_t>(sizeof(inotify_event)) <= n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      if (ev->mask & kRearm) again = true;
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
  }
  if (again) close_fd();
  return !any && !again;
}

}  // namespace moni::node
