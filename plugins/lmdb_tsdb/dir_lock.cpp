#include "dir_lock.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <mutex>
#include <utility>

namespace moni::tsdb {

namespace fs = std::filesystem;

struct DirLock::Held {
  int fd = -1;
  std::string owner;
  std::pair<dev_t, ino_t> key;
  ~Held();
};

namespace {

// Locks held by this process, by the LOCK file's identity: flock conflicts
// between two open() of the same file even in one process, so a second
// acquire must find the first one here instead.
std::mutex registry_mu;
std::map<std::pair<dev_t, ino_t>, std::weak_ptr<DirLock::Held>>& registry() {
  static std::map<std::pair<dev_t, ino_t>, std::weak_ptr<DirLock::Held>> m;
  return m;
}

std::string errno_text(int e) { return std::strerror(e); }

// The pid the holder wrote, or 0 when unreadable (it may not have written
// it yet).
long holder_pid(int fd) {
  char buf[32] = {};
  ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
  if (n <= 0) return 0;
  char* end = nullptr;
  long pid = std::strtol(buf, &end, 10);
  return pid > 0 && (*end == '\n' || *end == '\0') ? pid : 0;
}

}  // namespace

DirLock::Held::~Held() {
  registry().erase(key);
  // Emptied before unlocking: a LOCK file with a pid in it is one held now
  // (or by a process that was killed).
  (void)!::ftruncate(fd, 0);
  ::close(fd);  // releases the flock
}

Result<std::unique_ptr<DirLock>> DirLock::acquire(const std::string& dir,
                                                  const std::string& owner) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("lmdb_tsdb: cannot create " + dir + ": " + ec.message());
  std::string path = dir + "/" + file_name;
  bool writable = true;
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 && (errno == EACCES || errno == EROFS)) {
    // Someone else's LOCK file: flock works on a read-only descriptor too.
    writable = false;
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  }
  if (fd < 0)
    return make_error("lmdb_tsdb: cannot open the lock file " + path + ": " + errno_text(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    return make_error("lmdb_tsdb: cannot stat the lock file " + path + ": " + errno_text(e));
  }
  std::pair<dev_t, ino_t> key{st.st_dev, st.st_ino};

  std::lock_guard<std::mutex> l(registry_mu);
  if (auto it = registry().find(key); it != registry().end()) {
    ::close(fd);  // another open file description: closing it keeps the flock
    // Never expired here: a Held leaves the map in its destructor, which
    // runs under registry_mu.
    std::shared_ptr<Held> h = it->second.lock();
    if (h->owner != owner)
      return make_error("lmdb_tsdb: database directory " + dir +
                        " is already used by storage instance '" + h->owner +
                        "' of this moni; give each storage instance its own path");
    // The same instance reloaded: the new one starts before the old one
    // stops, so both share the lock until then.
    return std::unique_ptr<DirLock>(new DirLock(std::move(h)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    long pid = e == EWOULDBLOCK ? holder_pid(fd) : 0;
    ::close(fd);
    if (e != EWOULDBLOCK)
      return make_error("lmdb_tsdb: cannot lock " + path + ": " + errno_text(e));
    std::string who = pid == 0 ? "another process"
                      : pid == long(::getpid())
                          ? "this moni process (pid " + std::to_string(pid) + ")"
                          : "pid " + std::to_string(pid);
    return make_error("lmdb_tsdb: database directory " + dir + " is in use by " + who +
                      " (another moni run or import?); stop it first");
  }
  if (writable) {
    std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd, 0) != 0 ||
        ::pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
      // The lock holds all the same; only the message of a refused opener
      // loses the pid.
    }
  }
  auto h = std::make_shared<Held>();
  h->fd = fd;
  h->owner = owner;
  h->key = key;
  registry()[key] = h;
  return std::unique_ptr<DirLock>(new DirLock(std::move(h)));
}

DirLock::~DirLock() {
  // Under the registry's mutex, so that an acquire never sees a lock that
  // is being released.
  std::lock_guard<std::mutex> l(registry_mu);
  held_.reset();
}

}  // namespace moni::tsdb
