// The LMDB time-series database: series table, inverted index, compressed
// chunks and persisted head chunks, retention, backups.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <moni/batch.hpp>
#include <moni/result.hpp>
#include <moni/storage.hpp>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "chunk_codec.hpp"

typedef struct MDB_env MDB_env;
typedef struct MDB_txn MDB_txn;

namespace moni::tsdb {

enum class SyncMode { Full, NoMetaSync, None };

struct Options {
  std::string path;  // directory holding data.mdb and lock.mdb
  SyncMode sync = SyncMode::Full;
  int64_t retention_ms = 15LL * 86400000;  // 0: keep forever
  uint64_t retention_bytes = 0;            // 0: unlimited
  uint64_t initial_map_size = 1ULL << 30;
  uint32_t head_chunk_samples = 120;  // head is cut into a chunk at this size
  uint32_t max_chunk_samples = 480;   // closed chunks are merged up to this size
  int64_t max_chunk_range_ms = 2LL * 3600000;
  // Head chunks live in memory; each batch appends one compact WAL record,
  // and every this many records all changed heads are written out and the
  // WAL emptied (a checkpoint).
  uint32_t checkpoint_records = 120;
  bool read_only = false;
  bool no_lock = false;  // read-only inspection of a copy (restore checks)
};

/// Counters exported as self metrics. Thread-safety: atomics.
struct Stats {
  std::atomic<uint64_t> samples_appended{0}, out_of_order{0}, duplicate_rejected{0},
      duplicate_ignored{0}, invalid{0}, commits{0}, chunks_closed{0}, write_errors_disk_full{0},
      write_errors_other{0}, map_grows{0}, retention_chunks_age{0}, retention_chunks_size{0},
      retention_series{0}, backups_ok{0}, backups_failed{0};
  std::atomic<int64_t> last_backup_ms{0}, series{0};
};

/// Counts of one write() call.
struct WriteResult {
  uint64_t appended = 0, out_of_order = 0, duplicate_rejected = 0, duplicate_ignored = 0,
           invalid = 0;
};

/// Thread-safety: write() and the housekeeping functions serialize on an
/// internal mutex; the read functions may be called from any thread at any
/// time (LMDB read transactions, MDB_NOTLS).
class Db {
 public:
  static Result<std::unique_ptr<Db>> open(const Options& opt);
  ~Db();
  Db(const Db&) = delete;
  Db& operator=(const Db&) = delete;

  /// Appends a batch in one LMDB write transaction; durable (per the sync
  /// mode) on success. Rejected samples (out of order, duplicates) are
  /// counted, not errors.
  Result<WriteResult> write(const BatchView& batch);

  Result<std::unique_ptr<SeriesCursor>> select(std::span<const Matcher> matchers, int64_t mint,
                                               int64_t maxt, bool with_samples);
  Result<std::vector<std::string>> label_names(std::span<const Matcher> matchers, int64_t mint,
                                               int64_t maxt);
  Result<std::vector<std::string>> label_values(std::string_view name,
                                                std::span<const Matcher> matchers, int64_t mint,
                                                int64_t maxt);
  Result<std::vector<Metadata>> metadata(std::string_view family);

  /// Deletes chunks (and then series) older than the retention, then the
  /// oldest data while the database is larger than retention_bytes. Works
  /// in small transactions so that appends are never held up for long.
  Result<void> enforce_retention();
  /// Consistent, compacted copy into `dir` (created; must not hold a db).
  Result<void> backup_to(const std::string& dir);

  /// Series in the series table.
  Result<uint64_t> series_count();
  /// Bytes of pages in use (file high-water mark minus free pages).
  uint64_t used_bytes();
  uint64_t file_bytes() const;
  uint64_t map_size() const { return map_size_.load(); }
  int64_t max_time() const { return max_t_.load(); }
  Stats& stats() { return stats_; }
  const Options& options() const { return opt_; }

