// Reading small kernel files (procfs, sysfs) and directories into reused
// buffers, so that a warm collection allocates nothing.
#pragma once

#include <cstdint>
#include <string>
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

 private:
  bool read_fd(int fd, std::string_view& out);
  struct Kept {
    std::string path;
    int fd;
  };
  std::vector<char> buf_;
  std::vector<Kept> kept_;
};

/// Lists a directory with getdents64 into a reused buffer (no opendir()
/// allocation per call). Thread-safety: none.
class DirLister {
 public:
  /// Calls `fn(name)` for each entry except "." and ".."; false with errno
  /// set when the directory cannot be read.
  template <class F>
  bool list(const std::string& path, F&& fn) {
    if (!fill(path)) return false;
    for (size_t i = 0; i < used_; ++i) fn(std::string_view(names_[i]));
    return true;
  }

 private:
  bool fill(const std::string& path);
  std::vector<char> buf_;
  std::vector<std::string> names_;  // strings keep their capacity across calls
  size_t used_ = 0;
};

/// Appends `parts` to `out` after assigning `root` (a reused path buffer).
inline const std::string& join(std::string& out, std::string_view root, std::string_view rel) {
  out.assign(root);
  if (!out.empty() && out.back() == '/' && !rel.empty() && rel.front() == '/') out.pop_back();
  else if (!out.empty() && out.back() != '/' && !rel.empty() && rel.front() != '/') out += '/';
  out.append(rel);
  return out;
}

}  // namespace moni::node
