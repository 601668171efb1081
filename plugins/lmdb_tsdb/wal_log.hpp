// The write-ahead log of head samples: append-only segment files beside the
// LMDB environment, one record per batch, so that a batch that creates no
// series and cuts no chunk costs one write() instead of an LMDB commit.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <moni/result.hpp>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

struct iovec;

namespace moni::tsdb {

/// Test-only fault injection: every write, fdatasync and truncation of a
/// segment file goes through these. Production never changes them.
struct WalFileOps {
  ssize_t (*pwrite)(int, const void*, size_t, off_t);
  ssize_t (*pwritev)(int, const iovec*, int, off_t);
  int (*fdatasync)(int);
  int (*ftruncate)(int, off_t);
};
extern WalFileOps wal_file_ops;

/// Segment files `DIR/wal/<first seq, 20 digits>`, each starting with a
/// header (magic, the database's token) and holding framed records
/// `u32 payload length, u64 checksum, u64 seq, payload`. A segment whose
/// token is not the database's (a restored or copied data.mdb) is ignored
/// and removed; a torn or corrupt record ends the log there (the file is
/// cut back, later segments removed).
/// Thread-safety: the database's writer lock serializes every call but
/// sync(), which may run on another thread at the same time (group commit).
/// A failed fdatasync is sticky: Linux reports a writeback error once and
/// may drop the pages, so a later fdatasync's success proves nothing about
/// them, and replay ends the log at the hole. sync() then fails until the
/// segment that failed has been dropped (its records are in stored chunks)
/// and the next append starts a new segment.
class WalLog {
 public:
  WalLog() = default;
  ~WalLog();
  WalLog(const WalLog&) = delete;
  WalLog& operator=(const WalLog&) = delete;

  /// What replay's callback decides for a record.
  enum class Verdict { Apply, Stop };
  /// Opens (creating when writable) `db_dir/wal`. Nothing is read yet;
  /// spares an earlier run left are deleted (writable).
  Result<void> open(const std::string& db_dir, uint64_t token, bool writable);
  /// Calls fn(seq, payload) for every record, oldest first. A record that
  /// fn answers Stop for, and everything after it, is removed (writable).
  Result<void> replay(const std::function<Verdict(uint64_t, std::string_view)>& fn);
  /// Appends a record (a new segment first when the current one holds
  /// `roll_records`, or after a failure); fdatasync when `sync`. On failure
  /// nothing is left appended (a torn record that cannot be cut ends its
  /// segment: the next append starts a new one, the records before it stay
  /// covered by sync()); returns 0 or an errno value.
  int append(uint64_t seq, std::string_view payload, bool sync, uint32_t roll_records);
  /// With durable, records appended without `sync` still never go missing
  /// behind a later fdatasync: a segment is synced before the next one
  /// starts (and the directory after a segment is created), and replay
  /// syncs the segments it read (an earlier run may have left records only
  /// in the page cache). sync() covers closed segments only when durable.
  void set_durable(bool durable) { durable_ = durable; }
  /// fdatasync of every record appended so far; 0 or an errno value (the
  /// first failure's, until the failed segment is dropped).
  /// Thread-safe against append() (group commit).
  int sync();
  /// Removes the record appended last (its append failed).
  int undo_last();
  /// Deletes the segments whose records are all older than `seq`; the next
  /// append starts a new segment when the current one is among them.
  void drop_before(uint64_t seq);
  /// Whether drop_before(seq) would delete a segment.
  bool droppable(uint64_t seq) const {
    return (segs_.size() >= 2 && segs_[1] <= seq) || (segs_.size() == 1 && end_seq_ <= seq);
  }
  /// First seq of the oldest segment, or `none` when there is none.
  uint64_t first_seq(uint64_t none) const { return segs_.empty() ? none : segs_.front(); }
  const std::string& dir() const { return dir_; }

 private:
  int open_segment(uint64_t seq);
  void close_current();
  int datasync_locked();  // fdatasync of fd_ under fd_mu_; a failure is sticky
  // A failed fdatasync of segment `seg` (fd_mu_): sync() reports the first
  // error until every segment up to the newest failed one is dropped.
  void note_failure_locked(int e, uint64_t seg);

  std::string dir_;
  uint64_t token_ = 0;
  bool writable_ = false;
  std::vector<uint64_t> segs_;  // first seqs of the segment files, ascending
  bool durable_ = false;
  // fd_ changes, every fdatasync of it and the failure state under it
  // (append's writes need not: one writer).
  std::mutex fd_mu_;
  int fd_ = -1;                     // the newest segment, open for appends
  uint64_t fd_seg_ = 0;             // its first seq
  int failed_ = 0;                  // errno of a failed fdatasync whose pages may be lost, or 0
  uint64_t failed_seg_ = 0;         // the newest segment that may have lost records
  std::atomic<bool> roll_ = false;  // the next append starts a new segment
  uint64_t off_ = 0, undo_off_ = 0;
  uint64_t end_seq_ = 0, undo_end_seq_ = 0;  // seq after the newest record
  uint32_t records_ = 0;                     // records in the current segment
  bool undo_new_segment_ = false;
  std::string frame_;
  // Files of segments deleted in this run, kept for reuse (`spare-<its
  // first seq>`, ignored by replay and backups), so that appends overwrite
  // cached pages. Their records are all numbered below the next segment.
  static constexpr size_t kSpares = 2;
  std::vector<std::string> spares_;
};

/// Reads the records of the segments in `db_dir/wal` holding `token`, for a
/// backup taken by another process (read-only, nothing is removed).
Result<void> read_wal_records(const std::string& db_dir, uint64_t token,
                              std::vector<std::pair<uint64_t, std::string>>& out);

}  // namespace moni::tsdb
