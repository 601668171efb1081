// The LMDB time-series database: series table, inverted index, compressed
// chunks and persisted head chunks, retention, backups.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <moni/batch.hpp>
#include <moni/result.hpp>
#include <moni/storage.hpp>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "chunk_codec.hpp"
#include "head_pool.hpp"

typedef struct MDB_env MDB_env;
typedef struct MDB_txn MDB_txn;

namespace moni::tsdb {

class WalLog;

enum class SyncMode { Full, NoMetaSync, None };

struct Options {
  std::string path;  // directory holding data.mdb and lock.mdb
  SyncMode sync = SyncMode::Full;
  int64_t retention_ms = 15LL * 86400000;  // 0: keep forever
  uint64_t retention_bytes = 0;            // 0: unlimited
  uint64_t initial_map_size = 1ULL << 30;
  uint32_t head_chunk_samples = 240;  // head is cut into a chunk at this size
  int64_t max_chunk_range_ms = 4LL * 3600000;
  // Head chunks live in memory; each batch appends one compact WAL record.
  // A head whose first sample is more than this many records old is cut
  // early, so that the WAL never holds more than about this many records.
  uint32_t checkpoint_records = 480;
  bool read_only = false;
  bool no_lock = false;  // read-only inspection of a copy (restore checks)
  // Tests only: called by a write() running in parallel with others after
  // its WAL append and before its heads are published (record number).
  std::function<void(uint64_t)> test_after_wal_append;
};

/// Counters exported as self metrics. Thread-safety: atomics.
struct Stats {
  std::atomic<uint64_t> samples_appended{0}, out_of_order{0}, duplicate_rejected{0},
      duplicate_ignored{0}, invalid{0}, commits{0}, exclusive_commits{0}, chunks_closed{0},
      write_errors_disk_full{0}, write_errors_other{0}, map_grows{0}, retention_chunks_age{0},
      retention_chunks_size{0}, retention_series{0}, backups_ok{0}, backups_failed{0};
  std::atomic<int64_t> last_backup_ms{0}, series{0};
};

/// Counts of one write() call.
struct WriteResult {
  uint64_t appended = 0, out_of_order = 0, duplicate_rejected = 0, duplicate_ignored = 0,
           invalid = 0;
};

/// Thread-safety: write() may be called from several threads at once. A
/// batch whose series all belong to its position entry (the same batch
/// shape as its previous cycle's, which claimed them) runs in parallel with
/// the others under the series table's shared lock: series ids from the
/// labels, its WAL record, out-of-order checks and head appends; only the
/// WAL append itself is under the writer mutex. With a syncing mode it then
/// waits for one fdatasync shared by every writer waiting (group commit).
/// Any other batch (new series, metadata changes, series claimed by another
/// shape, a due scan for stale heads) and the housekeeping functions take
/// the series table exclusively. The read functions may be called from
/// any thread at any time (LMDB read transactions, MDB_NOTLS). A writable database runs one
/// background thread that encodes cut head chunks and stores them in their
/// own LMDB transactions (their samples stay in the WAL and visible to
/// readers until then).
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
  /// The same with the given limits instead of the opening options' (a
  /// reloaded instance sharing this Db brings its own).
  Result<void> enforce_retention(int64_t retention_ms, uint64_t retention_bytes);
  /// Cuts every head chunk into a stored chunk and empties the WAL, in one
  /// transaction (before backups: a copy then holds only encoded chunks).
  Result<void> flush_heads();
  /// Consistent, compacted copy into `dir` (created; must not hold a db).
  /// Flushes the heads first unless the database is open read-only.
  Result<void> backup_to(const std::string& dir);

