// Reading small kernel files (procfs, sysfs) and directories into reused
// buffers, so that a warm collection allocates nothing.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <string_view>
#include <vector>

namespace moni::node {

/// Reads a whole file with as few read() calls as it takes (one for almost
/// every procfs file) into a buffer kept across calls.
/// Thread-safety: none; one per sub-collector.
class FileReader {
 public:
  FileReader();
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;
  /// The file's contents, valid until the next read; false with errno set
  /// when it cannot be opened or read. With `keep_open` the descriptor is
  /// kept and later reads pread() from offset 0, which makes procfs/sysfs
  /// regenerate the content without a path walk; only for kernel files
  /// that are never replaced (a replaced file would keep being read from
  /// the old inode; a removed kernfs node fails and is reopened).
  bool read(const std::string& path, std::string_view& out, bool keep_open = false);
  /// The first line of the file without surrounding whitespace.
  bool read_line(const std::string& path, std::string_view& out, bool keep_open = false);
  /// The file's first line parsed as an unsigned/floating number.
  bool read_u64(const std::string& path, uint64_t& out, bool keep_open = false);
  /// The descriptor kept open for `path` by an earlier read, or -1.
  int kept_fd(const std::string& path) const;
  /// Closes the kept descriptors not read since the previous sweep: files
  /// of objects that went away (a container's veth) are not read again, so
  /// a caller reading a changing set of files sweeps once per cycle.
  void sweep();
  size_t kept_count() const { return kept_.size(); }
  /// For files the kernel hands over whole in one read() when the buffer
  /// has room (single_open seq_files such as /proc/net/netstat, sysfs
  /// attributes, regular files): a read shorter than asked ends the file,
  /// which saves the read() returning 0. Iterated seq_files (/proc/vmstat,
  /// /proc/diskstats) come a page at a time and must not set this.
  void set_whole_reads(bool on) { whole_ = on; }

 private:
  bool read_fd(int fd, std::string_view& out);
  struct Kept {
    int fd;
    bool used;
  };
  std::vector<char> buf_;
  std::unordered_map<std::string, Kept> kept_;
  bool whole_ = false;
};

/// A file read once per collection cycle and shared by the sub-collectors
/// that parse it (cpu and stat both read <procfs>/stat, whose generation
/// is not cheap). Thread-safety: none; the plugin's collect() is serial.
class CycleFile {
 public:
  explicit CycleFile(std::string path) : path_(std::move(path)) {}
  const std::string& path() const { return path_; }
  /// Starts a cycle: the next read() reads the file again.
  void new_cycle() { state_ = State::Stale; }
  /// The content of this cycle's read; false with errno set when it failed.
  bool read(std::string_view& out);

 private:
  enum class State { Stale, Ok, Failed };
  std::string path_;
  FileReader reader_;
  std::string_view text_;
  State state_ = State::Stale;
  int errno_ = 0;
};

/// Lists a directory with getdents64 into a reused buffer (no opendir()
/// allocation per call). Thread-safety: none.
class DirLister {
 public:
  DirLister() = default;
  ~DirLister();
  DirLister(const DirLister&) = delete;
  DirLister& operator=(const DirLister&) = delete;
  /// Calls `fn(name)` for each entry except "." and ".."; false with errno
  /// set when the directory cannot be read. With `keep_open` the directory
  /// stays open and is re-read from the start (lseek 0) next time, which
  /// saves the path walk; for one fixed path per lister (sysfs directories).
  template <class F>
  bool list(const std::string& path, F&& fn, bool keep_open = false) {
    if (!fill(path, keep_open)) return false;
    for (size_t i = 0; i < used_; ++i) fn(std::string_view(names_[i]));
    return true;
  }
  /// The directory kept open by the last list(..., true), or -1: lookups
  /// relative to it (openat, faccessat) skip the walk from the root.
  int fd() const { return kept_fd_; }

 private:
  bool fill(const std::string& path, bool keep_open);
  bool fill_fd(int fd);
  int kept_fd_ = -1;
  std::string kept_path_;
  std::vector<char> buf_;
  std::vector<std::string> names_;  // strings keep their capacity across calls
  size_t used_ = 0;
};

/// The link count of the directory open as `fd`: 2 + its subdirectories on
/// sysfs, procfs, tmpfs, ext4 and xfs, so a changed count says that a
/// subdirectory came or went (a CPU, a cpufreq policy) without reading the
/// directory. 0 when unknown (`fd` < 0, fstat failed) or when the
/// filesystem does not count subdirectories (btrfs reports 1): callers then
/// list the directory every time.
unsigned long dir_links(int fd);

/// Appends `parts` to `out` after assigning `root` (a reused path buffer).
inline const std::string& join(std::string& out, std::string_view root, std::string_view rel) {
  out.assign(root);
  if (!out.empty() && out.back() == '/' && !rel.empty() && rel.front() == '/') out.pop_back();
  else if (!out.empty() && out.back() != '/' && !rel.empty() && rel.front() != '/') out += '/';
  out.append(rel);
  return out;
}

}  // namespace moni::node
