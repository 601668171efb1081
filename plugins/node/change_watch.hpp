// Whether files may have changed, from inotify: a warm cycle costs one
// read() that finds no event instead of a stat() path walk per file.
#pragma once

#include <string>
#include <vector>

namespace moni::node {

/// Watches files (through symlinks) and the directories that hold them (and
/// their link targets): writes, attribute changes, files created, removed or
/// renamed there. Any event, a lost queue, or a watch that could not be set
/// up means "may have changed": the caller then checks as it would without
/// the watch (stat), so the watch only ever saves work.
/// Thread-safety: none.
class ChangeWatch {
 public:
  explicit ChangeWatch(std::vector<std::string> files) : files_(std::move(files)) {}
  ~ChangeWatch();
  ChangeWatch(const ChangeWatch&) = delete;
  ChangeWatch& operator=(const ChangeWatch&) = delete;
  /// True when nothing happened to the files since the last call. The first
  /// call (and the one after a re-arm) is false: changes are only known
  /// from the time the watches are in place.
  bool quiet();
  /// Sets the watches up again at the next quiet() (call after a file was
  /// replaced or a link retargeted: the watched inodes are other ones now).
  void rearm();

 private:
  bool arm();
  void close_fd();
  std::vector<std::string> files_;
  int fd_ = -1;
  bool failed_ = false;  // inotify unavailable (limits, no directory): always "may have changed"
};

}  // namespace moni::node
