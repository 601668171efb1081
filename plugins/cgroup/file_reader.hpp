// FileReader: reads small pseudo-files (cgroupfs, procfs, sysfs) whole with
// one read() into a buffer reused across calls, plus the tiny parsers for the
// number formats those files use. Nothing here allocates once warm.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace moni_cgroup {

/// Thread-safety: none; one instance per collector, used by one thread.
class FileReader {
 public:
  /// Reads `path` (NUL-terminated) whole. The view stays valid until the next
  /// read(). Returns false when the file cannot be opened or read.
  bool read(const char* path, std::string_view& out) { return read_at(AT_FDCWD_, path, out); }
  /// Like read(), relative to the directory `dirfd` (saves the path walk).
  bool read_at(int dirfd, const char* name, std::string_view& out);
  /// Reads the open file `fd` whole from offset 0 (pread: a kept-open
  /// cgroupfs or procfs file regenerates its text on every read from 0).
  bool pread_all(int fd, std::string_view& out);

  static constexpr int AT_FDCWD_ = -100;  // AT_FDCWD without <fcntl.h> here

 private:
  std::string buf_;
};

/// Parses leading decimal digits of `s` (after blanks), accepting a trailing
/// newline or blank. "max" and other words fail.
bool parse_u64(std::string_view s, uint64_t& out);

/// The value of `key` in a text of "key value" lines (cpu.stat, memory.stat,
/// memory.events, memory.oom_control, cpuacct.stat).
bool find_key(std::string_view text, std::string_view key, uint64_t& out);

/// Calls f(line) for each non-empty line of `text`.
template <class F>
void for_each_line(std::string_view text, F&& f) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    if (nl > pos) f(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
}

/// Calls f(key, value) for each "key value" line of `text` whose value is a
/// number (memory.stat and the like), in one pass.
template <class F>
void for_each_key_value(std::string_view text, F&& f) {
  for_each_line(text, [&](std::string_view line) {
    size_t sp = line.find(' ');
    uint64_t v;
    if (sp != std::string_view::npos && parse_u64(line.substr(sp + 1), v)) f(line.substr(0, sp), v);
  });
}

/// Number of non-empty lines (cgroup.procs, tasks, cgroup.threads).
uint64_t count_lines(std::string_view text);

}  // namespace moni_cgroup
