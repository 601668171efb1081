#include "wal_log.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace moni::tsdb {

namespace fs = std::filesystem;

WalFileOps wal_file_ops = {::pwrite, ::pwritev, ::fdatasync, ::ftruncate};

namespace {

constexpr char kMagic[8] = {'M', 'O', 'N', 'I', 'W', 'A', 'L', '1'};
constexpr size_t kHeader = 16;  // magic, token
constexpr size_t kFrame = 20;   // u32 length, u64 checksum, u64 seq

// Torn-write detection, not security: one multiply per 8 bytes.
uint64_t checksum(uint64_t seq, std::string_view p) {
  auto mix = [](uint64_t h, uint64_t x) {
    h = (h ^ x) * 0x9E3779B97F4A7C15ULL;
    return h ^ (h >> 31);
  };
  uint64_t h = mix(0x6A09E667F3BCC908ULL ^ p.size(), seq);
  size_t i = 0;
  for (; i + 8 <= p.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, p.data() + i, 8);
    h = mix(h, w);
  }
  if (i < p.size()) {
    uint64_t w = 0;
    std::memcpy(&w, p.data() + i, p.size() - i);
    h = mix(h, w);
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

std::string seg_name(uint64_t seq) {
  char b[24];
  std::snprintf(b, sizeof b, "%020llu", static_cast<unsigned long long>(seq));
  return b;
}

// First seqs of the segment files in `dir`, ascending.
std::vector<uint64_t> list_segments(const std::string& dir) {
  std::vector<uint64_t> out;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string n = it->path().filename().string();
    if (n.size() != 20 || n.find_first_not_of("0123456789") != std::string::npos) continue;
    out.push_back(std::strtoull(n.c_str(), nullptr, 10));
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool read_file(const std::string& path, std::string& out, ino_t* ino = nullptr) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0;
  if (ino) *ino = st.st_ino;
  out.resize(ok ? static_cast<size_t>(st.st_size) : 0);
  size_t got = 0;
  while (ok && got < out.size()) {
    ssize_t n = ::read(fd, out.data() + got, out.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  out.resize(got);
  ::close(fd);
  return ok;
}

bool header_ok(std::string_view data, uint64_t token) {
  if (data.size() < kHeader || std::memcmp(data.data(), kMagic, 8) != 0) return false;
  uint64_t t;
  std::memcpy(&t, data.data() + 8, 8);
  return t == token;
}

// Parses the record at `off`; false when torn or corrupt.
bool parse_record(std::string_view data, size_t off, uint64_t& seq, std::string_view& payload,
                  size_t& next) {
  if (data.size() - off < kFrame) return false;
  uint32_t len;
  uint64_t sum;
  std::memcpy(&len, data.data() + off, 4);
  std::memcpy(&sum, data.data() + off + 4, 8);
  std::memcpy(&seq, data.data() + off + 12, 8);
  if (len > data.size() - off - kFrame) return false;
  payload = data.substr(off + kFrame, len);
  if (checksum(seq, payload) != sum) return false;
  next = off + kFrame + len;
  return true;
}

int write_all(int fd, const char* p, size_t n, uint64_t off) {
  while (n > 0) {
    ssize_t w = wal_file_ops.pwrite(fd, p, n, static_cast<off_t>(off));
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) return errno;
    if (w == 0) return EIO;
    p += w;
    n -= static_cast<size_t>(w);
    off += static_cast<uint64_t>(w);
  }
  return 0;
}

// Cuts `path` back to `size`, durably: a refused record that came back
// after a power loss would end the log before the records appended since.
bool cut_file(const std::string& path, uint64_t size) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::ftruncate(fd, static_cast<off_t>(size)) == 0 && ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  errno = e;
  return ok;
}

bool sync_dir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = ::fsync(fd) == 0;
  int e = errno;
  ::close(fd);
  errno = e;
  return ok;
}

}  // namespace

WalLog::~WalLog() { close_current(); }

