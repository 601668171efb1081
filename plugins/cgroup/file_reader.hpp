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
  /// A file longer than kMaxFileSize fails with EFBIG (a character device
  /// such as /dev/zero in a test tree would grow the buffer forever).
  bool pread_all(int fd, std::string_view& out);

  static constexpr int AT_FDCWD_ = -100;  // AT_FDCWD without <fcntl.h> here
  // cgroup.procs of a cgroup with 4 million processes is about 32 MiB.
  static constexpr size_t kMaxFileSize = size_t{64} << 20;

 private:
  std::string buf_;
};

/// Parses the decimal number `s` holds (blanks before it, blanks and
/// newlines after it). "max", "-1", "12abc", an empty text and numbers past
/// UINT64_MAX fail: a value that cannot be read exactly is not guessed.
bool parse_u64(std::string_view s, uint64_t& out);

/// `s` without leading and trailing blanks and newlines.
std::string_view trim(std::string_view s);

/// What find_key() saw.
enum class KeyFound : uint8_t { kAbsent, kFound, kMalformed };

/// The value of `key` in a text of "key value" lines (cpu.stat, memory.stat,
/// memory.events, memory.oom_control, cpuacct.stat): kMalformed when the
/// key's line holds no number parse_u64() accepts.
KeyFound find_key_value(std::string_view text, std::string_view key, uint64_t& out);
inline bool find_key(std::string_view text, std::string_view key, uint64_t& out) {
  return find_key_value(text, key, out) == KeyFound::kFound;
}

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
/// number (memory.stat and the like), in one pass. Returns the number of
/// lines that are not "key number" (skipped).
template <class F>
size_t for_each_key_value(std::string_view text, F&& f) {
  size_t bad = 0;
  for_each_line(text, [&](std::string_view line) {
    size_t sp = line.find(' ');
    uint64_t v;
    if (sp != std::string_view::npos && parse_u64(line.substr(sp + 1), v))
      f(line.substr(0, sp), v);
    else
      ++bad;
  });
  return bad;
}

/// Number of non-empty lines (cgroup.procs, tasks, cgroup.threads).
uint64_t count_lines(std::string_view text);

}  // namespace moni_cgroup
