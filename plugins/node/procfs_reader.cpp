#include "procfs_reader.hpp"

#include "text_parse.hpp"

#include <cerrno>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace moni::node {

namespace {
struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};
}  // namespace

namespace {
constexpr size_t kShortChunk = 2048;
}  // namespace

FileReader::FileReader() : buf_(4096) {}

FileReader::~FileReader() {
  for (const auto& [path, k] : kept_) ::close(k.fd);
}

void FileReader::sweep() {
  for (auto it = kept_.begin(); it != kept_.end();) {
    if (it->second.used) {
      it->second.used = false;
      ++it;
    } else {
      ::close(it->second.fd);
      it = kept_.erase(it);
    }
  }
}

bool FileReader::read_fd(int fd, std::string_view& out) {
  size_t used = 0;
  for (;;) {
    if (used == buf_.size()) buf_.resize(buf_.size() * 2);  // grows once, then stays
    ssize_t n = ::pread(fd, buf_.data() + used, buf_.size() - used, static_cast<off_t>(used));
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    used += static_cast<size_t>(n);
    // Saves the read() that would return 0: seq_file (procfs) returns chunks
    // cut at a record (line) boundary only when its page is nearly full, so a
    // chunk shorter than half a page that did not fill our buffer ends the
    // file; sysfs attributes come in one read.
    if (used < buf_.size() && (whole_ || static_cast<size_t>(n) < kShortChunk)) break;
  }
  out = std::string_view(buf_.data(), used);
  return true;
}

bool FileReader::read(const std::string& path, std::string_view& out, bool keep_open) {
  if (keep_open) {
    if (auto it = kept_.find(path); it != kept_.end()) {
      it->second.used = true;
      if (read_fd(it->second.fd, out)) return true;
      ::close(it->second.fd);  // e.g. ENODEV after the kernel object went away
      kept_.erase(it);
    }
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = read_fd(fd, out);
  if (ok && keep_open) {
    kept_.emplace(path, Kept{fd, true});
  } else {
    int saved = errno;
    ::close(fd);
    errno = saved;
  }
  return ok;
}

int FileReader::kept_fd(const std::string& path) const {
  auto it = kept_.find(path);
  return it == kept_.end() ? -1 : it->second.fd;
}

bool FileReader::read_line(const std::string& path, std::string_view& out, bool keep_open) {
  std::string_view all;
  if (!read(path, all, keep_open)) return false;
  out = trim(next_line(all));
  return true;
}

bool FileReader::read_u64(const std::string& path, uint64_t& out, bool keep_open) {
  std::string_view line;
  if (!read_line(path, line, keep_open)) return false;
  if (!parse_u64(line, out)) {
    errno = EINVAL;
    return false;
  }
  return true;
}

unsigned long dir_links(int fd) {
  struct stat st;
  if (fd < 0 || ::fstat(fd, &st) != 0 || st.st_nlink < 2) return 0;
  return static_cast<unsigned long>(st.st_nlink);
}

DirLister::~DirLister() {
  if (kept_fd_ >= 0) ::close(kept_fd_);
}

bool CycleFile::read(std::string_view& out) {
  if (state_ == State::Stale) {
    bool ok = reader_.read(path_, text_, true);
    errno_ = ok ? 0 : errno;
    state_ = ok ? State::Ok : State::Failed;
  }
  if (state_ == State::Failed) {
    errno = errno_;
    return false;
  }
  out = text_;
  return true;
}

bool DirLister::fill(const std::string& path, bool keep_open) {
  if (keep_open && kept_fd_ >= 0 && kept_path_ == path) {
    if (::lseek(kept_fd_, 0, SEEK_SET) == 0 && fill_fd(kept_fd_)) return true;
    ::close(kept_fd_);  // the directory went away: open it again by name
    kept_fd_ = -1;
  }
  Fd f{::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (f.fd < 0) return false;
  if (!fill_fd(f.fd)) return false;
  if (keep_open) {
    if (kept_fd_ >= 0) ::close(kept_fd_);
    kept_fd_ = f.fd;
    kept_path_ = path;
    f.fd = -1;
  }
  return true;
}

bool DirLister::fill_fd(int fd) {
  if (buf_.empty()) buf_.resize(32 * 1024);
  used_ = 0;
  for (;;) {
    long n = ::syscall(SYS_getdents64, fd, buf_.data(), buf_.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (n == 0) break;
    for (long off = 0; off < n;) {
      // struct linux_dirent64: d_ino(8) d_off(8) d_reclen(2) d_type(1) d_name
      const char* rec = buf_.data() + off;
      unsigned short reclen;
      __builtin_memcpy(&reclen, rec + 16, sizeof reclen);
      std::string_view name(rec + 19);
      if (name != "." && name != "..") {
        if (used_ == names_.size()) names_.emplace_back();
        names_[used_++].assign(name);
      }
      off += reclen;
    }
  }
  // Entries beyond used_ are stale but keep their capacity; list() stops at used_.
  return true;
}

}  // namespace moni::node