void WalLog::close_current() {
  std::lock_guard<std::mutex> l(fd_mu_);
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

int WalLog::sync() {
  std::lock_guard<std::mutex> l(fd_mu_);
  if (failed_) return failed_;
  if (fd_ < 0) return 0;  // closed: its records were synced (durable) or are in stored chunks
  return datasync_locked();
}

int WalLog::datasync_locked() {
  if (wal_file_ops.fdatasync(fd_) == 0) return 0;
  int e = errno;
  note_failure_locked(e, fd_seg_);
  roll_ = true;  // so that the failed segment can be dropped
  return e;
}

void WalLog::note_failure_locked(int e, uint64_t seg) {
  if (!failed_) failed_ = e;
  failed_seg_ = std::max(failed_seg_, seg);
}

Result<void> WalLog::open(const std::string& db_dir, uint64_t token, bool writable) {
  dir_ = (fs::path(db_dir) / "wal").string();
  token_ = token;
  writable_ = writable;
  if (writable) {
    std::error_code ec;
    fs::create_directories(dir_, ec);
    if (ec)
      return make_error("lmdb_tsdb: cannot create the WAL directory " + dir_ + ": " + ec.message());
  }
  segs_ = list_segments(dir_);
  if (writable) {
    // Spares of an earlier run are deleted, not reused: their old records
    // may carry the very numbers the next records get (the numbering
    // starts over when no segment was left; another database's spares,
    // beside a copied-in data.mdb, are numbered independently), and one
    // that ends where a new record ends would be replayed as new. A spare
    // made in this run holds only numbers below every later segment's.
    std::error_code ec;
    for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec))
      if (it->path().filename().string().rfind("spare-", 0) == 0) ::unlink(it->path().c_str());
  }
  return {};
}

Result<void> WalLog::replay(const std::function<Verdict(uint64_t, std::string_view)>& fn) {
  std::string data;
  std::vector<uint64_t> kept;
  bool stopped = false, removed = false;
  for (uint64_t first : segs_) {
    std::string path = dir_ + "/" + seg_name(first);
    if (stopped) {  // after a torn or refused record: nothing is valid
      if (writable_) removed |= ::unlink(path.c_str()) == 0;
      continue;
    }
    if (!read_file(path, data))
      return make_error("lmdb_tsdb: cannot read the WAL segment " + path + ": " +
                        std::strerror(errno));
    if (!header_ok(data, token_)) {
      // Another database's log (a data.mdb copied or restored over this
      // one), or a segment cut short while it was created.
      if (writable_) removed |= ::unlink(path.c_str()) == 0;
      continue;
    }
    // Records follow each other by sequence number from the segment's
    // name on; a segment continues where the previous one ended.
    if (!kept.empty() && first != end_seq_) {
      stopped = true;
      if (writable_) removed |= ::unlink(path.c_str()) == 0;
      continue;
    }
    size_t off = kHeader;
    uint64_t expect = first;
    while (off < data.size()) {
      uint64_t seq;
      std::string_view payload;
      size_t next;
      // A torn record, or an older one left from the segment file's
      // previous use (recycled): the segment ends here.
      if (!parse_record(data, off, seq, payload, next) || seq != expect) break;
      if (fn(seq, payload) == Verdict::Stop) {
        stopped = true;
        break;
      }
      end_seq_ = seq + 1;
      expect = seq + 1;
      off = next;
    }
    if (off < data.size() && writable_) {
      if (!cut_file(path, off))
        return make_error("lmdb_tsdb: cannot cut the torn WAL segment " + path + ": " +
                          std::strerror(errno));
      removed = true;
    }
    if (kept.empty() && end_seq_ < first) end_seq_ = first;
    kept.push_back(first);
  }
  if (writable_ && durable_) {
    // An earlier run may have left records in the page cache only (it was
    // killed before syncing them): the records appended after them are
    // acknowledged only once they are on disk, or a power loss would end
    // the log before the new records.
    for (uint64_t first : kept) {
      std::string path = dir_ + "/" + seg_name(first);
      int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      int e = fd < 0 ? errno : wal_file_ops.fdatasync(fd) == 0 ? 0 : errno;
      if (fd >= 0) ::close(fd);
      if (e) {
        std::lock_guard<std::mutex> l(fd_mu_);
        note_failure_locked(e, first);
      }
    }
  }
  segs_ = std::move(kept);
  close_current();  // the next append starts a new segment
  // Removed segments must stay removed before new records are acknowledged
  // (a refused record back after a power loss would end the log before them).
  if (removed) sync_dir(dir_);
  return {};
}

