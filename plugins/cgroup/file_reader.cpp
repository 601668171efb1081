#include "file_reader.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

namespace moni_cgroup {

static_assert(FileReader::AT_FDCWD_ == AT_FDCWD);

bool FileReader::read_at(int dirfd, const char* path, std::string_view& out) {
  // O_NONBLOCK: a FIFO in place of a file must not hang the collection.
  int fd = ::openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return false;
  bool ok = pread_all(fd, out);
  ::close(fd);
  return ok;
}

bool FileReader::pread_all(int fd, std::string_view& out) {
  if (buf_.size() < 16384) buf_.resize(16384);
  size_t len = 0;
  for (;;) {
    ssize_t n = ::pread(fd, buf_.data() + len, buf_.size() - len, static_cast<off_t>(len));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    len += static_cast<size_t>(n);
    // A short read means end of file for regular and seq_file files alike;
    // only a full buffer needs another read into a larger one.
    if (n == 0 || len < buf_.size()) break;
    if (buf_.size() >= FileReader::kMaxFileSize) {
      std::string().swap(buf_);  // not kept at 64 MiB for the small files
      errno = EFBIG;
      return false;
    }
    buf_.resize(buf_.size() * 2);
  }
  out = std::string_view(buf_.data(), len);
  return true;
}

bool parse_u64(std::string_view s, uint64_t& out) {
  size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  size_t start = i;
  uint64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    const auto d = static_cast<uint64_t>(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return false;  // past UINT64_MAX: not wrapped
    v = v * 10 + d;
    ++i;
  }
  if (i == start) return false;
  for (; i < s.size(); ++i)
    if (s[i] != '\n' && s[i] != ' ' && s[i] != '\t') return false;
  out = v;
  return true;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\n'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

KeyFound find_key_value(std::string_view text, std::string_view key, uint64_t& out) {
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    if (line.size() > key.size() && line.compare(0, key.size(), key) == 0 &&
        line[key.size()] == ' ')
      return parse_u64(line.substr(key.size() + 1), out) ? KeyFound::kFound : KeyFound::kMalformed;
    pos = nl + 1;
  }
  return KeyFound::kAbsent;
}

uint64_t count_lines(std::string_view text) {
  uint64_t n = 0;
  for_each_line(text, [&](std::string_view) { ++n; });
  return n;
}

}  // namespace moni_cgroup