  /// Waits until every head chunk cut so far is stored in LMDB (the
  /// background thread's queue is empty); its error if it cannot store them.
  Result<void> wait_background();

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
    unsigned series = 0, postings = 0, chunks = 0, meta = 0, metadata = 0, wal = 0;
  };
  /// Internal: used by cursors.
  struct ReadTxn;
  Result<std::unique_ptr<ReadTxn>> begin_read();
  /// A read transaction plus a copy of the committed head samples of `id`
  /// in [mint, maxt], taken together so that no cut chunk is missed
  /// (readers; thread-safe).
  Result<std::unique_ptr<ReadTxn>> begin_read_with_head(uint32_t id, int64_t mint, int64_t maxt,
                                                        std::vector<int64_t>& ts,
                                                        std::vector<double>& vs);
  const Dbis& dbis() const { return dbi_; }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;
  // Writer state of one series. The committed head samples live in heads_.
  struct Series {
    int64_t max_t = INT64_MIN;
    uint64_t last_vbits = 0;
    uint64_t head_seq = 0;    // WAL record holding the head's first sample
    int64_t head_t0 = 0;      // the head's first timestamp (heads_[id].ts[0])
    bool p_cut_next = false;  // a cut precedes this series' next pending sample
    bool live = false;
    bool has_data = false;
    // The position entry (PosEntry::token) whose batches own this series:
    // they change its state without the writer mutex. Changed only while
    // the series table is held exclusively.
    uint64_t owner = 0;
    std::string_view key;               // canonical labels (the index_ node's key)
    uint32_t raw_off = 0, raw_len = 0;  // pack_labels(key) in raw_ (0: none)
    // Batch-scoped state, valid while pgen == the batch's generation.
    uint64_t pgen = 0;
    int64_t p_max_t = INT64_MIN, p_head_t0 = 0;
    uint64_t p_vbits = 0;
    bool p_has = false;
    bool p_drop = false;                       // the committed head was cut into a chunk
    uint32_t p_first = kNone, p_last = kNone;  // chain of this batch's samples
    uint32_t p_head_start = kNone;             // first pending sample of a new head
    uint32_t p_head_n = 0;                     // samples in the head as of this sample
    uint32_t p_inplace = 0;  // head samples incl. those written in place by this batch
  };
  /// Samples of one series cut from its head in one batch, waiting for the
  /// background thread to store them as chunks; immutable once queued.
  struct CutData {
    uint32_t id = 0;
    uint64_t seq = 0;  // WAL record of the first sample
    // The samples: the head's own block (moved, no copy) when the cut
    // took a whole head, else copies in xts/xvs (several cuts in a batch).
    size_t n = 0;
    HeadArrays arrays;  // used when it holds a block, else xts/xvs
    std::vector<int64_t> xts;
    std::vector<double> xvs;
    std::vector<uint32_t> starts;  // first sample of each chunk
  };
  /// The in-memory head chunk: raw samples, encoded once when cut; cut
  /// samples not stored yet stay readable in `cuts` (older than ts).
  struct alignas(64) Head {
    // Samples [0, n) are committed; write() fills the arrays past n in
    // place (readers never look there) and publishes n under pub_mu_. The
    // arrays are replaced only under pub_mu_ held exclusively.
    HeadArrays a;
    uint32_t n = 0;
    std::vector<std::shared_ptr<const CutData>> cuts;
  };
  // One sample of the batch; kCutBit in `next` marks that the series' head
  // was cut just before it.
  static constexpr uint32_t kCutBit = 0x80000000u;
  struct Pending {
    uint32_t id;
    uint32_t next;
    int64_t t;
    double v;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };

  explicit Db(const Options& opt);
  Result<void> open_env();
  Result<void> load();
  struct PosEntry;
  struct WriteScratch;
  struct BatchState;
  /// Holds the series table exclusively and the writer mutex (new series,
  /// housekeeping): no write() is between its two phases meanwhile.
  struct Exclusive {
    explicit Exclusive(Db& db);
    std::unique_lock<std::mutex> gate;
    std::unique_lock<std::shared_mutex> series;
    std::unique_lock<std::mutex> writer;
  };
  enum class Resolve { Ok, Create };
  Resolve resolve(const BatchView& batch, WriteScratch& sc);
  Result<void> create_series(const BatchView& batch);
  void apply(const BatchView& batch, const WriteScratch& sc, WriteResult& wr, BatchState& b);
  Result<std::pair<WriteResult, uint64_t>> finish(const BatchView& batch, WriteScratch& sc,
                                                  WriteResult wr, BatchState& b, bool exclusive);
  Result<void> group_sync(uint64_t seq);
  int wtxn(MDB_txn*& out);
  uint32_t lookup(const moni_sample& smp, int& rc);
  uint32_t find_series(const moni_sample& smp, std::string& key) const;
  void set_raw(Series& s);
  std::string_view raw_of(const Series& s) const { return {raw_.data() + s.raw_off, s.raw_len}; }
  void touch(uint32_t id, Series& s, BatchState& b);
  void cut(Series& s, BatchState& b);
  uint64_t oldest_head_seq(bool parallel = false);
  void update_wal_keep();
  void enqueue_cuts(BatchState& b);
  void background_loop();
  int store_cuts(const std::vector<std::shared_ptr<const CutData>>& work);
  void stop_background();
  void flush_stale_heads(BatchState& b);
  void drop_wal_segments();
  void commit_heads(BatchState& b, uint64_t seq);
  void head_room(Head& h, size_t need, bool lock);
  void begin_create_state();
  void rollback();
  Result<void> grow_map(uint64_t at_least);
  void adopt_map_size();  // after MDB_MAP_RESIZED
  void maybe_grow_map(size_t batch_samples);
  Result<bool> retention_pass(int64_t cutoff, bool by_size);
  int delete_series(MDB_txn* txn, uint32_t id, std::string& label_bytes);
  std::string lmdb_error(const char* what, int rc) const;
  bool out_of_space(int rc) const;
  Result<void> replay_wal(MDB_txn* txn);
  Result<void> replay_wal_log();
  enum class Replay { Applied, Corrupt, UnknownSeries };
  Replay replay_record(uint64_t seq, std::string_view rec, bool check_ids);

  Options opt_;
  // Head sample arrays (declared first: destroyed after every head and cut).
  HeadPool pool_;
  MDB_env* env_ = nullptr;
  Dbis dbi_;
  std::shared_mutex env_mu_;  // exclusive only while resizing the map
  // Lock order: gate_, series_mu_, PosEntry::mu (only ever try-locked),
  // write_mu_, inflight_mu_, then pub_mu_/bg_mu_/env_mu_ (pub_mu_ before
  // bg_mu_: commit_heads() queues the cuts).
  // series_mu_ guards the series table (series_ identity fields, index_,
  // by_hash_, raw_, meta_, next_id_): shared for write()'s resolution,
  // exclusive to change it. gate_ makes the exclusive side win over a
  // stream of shared holders (taken briefly before either).
  std::mutex gate_;
  std::shared_mutex series_mu_;
  std::mutex write_mu_;  // the WAL append and its bookkeeping
  // WAL records appended by batches that run in parallel and have not
  // published their heads yet (inflight_mu_, taken after write_mu_): the WAL
  // is kept from the oldest, since their new heads are not visible yet.
  std::mutex inflight_mu_;
  std::vector<uint64_t> inflight_;
  // A scan for stale heads is due: the next batch runs exclusively.
  std::atomic<bool> stale_due_{false};
  // A WAL fdatasync failed: the WAL acknowledges nothing until the segment
  // that failed is dropped, so the next write() flushes the heads first.
  std::atomic<bool> wal_flush_due_{false};
  // Group commit: WAL records before appended_next_ are written, before
  // durable_next_ fdatasync'd (sync_mu_ serializes the fdatasync calls).
  std::mutex sync_mu_;
  std::atomic<uint64_t> appended_next_{0};
  uint64_t durable_next_ = 0;
  uint64_t sync_failed_upto_ = 0;
  int sync_errno_ = 0;
  std::atomic<uint64_t> map_size_{0};
  std::atomic<int64_t> max_t_{INT64_MIN};
  Stats stats_;

  // Writer state. The series table under series_mu_; a series' sample
  // state (max_t, head_seq, p_*) by the batches of its owner entry, or
  // exclusively; its head fields read by others under pub_mu_.
  std::vector<Series> series_;  // by id; id 0 unused
  std::unordered_map<std::string, uint32_t, Hash, std::equal_to<>> index_;
  // Label-set hash -> id of the first series with that hash: known series
  // skip building their canonical key (collisions fall back to index_).
  std::unordered_map<uint64_t, uint32_t> by_hash_;
  // Series ids by sample position of recent batches, keyed by the first
  // label set's hash and the batch size: a collector sends the same series
  // in the same order every cycle, so most lookups are one comparison.
  // Each entry also remembers the WAL record of its last batch: the gap to
  // the next one is the records written per collection cycle (one per
  // target and collector), which scales the checkpoint.
  // An entry is used by one write() at a time (its mutex, held until the
  // write returns; a second one with the same signature resolves without
  // it and runs exclusively); last_seq under write_mu_.
  struct PosEntry {
    explicit PosEntry(uint64_t t) : token(t) {}
    const uint64_t token;   // owner of the series its batches own (never 0)
    uint64_t last_use = 0;  // pos_clock_ at its last lookup (pos_mu_)
    std::mutex mu;
    std::vector<uint32_t> ids;
    uint64_t last_seq = UINT64_MAX;
  };
  std::mutex pos_mu_;  // the map itself, next_token_, pos_clock_, last_use
  uint64_t next_token_ = 1, pos_clock_ = 0;
  // Shapes remembered: one per scrape target and collector, so well above
  // the targets one server scrapes; past it the least recently used half
  // is forgotten (evict_shapes).
  static constexpr size_t kMaxShapes = 8192;
  std::unordered_map<uint64_t, std::shared_ptr<PosEntry>> by_position_;
  void evict_shapes();
  uint64_t cycle_ = 1, cycle_max_ = 0, cycle_until_ = 64, next_stale_scan_ = 0;
  /// WAL records after which a head counts as stale: checkpoint_records
  /// collection cycles.
  uint64_t checkpoint() const { return uint64_t{opt_.checkpoint_records} * cycle_; }
  // pack_labels() of every series, in creation order (Series::raw_off): a
  // batch from the SDK's arena is checked with one memcmp per sample,
  // reading memory in the order the batch lists its series.
  std::string raw_;
  size_t raw_before_ = 0;
  std::unordered_map<std::string, Metadata> meta_;
  std::atomic<uint64_t> gen_{0};  // batch generations (BatchState::gen)
  size_t series_before_ = 0;
  std::vector<std::string> new_keys_;
  std::vector<uint64_t> new_hashes_;
  // The batch's write transaction, begun on first use (wtxn()): a batch
  // that creates no series and cuts no chunk only appends to wal_log_.
  MDB_txn* txn_ = nullptr;
  std::unique_ptr<WalLog> wal_log_;
  uint64_t wal_token_ = 0;      // ties the WAL segment files to this database
  bool legacy_wal_ = false;     // records in the LMDB wal table (old db, backup copy)
  uint64_t wal_seq_ = 0;        // key of the next WAL record
  uint64_t wal_first_ = 0;      // oldest WAL record kept
  uint64_t wal_keep_from_ = 0;  // records before this are no longer needed
  uint32_t next_id_ = 1, next_id_before_ = 1;
  std::string rec_;
  std::vector<Metadata> pending_meta_;

  // The background thread storing cut chunks (bg_mu_ guards the queue).
  std::mutex bg_mu_;
  std::condition_variable bg_cv_, bg_done_cv_;
  std::vector<std::shared_ptr<const CutData>> bg_queue_;
  uint64_t bg_queued_samples_ = 0;  // in bg_queue_ and in the thread's hands
  uint64_t bg_enqueued_ = 0, bg_done_ = 0;
  // Oldest WAL record whose samples the background thread still has to
  // store (UINT64_MAX: none); WAL segments from there on are kept.
  std::atomic<uint64_t> bg_keep_from_{UINT64_MAX};
  std::string bg_error_;  // the last attempt's error, empty after a success
  bool bg_disk_full_ = false;
  bool bg_stop_ = false;
  std::thread bg_;
  std::string key_, buf_, blob_;
  std::vector<int64_t> ts_;
  std::vector<double> vs_;
  // Committed heads, read by readers under pub_mu_; the writer changes them
  // (and resizes the vector) only after a commit, holding pub_mu_.
  std::shared_mutex pub_mu_;
  std::vector<Head> heads_;
};

}  // namespace moni::tsdb