int WalLog::open_segment(uint64_t seq) {
  {
    // The old segment is closed even when its fdatasync fails: the failure
    // is sticky (sync() reports it), and the segment must close so that it
    // can be dropped. A sync() waiting meanwhile sees it synced or failed.
    std::lock_guard<std::mutex> l(fd_mu_);
    if (fd_ >= 0) {
      if (durable_) (void)datasync_locked();
      ::close(fd_);
      fd_ = -1;
    }
  }
  std::string path = dir_ + "/" + seg_name(seq);
  int fd = -1;
  // A spare (a deleted segment's file, renamed) is overwritten in place:
  // its pages are in the page cache and its blocks allocated, so appends
  // cost a copy, not a page allocation, a block reservation and, at the
  // unlink, freeing them again. Its older records after the new ones
  // end the segment at replay (their sequence numbers do not follow).
  while (fd < 0 && !spares_.empty()) {
    std::string spare = spares_.back();
    spares_.pop_back();
    if (::rename(spare.c_str(), path.c_str()) == 0)
      fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    else
      ::unlink(spare.c_str());
  }
  if (fd < 0) fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return errno;
  char h[kHeader];
  std::memcpy(h, kMagic, 8);
  std::memcpy(h + 8, &token_, 8);
  if (int e = write_all(fd, h, kHeader, 0)) {
    ::close(fd);
    ::unlink(path.c_str());
    return e;
  }
  {
    std::lock_guard<std::mutex> l(fd_mu_);
    fd_ = fd;
    fd_seg_ = seq;
    roll_ = false;
  }
  off_ = kHeader;
  records_ = 0;
  if (segs_.empty() || segs_.back() != seq) segs_.push_back(seq);
  return 0;
}

int WalLog::append(uint64_t seq, std::string_view payload, bool sync, uint32_t roll_records) {
  undo_new_segment_ = false;
  undo_end_seq_ = end_seq_;
  if (fd_ < 0 || records_ >= roll_records || roll_.load(std::memory_order_relaxed)) {
    if (int e = open_segment(seq)) return e;
    undo_new_segment_ = true;
    // Records in a segment whose name may vanish at a power loss are not
    // durable: a failure to sync the directory fails the append.
    if ((sync || durable_) && !sync_dir(dir_)) {
      int e = errno;
      (void)undo_last();
      return e;
    }
  }
  char frame[kFrame];
  auto len = static_cast<uint32_t>(payload.size());
  uint64_t sum = checksum(seq, payload);
  std::memcpy(frame, &len, 4);
  std::memcpy(frame + 4, &sum, 8);
  std::memcpy(frame + 12, &seq, 8);
  undo_off_ = off_;
  // Frame and payload in one call, without copying the payload.
  iovec iov[2] = {{frame, kFrame}, {const_cast<char*>(payload.data()), payload.size()}};
  size_t total = kFrame + payload.size();
  int e = 0;
  ssize_t w;
  do {
    w = wal_file_ops.pwritev(fd_, iov, 2, static_cast<off_t>(off_));
  } while (w < 0 && errno == EINTR);
  if (w < 0)
    e = errno;
  else if (static_cast<size_t>(w) < total) {  // short write: the rest from one buffer
    frame_.assign(frame, kFrame);
    frame_.append(payload);
    auto done = static_cast<size_t>(w);
    e = write_all(fd_, frame_.data() + done, total - done, off_ + done);
  }
  if (e == 0 && sync) {
    std::lock_guard<std::mutex> l(fd_mu_);
    e = failed_ ? failed_ : datasync_locked();
  }
  if (e) {
    off_ += total;
    ++records_;
    (void)undo_last();
    return e;
  }
  off_ += total;
  ++records_;
  end_seq_ = seq + 1;
  return 0;
}