  struct Dbis {
    unsigned series = 0, postings = 0, chunks = 0, heads = 0, meta = 0, metadata = 0, wal = 0;
  };
  /// The committed state of a series' head chunk, as readers see it.
  struct PublishedHead {
    int64_t t0 = 0;
    std::string header, bits;     // empty header: no head
    uint64_t epoch = UINT64_MAX;  // encoder epoch the bits were copied from
  };
  /// Copies the published head of `id` (readers; thread-safe).
  bool published_head(uint32_t id, int64_t& t0, std::string& blob);
  /// Internal: used by cursors.
  struct ReadTxn;
  Result<std::unique_ptr<ReadTxn>> begin_read();
  const Dbis& dbis() const { return dbi_; }

 private:
  struct Series {
    ChunkEncoder head;
    int64_t max_t = INT64_MIN;
    uint64_t last_vbits = 0;
    int64_t last_chunk_t0 = 0;  // the newest closed chunk, to merge into
    uint32_t last_chunk_count = 0;
    bool last_chunk_known = false;
    bool live = false;
    bool has_data = false;
    uint64_t gen = 0;         // write generation of the undo snapshot
    uint64_t dirty_gen = 0;   // write generation that modified the head
    bool ckpt_dirty = false;  // head changed since the heads table was written
    bool cut = false;         // head cut in the current batch
    uint32_t undo_slot = 0;   // index in undo_ during the current batch
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  explicit Db(const Options& opt) : opt_(opt) {}
  Result<void> open_env();
  Result<void> load();
  int apply(MDB_txn* txn, const BatchView& batch, WriteResult& wr);
  int cut_head(MDB_txn* txn, uint32_t id, Series& s);
  void rollback();
  Result<void> grow_map(uint64_t at_least);
  void maybe_grow_map(size_t batch_samples);
  Result<bool> retention_pass(int64_t cutoff, bool by_size);
  int delete_series(MDB_txn* txn, uint32_t id, std::string& label_bytes);
  std::string lmdb_error(const char* what, int rc) const;
  bool out_of_space(int rc) const;

  Options opt_;
  MDB_env* env_ = nullptr;
  Dbis dbi_;
  std::shared_mutex env_mu_;  // exclusive only while resizing the map
  std::mutex write_mu_;       // one writer: write() or housekeeping
  std::atomic<uint64_t> map_size_{0};
  std::atomic<int64_t> max_t_{INT64_MIN};
  Stats stats_;

  // Writer state (write_mu_).
  std::vector<Series> series_;  // by id; id 0 unused
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> index_;
  std::unordered_map<std::string, Metadata> meta_;
  uint64_t gen_ = 0;
  // Undo of one series: its scalars and a mark of its head, or a full copy
  // of the head when this batch cuts or re-encodes it.
  struct Undo {
    uint32_t id = 0;
    Series scalars;  // head left empty
    ChunkEncoder::Mark mark{};
    bool full = false;
    ChunkEncoder head;
  };
  void save_undo(uint32_t id, Series& s);
  void full_undo(uint32_t id, Series& s);
  std::vector<Undo> undo_;
  size_t undo_n_ = 0;
  size_t series_before_ = 0;
  std::vector<std::string> new_keys_;
  std::vector<uint32_t> dirty_, cut_ids_, ckpt_ids_;
  uint64_t wal_seq_ = 0;      // key of the next WAL record
  uint32_t wal_records_ = 0;  // records since the last checkpoint
  bool checkpointed_ = false;
  uint32_t next_id_ = 1, next_id_before_ = 1;
  std::string rec_;
  int64_t rec_prev_ts_ = 0;
  uint32_t rec_prev_id_ = 0;
  // Readers' view of head chunks (pub_mu_).
  std::shared_mutex pub_mu_;
  std::vector<PublishedHead> published_;
  void publish(uint32_t id);
  int checkpoint(MDB_txn* txn);
  Result<void> replay_wal(MDB_txn* txn);
  std::vector<Metadata> pending_meta_;
  int64_t batch_max_t_ = INT64_MIN;
  std::string key_, buf_, blob_;
  std::vector<int64_t> ts_;
  std::vector<double> vs_;
};

}  // namespace moni::tsdb
