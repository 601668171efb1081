// The write-ahead log of head samples: append-only segment files beside the
// LMDB environment, one record per batch, so that a batch that creates no
// series and cuts no chunk costs one write() instead of an LMDB commit.
#pragma once

#include <cstdint>
#include <functional>
#include <moni/result.hpp>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace moni::tsdb {

/// Segment files `DIR/wal/<first seq, 20 digits>`, each starting with a
/// header (magic, the database's token) and holding framed records
/// `u32 payload length, u64 checksum, u64 seq, payload`. A segment whose
/// token is not the database's (a restored or copied data.mdb) is ignored
/// and removed; a torn or corrupt record ends the log there (the file is
/// cut back, later segments removed).
/// Thread-safety: the database's writer lock serializes every call but
/// sync(), which may run on another thread at the same time (group commit).
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
  /// `roll_records`); fdatasync when `sync`. On failure nothing is left
  /// appended; returns 0 or an errno value.
  int append(uint64_t seq, std::string_view payload, bool sync, uint32_t roll_records);
  /// With durable, records appended without `sync` still never go missing
  /// behind a later fdatasync: a segment is synced before the next one
  /// starts (and the directory after a segment is created).
  void set_durable(bool durable) { durable_ = durable; }
  /// fdatasync of every record appended so far; 0 or an errno value.
  /// Thread-safe against append() (group commit).
  int sync();
  /// Removes the record appended last (its batch failed to commit).
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

  std::string dir_;
  uint64_t token_ = 0;
  bool writable_ = false;
  std::vector<uint64_t> segs_;  // first seqs of the segment files, ascending
  bool durable_ = false;
  std::mutex fd_mu_;  // fd_ changes under it (append's writes need not: one writer)
  int fd_ = -1;       // the newest segment, open for appends
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