int WalLog::undo_last() {
  if (fd_ < 0) return 0;
  end_seq_ = undo_end_seq_;
  if (undo_new_segment_) {
    close_current();
    if (!segs_.empty()) {
      ::unlink((dir_ + "/" + seg_name(segs_.back())).c_str());
      segs_.pop_back();
    }
    undo_new_segment_ = false;
    return 0;
  }
  if (wal_file_ops.ftruncate(fd_, static_cast<off_t>(undo_off_)) != 0) {
    // The next append starts a new segment after the bad record. This one
    // stays open until then: sync() must still cover the records before it.
    roll_ = true;
    return errno;
  }
  off_ = undo_off_;
  --records_;
  return 0;
}

void WalLog::drop_before(uint64_t seq) {
  // Segment i holds records [segs_[i], segs_[i+1]); the newest one is open
  // ended and goes only when it is closed and `seq` is past all its records.
  size_t n = 0;
  while (n + 1 < segs_.size() && segs_[n + 1] <= seq) ++n;
  if (n + 1 == segs_.size() && end_seq_ <= seq) {
    close_current();
    ++n;
  }
  bool failed;
  uint64_t failed_seg;
  {
    std::lock_guard<std::mutex> l(fd_mu_);
    failed = failed_ != 0;
    failed_seg = failed_seg_;
  }
  for (size_t i = 0; i < n; ++i) {
    std::string path = dir_ + "/" + seg_name(segs_[i]);
    // A segment whose fdatasync failed is not reused: its blocks may be bad.
    if (spares_.size() < kSpares && !(failed && segs_[i] <= failed_seg)) {
      std::string spare = dir_ + "/spare-" + seg_name(segs_[i]);
      if (::rename(path.c_str(), spare.c_str()) == 0) {
        spares_.push_back(std::move(spare));
        continue;
      }
    }
    ::unlink(path.c_str());
  }
  segs_.erase(segs_.begin(), segs_.begin() + static_cast<std::ptrdiff_t>(n));
  // The segments that may have lost records are gone, for good once the
  // directory is synced (back after a power loss, replay would end the log
  // at their hole): sync() can succeed again.
  if (failed && (segs_.empty() || segs_.front() > failed_seg) && sync_dir(dir_)) {
    std::lock_guard<std::mutex> l(fd_mu_);
    if (failed_seg_ == failed_seg) failed_ = 0;
  }
}

Result<void> read_wal_records(const std::string& db_dir, uint64_t token,
                              std::vector<std::pair<uint64_t, std::string>>& out) {
  std::string dir = (fs::path(db_dir) / "wal").string();
  std::string data;
  uint64_t expect = 0;
  bool any = false;
  for (uint64_t first : list_segments(dir)) {
    std::string path = dir + "/" + seg_name(first);
    ino_t ino = 0;
    // A segment the writer drops while this runs (segments go oldest
    // first) holds only samples the snapshot taken afterwards has in
    // chunks, and the records before the next segment too: that one then
    // starts the log afresh. Its file may already be a spare being
    // overwritten by a newer segment, so what was read of it counts for
    // nothing after the records that follow on.
    if (!read_file(path, data, &ino)) {
      if (errno != ENOENT)
        return make_error("lmdb_tsdb: cannot read the WAL segment " + path + ": " +
                          std::strerror(errno));
      any = false;
      continue;
    }
    if (!header_ok(data, token)) continue;
    if (any && first != expect) break;  // a gap: nothing after it is valid
    size_t off = kHeader, next;
    uint64_t seq;
    std::string_view payload;
    expect = first;
    any = true;
    while (off < data.size() && parse_record(data, off, seq, payload, next) && seq == expect) {
      out.emplace_back(seq, std::string(payload));
      off = next;
      expect = seq + 1;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || st.st_ino != ino) any = false;  // dropped meanwhile
  }
  return {};
}

}  // namespace moni::tsdb
