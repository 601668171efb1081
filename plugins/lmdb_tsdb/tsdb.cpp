// Opening the database, loading the writer's in-memory state, and the
// append path (one LMDB write transaction per batch).
#include "tsdb.hpp"

#include <sys/resource.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <functional>
#include <optional>
#include <random>
#include <span>
#include <system_error>
#include <thread>

#include "label_set.hpp"
#include "lmdb_keys.hpp"
#include "metadata_record.hpp"
#include "wal_log.hpp"

namespace moni::tsdb {

namespace fs = std::filesystem;

namespace {
// Format 2: raw in-memory heads recovered from the WAL alone (no heads
// table), chunks written once when cut.
constexpr std::string_view kFormat = "moni-lmdb-tsdb-2";
// Closed chunks stay inside half a 4 KiB page (LMDB puts larger values on
// overflow pages of their own); bigger chunks are split.
constexpr size_t kMaxChunkBytes = 2000;
constexpr uint64_t kMapHeadroom = 64ULL << 20;

uint64_t random_token() {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ 1;  // never 0 (0: no token yet)
}
Error disk_full(size_t samples, const std::string& path) {
  return make_error("lmdb_tsdb: disk full: the batch of " + std::to_string(samples) +
                    " samples was not stored in " + path +
                    " (free space or lower retention_size; appends resume by themselves)");
}

}  // namespace

// LMDB reports a short write as EIO, so an I/O error while the file system
// (or the file size limit) has no room left counts as a full disk too.
bool Db::out_of_space(int rc) const {
  if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG) return true;
  if (rc != EIO) return false;
  struct statvfs vfs {};
  if (::statvfs(opt_.path.c_str(), &vfs) == 0 &&
      static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize < (64ULL << 20))
    return true;
  rlimit lim{};
  return ::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
         file_bytes() + (16ULL << 20) >= lim.rlim_cur;
}

std::string Db::lmdb_error(const char* what, int rc) const {
  return std::string("lmdb_tsdb: ") + what + " failed for " + opt_.path + ": " + mdb_strerror(rc);
}

Db::Db(const Options& opt) : opt_(opt), pool_(opt.head_chunk_samples) {}

Result<std::unique_ptr<Db>> Db::open(const Options& opt) {
  std::unique_ptr<Db> db(new Db(opt));
  if (auto r = db->open_env(); !r) return r.error();
  if (!opt.read_only) {
    if (auto r = db->load(); !r) return r.error();
    try {
      db->bg_ = std::thread([p = db.get()] { p->background_loop(); });
    } catch (const std::system_error& e) {
      return make_error(std::string("lmdb_tsdb: cannot start the chunk thread: ") + e.what());
    }
    // Records in the LMDB wal table (a database of an earlier version, or
    // a backup copy) go into chunks now; from here on the WAL is the files.
    if (db->legacy_wal_)
      if (auto r = db->flush_heads(); !r) return r.error();
  }
  return db;
}

Db::~Db() {
  stop_background();
  if (env_) mdb_env_close(env_);
}

uint64_t Db::file_bytes() const {
  std::error_code ec;
  auto n = fs::file_size(fs::path(opt_.path) / "data.mdb", ec);
  return ec ? 0 : n;
}

Result<void> Db::open_env() {
  std::error_code ec;
  if (!opt_.read_only) {
    fs::create_directories(opt_.path, ec);
    if (ec)
      return make_error("lmdb_tsdb: cannot create the data directory " + opt_.path + ": " +
                        ec.message());
  } else if (!fs::exists(fs::path(opt_.path) / "data.mdb")) {
    return make_error("lmdb_tsdb: no database in " + opt_.path + " (data.mdb is missing)");
  }
  int rc = mdb_env_create(&env_);
  if (rc) return make_error(lmdb_error("mdb_env_create", rc));
  mdb_env_set_maxdbs(env_, 8);
  mdb_env_set_maxreaders(env_, 510);
  uint64_t map = std::max<uint64_t>(opt_.initial_map_size, file_bytes() * 2 + kMapHeadroom);
  mdb_env_set_mapsize(env_, map);
  unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
  if (opt_.sync == SyncMode::NoMetaSync) flags |= MDB_NOMETASYNC;
  if (opt_.sync == SyncMode::None) flags |= MDB_NOSYNC;
  if (opt_.read_only) flags |= MDB_RDONLY;
  if (opt_.no_lock) flags |= MDB_NOLOCK;
  rc = mdb_env_open(env_, opt_.path.c_str(), flags, 0644);
  if (rc) {
    mdb_env_close(env_);
    env_ = nullptr;
    return make_error(lmdb_error("opening the database", rc));
  }
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  map_size_ = info.me_mapsize;

  MDB_txn* txn = nullptr;
  rc = mdb_txn_begin(env_, nullptr, opt_.read_only ? MDB_RDONLY : 0, &txn);
  if (rc) return make_error(lmdb_error("beginning a transaction", rc));
  unsigned c = opt_.read_only ? 0 : MDB_CREATE;
  MDB_dbi d;
  struct {
    const char* name;
    unsigned flags;
    unsigned* out;
  } tables[] = {
      {"series", c, &dbi_.series},     {"postings", c | MDB_DUPSORT | MDB_DUPFIXED, &dbi_.postings},
      {"chunks", c, &dbi_.chunks},     {"meta", c, &dbi_.meta},
      {"metadata", c, &dbi_.metadata}, {"wal", c, &dbi_.wal}};
  for (auto& t : tables) {
    rc = mdb_dbi_open(txn, t.name, t.flags, &d);
    if (rc) {
      mdb_txn_abort(txn);
      return make_error(lmdb_error(("opening table " + std::string(t.name)).c_str(), rc) +
                        (rc == MDB_NOTFOUND ? " (not a moni lmdb_tsdb database?)" : ""));
    }
    *t.out = d;
  }
  MDB_val k = mval("format"), v;
  rc = mdb_get(txn, dbi_.meta, &k, &v);
  if (rc == MDB_NOTFOUND && !opt_.read_only) {
    v = mval(kFormat);
    rc = mdb_put(txn, dbi_.meta, &k, &v, 0);
  } else if (rc == 0 && sview(v) != kFormat) {
    mdb_txn_abort(txn);
    return make_error("lmdb_tsdb: " + opt_.path + " holds on-disk format \"" +
                      std::string(sview(v)) + "\"; this moni reads only \"" + std::string(kFormat) +
                      "\" (no converter: move the old database away or delete it)");
  }
  if (rc && rc != MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return make_error(lmdb_error("reading the format", rc));
  }
  k = mval("wal_token");
  rc = mdb_get(txn, dbi_.meta, &k, &v);
  if (rc == 0 && v.mv_size == 8) {
    std::memcpy(&wal_token_, v.mv_data, 8);
  } else if (!opt_.read_only) {
    wal_token_ = random_token();
    v = {8, &wal_token_};
    if ((rc = mdb_put(txn, dbi_.meta, &k, &v, 0))) {
      mdb_txn_abort(txn);
      return make_error(lmdb_error("initializing the database", rc));
    }
  }
  rc = mdb_txn_commit(txn);
  if (rc) return make_error(lmdb_error("initializing the database", rc));
  return {};
}

Result<void> Db::load() {
  auto rt = begin_read();
  if (!rt) return rt.error();
  MDB_txn* txn = (*rt)->txn;
  MDB_cursor* cur = nullptr;
  MDB_val k, v;
  std::vector<moni_label> ls;
  // Series table -> in-memory index.
  mdb_cursor_open(txn, dbi_.series, &cur);
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint32_t id = get_be32(k.mv_data);
    if (series_.size() <= id) series_.resize(id + 1);
    series_[id].live = true;
    auto it = index_.emplace(std::string(sview(v)), id).first;
    series_[id].key = it->first;
    set_raw(series_[id]);
    if (decode_labels(it->first, ls))
      by_hash_.emplace(label_set_hash(ls.data(), static_cast<uint32_t>(ls.size())), id);
  }
  mdb_cursor_close(cur);
  if (series_.empty()) series_.resize(1);
  heads_.resize(series_.size());
  // The newest sample of each series is in its last chunk or in the WAL.
  mdb_cursor_open(txn, dbi_.chunks, &cur);
  uint64_t live = 0;
  for (uint32_t id = 1; id < series_.size(); ++id) {
    Series& s = series_[id];
    if (!s.live) continue;
    ++live;
    ChunkKey ck(id + 1, INT64_MIN);
    k = ck.val();
    int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    if (rc == 0 && chunk_key_id(k) == id) {
      ts_.clear();
      vs_.clear();
      if (!decode_chunk(chunk_key_t0(k), sview(v), ts_, vs_)) {
        mdb_cursor_close(cur);
        return make_error("lmdb_tsdb: the newest chunk of series " + std::to_string(id) + " in " +
                          opt_.path + " is corrupt");
      }
      s.has_data = true;
      s.max_t = ts_.back();
      s.last_vbits = std::bit_cast<uint64_t>(vs_.back());
    }
  }
  mdb_cursor_close(cur);
  {
    MDB_val nk = mval("next_id"), nv;
    if (mdb_get(txn, dbi_.meta, &nk, &nv) == 0 && nv.mv_size == 4) next_id_ = get_be32(nv.mv_data);
    next_id_ = std::max<uint32_t>(next_id_, static_cast<uint32_t>(series_.size()));
  }
  if (auto r = replay_wal(txn); !r) return r;
  if (auto r = replay_wal_log(); !r) return r;
  int64_t max_t = INT64_MIN;
  for (uint32_t id = 1; id < series_.size(); ++id)
    if (series_[id].has_data) max_t = std::max(max_t, series_[id].max_t);
  max_t_ = max_t;
  stats_.series = static_cast<int64_t>(live);
  // Metadata.
  mdb_cursor_open(txn, dbi_.metadata, &cur);
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    Metadata m;
    if (!decode_metadata_record(sview(k), sview(v), m)) continue;
    meta_[m.family] = std::move(m);
  }
  mdb_cursor_close(cur);
  return {};
}

Result<std::unique_ptr<Db::ReadTxn>> Db::begin_read() {
  for (;;) {
    auto rt = std::make_unique<ReadTxn>();
    rt->lock = std::shared_lock<std::shared_mutex>(env_mu_);
    int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &rt->txn);
    if (rc == 0) return rt;
    rt->txn = nullptr;
    if (rc != MDB_MAP_RESIZED) return make_error(lmdb_error("beginning a read transaction", rc));
    rt->lock.unlock();
    adopt_map_size();
  }
}

void Db::adopt_map_size() {
  // Another process grew the map: take its size (no transaction of ours is
  // open here).
  std::unique_lock<std::shared_mutex> ul(env_mu_);
  mdb_env_set_mapsize(env_, 0);
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  map_size_ = info.me_mapsize;
}

Result<void> Db::grow_map(uint64_t at_least) {
  std::unique_lock<std::shared_mutex> ul(env_mu_);
  uint64_t target = std::max<uint64_t>(at_least, map_size_.load() * 2);
  int rc = mdb_env_set_mapsize(env_, target);
  if (rc) return make_error(lmdb_error("growing the map", rc));
  MDB_envinfo info;
  mdb_env_info(env_, &info);
  map_size_ = info.me_mapsize;
  ++stats_.map_grows;
  return {};
}

void Db::maybe_grow_map(size_t batch_samples) {
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &st);
  uint64_t used = (static_cast<uint64_t>(info.me_last_pgno) + 1) * st.ms_psize;
  uint64_t need = used + kMapHeadroom + batch_samples * 64;
  if (need > map_size_.load() / 10 * 8) (void)grow_map(need * 2);
}

uint64_t Db::used_bytes() {
  auto rt = begin_read();
  if (!rt) return 0;
  MDB_envinfo info;
  MDB_stat st;
  mdb_env_info(env_, &info);
  mdb_env_stat(env_, &st);
  uint64_t free_pages = 0;
  MDB_cursor* cur = nullptr;
  if (mdb_cursor_open((*rt)->txn, 0, &cur) == 0) {
    MDB_val k, v;
    for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
      if (v.mv_size >= sizeof(size_t)) free_pages += *static_cast<const size_t*>(v.mv_data);
    mdb_cursor_close(cur);
  }
  uint64_t pages = static_cast<uint64_t>(info.me_last_pgno) + 1;
  return (pages > free_pages ? pages - free_pages : 0) * st.ms_psize;
}

Result<uint64_t> Db::series_count() {
  auto rt = begin_read();
  if (!rt) return rt.error();
  MDB_stat st;
  int rc = mdb_stat((*rt)->txn, dbi_.series, &st);
  if (rc) return make_error(lmdb_error("counting series", rc));
  return static_cast<uint64_t>(st.ms_entries);
}

// ------------------------------------------------------------------ write

// Per-thread state of write(): reused across calls, so that a batch costs
// no allocation once the buffers have grown.
struct Db::WriteScratch {
  std::vector<uint32_t> ids;  // per sample: series id, 0 = invalid labels, kNone = unknown
  std::string rec;            // the batch's WAL record
  std::string key;
  // The batch's position entry, held (its mutex) until write() returns.
  std::shared_ptr<PosEntry> pos;
  std::unique_lock<std::mutex> pos_lock;
  bool owned = false;  // every valid series of the batch is owned by pos
  void release() {
    pos_lock = {};  // unlocks
    pos.reset();
  }
};

// What one batch (a write(), a flush, a stale-head scan) passes from
// apply() to commit_heads(): its own, so that batches owning disjoint
// series run at the same time.
struct Db::BatchState {
  uint64_t gen = 0;  // Series::pgen of the series it touched
  std::vector<Pending> pend;
  std::vector<uint32_t> touched;
  std::vector<std::shared_ptr<const CutData>> cuts;  // made by commit_heads
  int64_t max_t = INT64_MIN;
  bool cut = false;  // a head was cut: the WAL kept may shrink
  void begin(std::atomic<uint64_t>& gens) {
    gen = gens.fetch_add(1, std::memory_order_relaxed) + 1;
    pend.clear();
    touched.clear();
    cuts.clear();
    max_t = INT64_MIN;
    cut = false;
  }
};

namespace {
// A spin-wait hint (x86 pause, arm64 yield; nothing elsewhere).
inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

// Locks m, spinning briefly first: the sections under the writer mutex and
// the heads' publication are a few microseconds, far less than a futex
// sleep and wake-up of the waiting writer.
template <typename M>
std::unique_lock<M> lock_spinning(M& m) {
  std::unique_lock<M> l(m, std::try_to_lock);
  for (int i = 0; i < 256 && !l.owns_lock(); ++i) {
    cpu_relax();
    if ((i & 7) == 7 && m.try_lock()) l = std::unique_lock<M>(m, std::adopt_lock);
  }
  if (!l.owns_lock()) l.lock();
  return l;
}
}  // namespace

Db::Exclusive::Exclusive(Db& db) : gate(db.gate_), series(db.series_mu_), writer(db.write_mu_) {}

namespace {
// WAL record of a batch: per sample with a known series, its id and
// timestamp as zigzag deltas and its raw value bits. Samples the writer
// then rejects (out of order, duplicates) stay in it: the replay applies
// exactly the same rule (nothing at or before a series' newest sample), in
// the same order, so it rebuilds the same heads.
void encode_record(std::span<const moni_sample> samples, const std::vector<uint32_t>& ids,
                   std::string& rec) {
  if (rec.size() < samples.size() * 28) rec.resize(samples.size() * 28);
  char* w = rec.data();
  int64_t prev_ts = 0;
  uint32_t prev_id = 0;
  for (size_t i = 0; i < samples.size(); ++i) {
    uint32_t id = ids[i];
    if (id == 0 || id == UINT32_MAX) continue;
    int64_t t = samples[i].timestamp_ms;
    int64_t did = static_cast<int64_t>(id) - static_cast<int64_t>(prev_id);
    w = put_varint(w, (static_cast<uint64_t>(did) << 1) ^ static_cast<uint64_t>(did >> 63));
    uint64_t dts = static_cast<uint64_t>(t) - static_cast<uint64_t>(prev_ts);
    w = put_varint(w, (dts << 1) ^ static_cast<uint64_t>(static_cast<int64_t>(dts) >> 63));
    uint64_t vbits = std::bit_cast<uint64_t>(samples[i].value);
    std::memcpy(w, &vbits, 8);
    w += 8;
    prev_id = id;
    prev_ts = t;
  }
  rec.resize(static_cast<size_t>(w - rec.data()));
}

bool labels_valid(const moni_sample& smp) {
  bool valid = smp.label_count > 0;
  for (uint32_t i = 0; i < smp.label_count && valid; ++i)
    valid = smp.labels[i].name.len > 0 && smp.labels[i].name.len <= kMaxLabelName;
  return valid;
}
}  // namespace

// A batch whose series all belong to its position entry runs in parallel
// with other write() calls, under the series table's shared lock: series
// ids from the labels (byte for byte), the WAL record, out-of-order checks
// and head appends in place (apply); only the WAL append and its
// bookkeeping take the writer mutex (finish), then the heads are published
// (commit_heads). Any other batch (unknown series or new metadata, series
// of another entry, a due scan for stale heads) takes the series table
// exclusively instead, creates new series in one LMDB transaction first,
// and claims its series for its entry. Then, with a syncing mode, the group
// commit: one fdatasync for every writer waiting.
Result<WriteResult> Db::write(const BatchView& batch) {
  if (opt_.read_only) return make_error("lmdb_tsdb: the database is open read-only");
  if (wal_flush_due_.exchange(false))
    if (auto r = flush_heads(); !r) wal_flush_due_ = true;
  {
    // Cut chunks the background thread has not stored yet are held in
    // memory: past a bound, the writer waits for it (or fails with its
    // error, before anything of this batch is written).
    std::unique_lock<std::mutex> l(bg_mu_);
    uint64_t nser = static_cast<uint64_t>(std::max<int64_t>(stats_.series.load(), 1));
    uint64_t limit = std::max<uint64_t>(1u << 21, uint64_t{2} * nser * opt_.head_chunk_samples);
    if (bg_queued_samples_ > limit) {
      bg_done_cv_.wait(l, [&] { return bg_queued_samples_ <= limit / 2 || !bg_error_.empty(); });
      if (bg_queued_samples_ > limit / 2) {
        if (bg_disk_full_) {
          ++stats_.write_errors_disk_full;
          return make_error("lmdb_tsdb: disk full: the batch of " + std::to_string(batch.size()) +
                            " samples was not stored (" + bg_error_ +
                            "; free space or lower retention_size; appends resume by themselves)");
        }
        ++stats_.write_errors_other;
        return make_error(bg_error_);
      }
    }
  }
  thread_local WriteScratch sc;
  thread_local BatchState b;
  struct Release {
    WriteScratch& sc;
    ~Release() { sc.release(); }
  } release{sc};
  std::shared_lock<std::shared_mutex> shared;
  std::optional<Exclusive> ex;
  {
    std::lock_guard<std::mutex> g(gate_);
    shared = std::shared_lock<std::shared_mutex>(series_mu_);
  }
  Resolve res = resolve(batch, sc);
  if (res == Resolve::Create || !sc.owned || stale_due_.load(std::memory_order_acquire)) {
    shared.unlock();
    ex.emplace(*this);
    // Without a lock in between, retention may have deleted a series
    // resolved above (ids are never reused): resolved again, it is
    // created anew instead of taking samples no reader or replay sees.
    if (res == Resolve::Ok)
      for (uint32_t id : sc.ids)
        if (id != 0 && id != kNone && !series_[id].live) {
          res = resolve(batch, sc);
          break;
        }
    if (res == Resolve::Create) {
      if (auto r = create_series(batch); !r) return r.error();
      (void)resolve(batch, sc);
    }
    // The batch's series now belong to its position entry: its next
    // batches of this shape run in parallel with others.
    if (sc.pos_lock.owns_lock())
      for (uint32_t id : sc.ids)
        if (id != 0 && id != kNone) series_[id].owner = sc.pos->token;
  }
  encode_record(batch.samples(), sc.ids, sc.rec);
  b.begin(gen_);
  if (ex) flush_stale_heads(b);  // touches any series: exclusive only
  WriteResult wr;
  apply(batch, sc, wr, b);
  auto r = finish(batch, sc, wr, b, ex.has_value());
  sc.release();  // the entry before the series lock (the guard covers the error returns)
  ex.reset();
  if (shared.owns_lock()) shared.unlock();
  if (!r) return r.error();
  if (opt_.sync != SyncMode::None)
    if (auto g = group_sync(r->second); !g) return g.error();
  return r->first;
}

// After apply(): the WAL append (writer mutex; exclusive batches hold it
// already), then the heads' publication and the cuts' hand-over, and the
// WAL segments no longer needed. Returns the counts and the WAL position
// the batch is durable at.
Result<std::pair<WriteResult, uint64_t>> Db::finish(const BatchView& batch, WriteScratch& sc,
                                                    WriteResult wr, BatchState& b, bool exclusive) {
  std::unique_lock<std::mutex> wl;
  if (!exclusive) wl = lock_spinning(write_mu_);
  if (sc.pos) {
    PosEntry& e = *sc.pos;
    if (e.last_seq != UINT64_MAX && wal_seq_ > e.last_seq) {
      // A longer cycle counts at once; a shorter one after a window.
      uint64_t gap = std::min<uint64_t>(wal_seq_ - e.last_seq, 1024);
      cycle_max_ = std::max(cycle_max_, gap);
      cycle_ = std::max(cycle_, gap);
    }
    e.last_seq = wal_seq_;
    if (wal_seq_ >= cycle_until_) {
      cycle_ = std::clamp<uint64_t>(cycle_max_, 1, 1024);
      cycle_max_ = 0;
      cycle_until_ = wal_seq_ + 64 * cycle_;
    }
  }
  int rc = 0;
  if (wr.appended > 0)
    rc =
        wal_log_->append(wal_seq_, sc.rec, false,
                         static_cast<uint32_t>(std::clamp<uint64_t>(checkpoint() / 4, 16, 100000)));
  if (rc) {
    if (out_of_space(rc)) {
      ++stats_.write_errors_disk_full;
      return disk_full(batch.size(), opt_.path);
    }
    ++stats_.write_errors_other;
    return make_error("lmdb_tsdb: appending a batch to the WAL in " + opt_.path +
                      " failed: " + std::strerror(rc));
  }
  const uint64_t seq = wal_seq_;
  if (wr.appended > 0) {
    appended_next_.store(++wal_seq_);
    if (!exclusive) {
      std::lock_guard<std::mutex> il(inflight_mu_);
      inflight_.push_back(seq);
    }
  }
  // Durable once every record up to here is: also a batch that appended
  // nothing (its samples may be another writer's, not synced yet).
  const uint64_t durable_at = wal_seq_;
  drop_wal_segments();
  stale_due_.store(wal_seq_ - wal_first_ > checkpoint() && wal_seq_ >= next_stale_scan_,
                   std::memory_order_release);
  if (!exclusive) wl.unlock();
  if (!exclusive && wr.appended > 0 && opt_.test_after_wal_append) opt_.test_after_wal_append(seq);
  commit_heads(b, seq);
  if (!exclusive && wr.appended > 0) {
    std::lock_guard<std::mutex> il(inflight_mu_);
    inflight_.erase(std::find(inflight_.begin(), inflight_.end(), seq));
  }
  if (b.cut) {
    if (!exclusive) wl = lock_spinning(write_mu_);
    update_wal_keep();
    drop_wal_segments();
  }
  for (int64_t m = max_t_.load(); b.max_t > m && !max_t_.compare_exchange_weak(m, b.max_t);) {
  }
  stats_.samples_appended += wr.appended;
  stats_.out_of_order += wr.out_of_order;
  stats_.duplicate_rejected += wr.duplicate_rejected;
  stats_.duplicate_ignored += wr.duplicate_ignored;
  stats_.invalid += wr.invalid;
  ++stats_.commits;
  if (exclusive) ++stats_.exclusive_commits;
  return std::make_pair(wr, durable_at);
}

// One fdatasync covers every record appended before it started: a writer
// whose record a sync already covered returns at once, the first of the
// others syncs for all of them.
Result<void> Db::group_sync(uint64_t upto) {
  std::lock_guard<std::mutex> l(sync_mu_);
  if (durable_next_ >= upto) return {};
  if (sync_failed_upto_ >= upto) {
    ++stats_.write_errors_other;
    return make_error("lmdb_tsdb: syncing the WAL in " + opt_.path +
                      " failed: " + std::strerror(sync_errno_));
  }
  uint64_t target = appended_next_.load();
  if (int e = wal_log_->sync()) {
    sync_failed_upto_ = std::max(sync_failed_upto_, target);
    sync_errno_ = e;
    wal_flush_due_ = true;
    ++(out_of_space(e) ? stats_.write_errors_disk_full : stats_.write_errors_other);
    return make_error("lmdb_tsdb: syncing the WAL in " + opt_.path +
                      " failed: " + std::strerror(e));
  }
  durable_next_ = std::max(durable_next_, target);
  return {};
}

// Series ids of the batch's samples (shared or exclusive series lock).
Db::Resolve Db::resolve(const BatchView& batch, WriteScratch& sc) {
  auto samples = batch.samples();
  sc.ids.resize(samples.size());
  sc.release();
  uint32_t* pos = nullptr;
  if (!samples.empty()) {
    // Series ids by position in the previous batch with the same first
    // label set and size.
    uint64_t sig = label_set_hash(samples[0].labels, samples[0].label_count) ^
                   (static_cast<uint64_t>(samples.size()) * 0x9E3779B97F4A7C15ULL);
    {
      std::lock_guard<std::mutex> l(pos_mu_);
      auto it = by_position_.find(sig);
      if (it == by_position_.end()) {
        if (by_position_.size() >= kMaxShapes) evict_shapes();
        it = by_position_.emplace(sig, std::make_shared<PosEntry>(next_token_++)).first;
      }
      it->second->last_use = ++pos_clock_;
      sc.pos = it->second;
    }
    sc.pos_lock = std::unique_lock<std::mutex>(sc.pos->mu, std::try_to_lock);
    if (sc.pos_lock.owns_lock()) {
      sc.pos->ids.resize(samples.size(), 0);
      pos = sc.pos->ids.data();
    }
  }
  bool create = false;
  // Owned: without the entry, only a batch of no valid sample.
  const uint64_t token = pos ? sc.pos->token : 0;
  bool owned = true;
  const size_t n = series_.size();
  for (size_t i = 0; i < samples.size(); ++i) {
    const moni_sample& smp = samples[i];
    uint32_t cand = pos ? pos[i] : 0;
    // A series' labels were checked when it was created, so only samples
    // that miss the position cache need the validity check.
    if (cand != 0 && cand < n && series_[cand].live &&
        labels_equal_fast(smp.labels, smp.label_count, series_[cand].key, raw_of(series_[cand]))) {
      sc.ids[i] = cand;
      owned &= token != 0 && series_[cand].owner == token;
      continue;
    }
    if (!labels_valid(smp)) {
      sc.ids[i] = 0;
      continue;
    }
    uint32_t id = find_series(smp, sc.key);
    if (id == 0) {
      create = true;
      sc.ids[i] = kNone;
      continue;
    }
    sc.ids[i] = id;
    owned &= token != 0 && series_[id].owner == token;
    if (pos) pos[i] = id;
  }
  sc.owned = owned && !create;
  for (const moni_metadata& m : batch.metadata()) {
    std::string_view fam = sv(m.family);
    if (fam.empty() || fam.size() >= kPostingKeyTruncated) continue;
    auto it = meta_.find(std::string(fam));
    if (it == meta_.end() || static_cast<uint32_t>(it->second.type) != m.type ||
        it->second.help != sv(m.help) || it->second.unit != sv(m.unit))
      create = true;
  }
  return create ? Resolve::Create : Resolve::Ok;
}

// Forgets the least recently used half of the batch shapes (pos_mu_): the
// others keep their series and run in parallel. Shapes that change every
// cycle (a varying sample count) would otherwise grow the map without end.
void Db::evict_shapes() {
  std::vector<uint64_t> uses;
  uses.reserve(by_position_.size());
  for (const auto& [sig, e] : by_position_) uses.push_back(e->last_use);
  auto mid = uses.begin() + static_cast<std::ptrdiff_t>(uses.size() / 2);
  std::nth_element(uses.begin(), mid, uses.end());
  const uint64_t cutoff = *mid;
  std::erase_if(by_position_, [cutoff](const auto& kv) { return kv.second->last_use <= cutoff; });
}

// The id of an existing series with these labels, or 0 (readers of the
// series table: shared lock).
uint32_t Db::find_series(const moni_sample& smp, std::string& key) const {
  uint64_t h = label_set_hash(smp.labels, smp.label_count);
  auto it = by_hash_.find(h);
  if (it != by_hash_.end() &&
      labels_equal_fast(smp.labels, smp.label_count, series_[it->second].key,
                        raw_of(series_[it->second])))
    return it->second;
  key.clear();
  encode_labels(smp.labels, smp.label_count, key);
  if (auto jt = index_.find(std::string_view(key)); jt != index_.end()) return jt->second;
  return 0;
}

// New series and changed metadata of a batch, in one LMDB transaction
// (committed before the batch's WAL record, so a record never names a
// series LMDB lacks). Holds Exclusive.
Result<void> Db::create_series(const BatchView& batch) {
  maybe_grow_map(batch.size());
  for (int attempt = 0;; ++attempt) {
    int rc = 0;
    {
      std::shared_lock<std::shared_mutex> rl(env_mu_);
      begin_create_state();
      pending_meta_.clear();
      txn_ = nullptr;
      for (const moni_sample& smp : batch.samples()) {
        if (!labels_valid(smp)) continue;
        (void)lookup(smp, rc);
        if (rc) break;
      }
      if (rc == 0 && next_id_ != next_id_before_) {
        char nb[4];
        put_be32(nb, next_id_);
        MDB_val k = mval("next_id"), v = {4, nb};
        MDB_txn* txn = nullptr;
        if ((rc = wtxn(txn)) == 0) rc = mdb_put(txn, dbi_.meta, &k, &v, 0);
      }
      for (const moni_metadata& m : batch.metadata()) {
        if (rc) break;
        std::string_view fam = sv(m.family);
        if (fam.empty() || fam.size() >= kPostingKeyTruncated) continue;
        auto same = [&](const Metadata& x) {
          return static_cast<uint32_t>(x.type) == m.type && x.help == sv(m.help) &&
                 x.unit == sv(m.unit);
        };
        auto it = meta_.find(std::string(fam));
        if (it != meta_.end() && same(it->second)) continue;
        bool dup = false;
        for (const auto& p : pending_meta_)
          if (p.family == fam && same(p)) dup = true;
        if (dup) continue;
        encode_metadata_record(m, buf_);
        MDB_val k = mval(fam), v = mval(buf_);
        MDB_txn* txn = nullptr;
        if ((rc = wtxn(txn)) || (rc = mdb_put(txn, dbi_.metadata, &k, &v, 0))) break;
        pending_meta_.push_back({std::string(fam), static_cast<MetricType>(m.type),
                                 std::string(sv(m.help)), std::string(sv(m.unit))});
      }
      if (rc == 0 && txn_) {
        rc = mdb_txn_commit(txn_);
        txn_ = nullptr;
      }
      if (txn_) mdb_txn_abort(txn_);
      txn_ = nullptr;
    }
    if (rc == 0) {
      for (auto& m : pending_meta_) meta_[m.family] = std::move(m);
      stats_.series += static_cast<int64_t>(new_keys_.size());
      // apply() writes into heads_[id] before commit_heads().
      std::unique_lock<std::shared_mutex> pl(pub_mu_);
      if (heads_.size() < series_.size()) heads_.resize(series_.size());
      return {};
    }
    rollback();
    if (rc == MDB_MAP_RESIZED && attempt < 4) {
      adopt_map_size();
      continue;
    }
    if (rc == MDB_MAP_FULL && attempt < 4) {
      if (auto g = grow_map(map_size_.load() * 2); !g) {
        ++stats_.write_errors_other;
        return g.error();
      }
      continue;
    }
    if (out_of_space(rc)) {
      ++stats_.write_errors_disk_full;
      return disk_full(batch.size(), opt_.path);
    }
    ++stats_.write_errors_other;
    return make_error(lmdb_error("appending a batch", rc));
  }
}

// Marks where the creation of a batch's series starts, so that rollback()
// can undo what it adds to the in-memory series table.
void Db::begin_create_state() {
  series_before_ = series_.size();
  raw_before_ = raw_.size();
  new_keys_.clear();
  new_hashes_.clear();
  next_id_before_ = next_id_;
}

// Nothing committed was changed in memory before the commit (heads are
// updated afterwards), so undoing a failed batch only forgets new series.
void Db::rollback() {
  raw_.resize(raw_before_);
  for (const auto& k : new_keys_) index_.erase(k);
  for (uint64_t h : new_hashes_) by_hash_.erase(h);
  series_.resize(series_before_);
  next_id_ = next_id_before_;
}

// The WAL record of the oldest sample in a head (wal_seq_ with none). Under
// the writer mutex; parallel batches may publish heads meanwhile (pub_mu_),
// unless the caller runs alone (open, exclusive).
uint64_t Db::oldest_head_seq(bool parallel) {
  uint64_t m = wal_seq_;
  std::shared_lock<std::shared_mutex> pl(pub_mu_, std::defer_lock);
  if (parallel) pl.lock();
  size_t n = std::min(series_.size(), heads_.size());
  for (size_t id = 1; id < n; ++id)
    if (series_[id].live && heads_[id].n > 0) m = std::min(m, series_[id].head_seq);
  return m;
}

// Where WAL records may be dropped from once the background thread has
// stored the cuts: the oldest head, or a parallel batch's record whose heads
// are not published yet (read first: it publishes before it leaves the
// list). Under the writer mutex.
void Db::update_wal_keep() {
  uint64_t m = UINT64_MAX;
  {
    std::lock_guard<std::mutex> il(inflight_mu_);
    for (uint64_t q : inflight_) m = std::min(m, q);
  }
  wal_keep_from_ = std::min(m, oldest_head_seq(true));
}

void Db::touch(uint32_t id, Series& s, BatchState& b) {
  if (s.pgen == b.gen) return;
  s.pgen = b.gen;
  s.p_has = s.has_data;
  s.p_max_t = s.max_t;
  s.p_vbits = s.last_vbits;
  s.p_first = s.p_last = s.p_head_start = kNone;
  s.p_drop = false;
  s.p_cut_next = false;
  const Head* h = id < heads_.size() ? &heads_[id] : nullptr;
  s.p_head_n = h ? h->n : 0;
  s.p_inplace = s.p_head_n;
  s.p_head_t0 = s.p_head_n ? s.head_t0 : 0;
  b.touched.push_back(id);
}

void Db::set_raw(Series& s) {
  s.raw_off = static_cast<uint32_t>(raw_.size());
  s.raw_len = 0;
  if (pack_labels(s.key, raw_)) s.raw_len = static_cast<uint32_t>(raw_.size() - s.raw_off);
}

// The batch's write transaction, begun on first use.
int Db::wtxn(MDB_txn*& out) {
  if (!txn_) {
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn_);
    if (rc) {
      txn_ = nullptr;
      return rc;
    }
  }
  out = txn_;
  return 0;
}

uint32_t Db::lookup(const moni_sample& smp, int& rc) {
  rc = 0;
  // Ids start at 1: 0 is "not found"; key_ then holds the encoded labels.
  if (uint32_t found = find_series(smp, key_)) return found;
  const uint64_t h = label_set_hash(smp.labels, smp.label_count);  // new series only
  uint32_t id = next_id_++;
  series_.resize(id + 1);
  Series& ns = series_[id];
  ns.live = true;
  auto [nit, ok] = index_.emplace(key_, id);
  ns.key = nit->first;
  set_raw(ns);
  new_keys_.push_back(key_);
  if (by_hash_.emplace(h, id).second) new_hashes_.push_back(h);
  IdKey ik(id);
  MDB_val k = ik.val(), v = mval(key_);
  MDB_txn* txn = nullptr;
  if ((rc = wtxn(txn))) return 0;
  if ((rc = mdb_put(txn, dbi_.series, &k, &v, 0))) return 0;
  for (uint32_t i = 0; i < smp.label_count; ++i) {
    posting_key(sv(smp.labels[i].name), sv(smp.labels[i].value), buf_);
    MDB_val pk = mval(buf_), pv = ik.val();
    if ((rc = mdb_put(txn, dbi_.postings, &pk, &pv, 0))) return 0;
  }
  return id;
}

// Out-of-order and duplicate checks against each series' newest sample,
// head cuts, the pending list that commit_heads() moves into the heads
// after the WAL append. The batch owns its series (or runs exclusively),
// so this runs without the writer mutex.
void Db::apply(const BatchView& batch, const WriteScratch& sc, WriteResult& wr, BatchState& b) {
  auto samples = batch.samples();
  const size_t nheads = heads_.size();
  for (size_t i = 0; i < samples.size(); ++i) {
    // Each sample touches its series' state and head arrays, all over
    // memory: fetch them a few samples ahead (the ids are known already).
    // The head arrays' addresses come from the Head entries, so those
    // are fetched twice as far ahead (a nearer distance stalls on them).
    if (i + 16 < samples.size() && sc.ids[i + 16] < nheads) {
      const char* sp = reinterpret_cast<const char*>(&series_[sc.ids[i + 16]]);
      __builtin_prefetch(sp, 1);
      __builtin_prefetch(sp + sizeof(Series) - 1, 1);
      __builtin_prefetch(&heads_[sc.ids[i + 16]], 0);
    }
    if (i + 8 < samples.size() && sc.ids[i + 8] < nheads) {
      const Head& a = heads_[sc.ids[i + 8]];
      __builtin_prefetch(a.a.data() + a.n, 1);
    }
    uint32_t id = sc.ids[i];
    if (id == 0 || id == kNone) {
      ++wr.invalid;
      continue;
    }
    const moni_sample& smp = samples[i];
    Series& s = series_[id];
    touch(id, s, b);
    int64_t t = smp.timestamp_ms;
    uint64_t vbits = std::bit_cast<uint64_t>(smp.value);
    if (s.p_has && t <= s.p_max_t) {
      if (t < s.p_max_t)
        ++wr.out_of_order;
      else if (vbits == s.p_vbits)
        ++wr.duplicate_ignored;
      else
        ++wr.duplicate_rejected;
      continue;
    }
    if (s.p_head_n > 0 && (s.p_head_n >= opt_.head_chunk_samples ||
                           static_cast<uint64_t>(t) - static_cast<uint64_t>(s.p_head_t0) >=
                               static_cast<uint64_t>(opt_.max_chunk_range_ms)))
      cut(s, b);
    if (!s.p_drop) {
      // Into the head, past its published count: readers do not look there
      // until commit_heads() publishes it after the WAL append.
      Head& h = heads_[id];
      if (h.a.cap() <= s.p_inplace) head_room(h, s.p_inplace + 1, true);
      h.a.data()[s.p_inplace] = {t, smp.value};
      ++s.p_inplace;
      if (s.p_head_n == 0) s.p_head_t0 = t;
    } else {
      auto idx = static_cast<uint32_t>(b.pend.size());
      b.pend.push_back({s.p_cut_next ? id | kCutBit : id, kNone, t, smp.value});
      s.p_cut_next = false;
      if (s.p_last != kNone)
        b.pend[s.p_last].next = idx;
      else
        s.p_first = idx;
      s.p_last = idx;
      if (s.p_head_n == 0) {
        s.p_head_start = idx;
        s.p_head_t0 = t;
      }
    }
    ++s.p_head_n;
    s.p_has = true;
    s.p_max_t = t;
    s.p_vbits = vbits;
    ++wr.appended;
    b.max_t = std::max(b.max_t, t);
  }
}

// Marks the series' current head (the committed head unless already cut in
// this batch, then this batch's samples) as cut before its next sample;
// commit_heads() moves the cut samples out of the head and queues them for
// the background thread, which stores them as chunks.
void Db::cut(Series& s, BatchState& b) {
  s.p_drop = true;
  s.p_cut_next = true;
  s.p_head_start = kNone;
  s.p_head_n = 0;
  b.cut = true;
}

namespace {
// Encodes ts/vs[lo, hi) as one chunk, or split in halves while too big.
// From a head's (t, v) pairs when `hs` is set, else from ts/vs.
void encode_split(const int64_t* ts, const double* vs, const HeadSample* hs, size_t lo, size_t hi,
                  std::vector<std::pair<int64_t, std::string>>& out, size_t& n) {
  if (n == out.size()) out.emplace_back();
  std::string& blob = out[n].second;
  if (hs)
    encode_chunk_best(hs + lo, hi - lo, blob);
  else
    encode_chunk_best(ts + lo, vs + lo, hi - lo, blob);
  if (blob.size() > kMaxChunkBytes && hi - lo > 1) {
    size_t mid = lo + (hi - lo) / 2;
    encode_split(ts, vs, hs, lo, mid, out, n);
    encode_split(ts, vs, hs, mid, hi, out, n);
    return;
  }
  out[n++].first = hs ? hs[lo].t : ts[lo];
}
}  // namespace

// Queues the batch's cuts (made by commit_heads) for the background thread.
void Db::enqueue_cuts(BatchState& b) {
  if (b.cuts.empty()) return;
  {
    std::lock_guard<std::mutex> l(bg_mu_);
    uint64_t keep = bg_keep_from_.load();
    for (auto& cd : b.cuts) {
      bg_queued_samples_ += cd->n;
      keep = std::min(keep, cd->seq);
      bg_queue_.push_back(std::move(cd));
    }
    bg_enqueued_ += b.cuts.size();
    bg_keep_from_ = keep;
  }
  b.cuts.clear();
  bg_cv_.notify_one();
}

// Encodes the cut samples and puts the chunks in one transaction (growing
// the map as write() does). 0 or an LMDB/errno code.
int Db::store_cuts(const std::vector<std::shared_ptr<const CutData>>& work) {
  struct Encoded {
    std::vector<std::pair<int64_t, std::string>> out;  // (t0, chunk)
    std::vector<uint32_t> ids;
    size_t n = 0;
  };
  auto encode = [&work](size_t from, size_t to, Encoded& e) {
    for (size_t w = from; w < to; ++w) {
      const CutData& cd = *work[w];
      // A head's block goes to the codec as (t, v) pairs, without a copy.
      const HeadSample* hs = cd.arrays.cap() > 0 ? cd.arrays.data() : nullptr;
      for (size_t c = 0; c < cd.starts.size(); ++c) {
        size_t lo = cd.starts[c];
        size_t hi = c + 1 < cd.starts.size() ? cd.starts[c + 1] : cd.n;
        if (lo < hi) encode_split(cd.xts.data(), cd.xvs.data(), hs, lo, hi, e.out, e.n);
      }
      e.ids.resize(e.n, cd.id);
    }
  };
  // Aligned scrapes cut every series of a target in the same batch: a big
  // round is encoded on two threads (the second core is idle whenever the
  // writer waits for the next batch).
  Encoded parts[2];
  size_t half = work.size() >= 256 ? work.size() / 2 : 0;
  std::thread helper;
  if (half > 0) {
    try {
      helper = std::thread(encode, 0, half, std::ref(parts[0]));
    } catch (const std::system_error&) {
      encode(0, half, parts[0]);
    }
  }
  encode(half, work.size(), parts[1]);
  if (helper.joinable()) helper.join();
  for (int attempt = 0;; ++attempt) {
    int rc;
    {
      std::shared_lock<std::shared_mutex> rl(env_mu_);
      MDB_txn* txn = nullptr;
      rc = mdb_txn_begin(env_, nullptr, 0, &txn);
      if (rc == 0) {
        for (const Encoded& e : parts)
          for (size_t i = 0; i < e.n && rc == 0; ++i) {
            ChunkKey ck(e.ids[i], e.out[i].first);
            MDB_val k = ck.val(), v = mval(e.out[i].second);
            rc = mdb_put(txn, dbi_.chunks, &k, &v, 0);
          }
        if (rc == 0)
          rc = mdb_txn_commit(txn);
        else
          mdb_txn_abort(txn);
      }
    }
    if (rc == 0) {
      stats_.chunks_closed += parts[0].n + parts[1].n;
      return 0;
    }
    if (rc == MDB_MAP_RESIZED && attempt < 4) {
      adopt_map_size();
      continue;
    }
    if (rc == MDB_MAP_FULL && attempt < 4 && grow_map(map_size_.load() * 2)) continue;
    return rc;
  }
}

// The background thread: stores queued cuts, oldest first, in batches of
// whatever has queued up; then drops them from the readers' view. A failed
// attempt is retried every second (the samples stay in the WAL).
void Db::background_loop() {
  std::vector<std::shared_ptr<const CutData>> work;
  std::unique_lock<std::mutex> l(bg_mu_);
  for (;;) {
    if (work.empty())
      bg_cv_.wait(l, [&] { return bg_stop_ || !bg_queue_.empty(); });
    else
      bg_cv_.wait_for(l, std::chrono::seconds(1), [&] { return bg_stop_; });
    for (auto& cd : bg_queue_) work.push_back(std::move(cd));
    bg_queue_.clear();
    bool stopping = bg_stop_;
    if (work.empty()) {
      if (stopping) return;
      continue;
    }
    l.unlock();
    int rc = store_cuts(work);
    if (rc == 0) {
      std::unique_lock<std::shared_mutex> pl(pub_mu_);
      for (const auto& cd : work) {
        if (cd->id >= heads_.size()) continue;
        auto& cuts = heads_[cd->id].cuts;
        auto it = std::find(cuts.begin(), cuts.end(), cd);
        if (it != cuts.end()) cuts.erase(it);
      }
    }
    std::string err = rc ? lmdb_error("storing cut chunks", rc) : std::string();
    bool full = rc && out_of_space(rc);
    l.lock();
    if (rc == 0) {
      bg_done_ += work.size();
      for (const auto& cd : work) bg_queued_samples_ -= cd->n;
      work.clear();
      uint64_t keep = UINT64_MAX;
      for (const auto& cd : bg_queue_) keep = std::min(keep, cd->seq);
      bg_keep_from_ = keep;
      bg_error_.clear();
      bg_disk_full_ = false;
    } else {
      if (bg_error_.empty()) ++(full ? stats_.write_errors_disk_full : stats_.write_errors_other);
      bg_error_ = std::move(err);
      bg_disk_full_ = full;
    }
    bg_done_cv_.notify_all();
    if (stopping && (rc != 0 || bg_queue_.empty())) return;
  }
}

void Db::stop_background() {
  {
    std::lock_guard<std::mutex> l(bg_mu_);
    bg_stop_ = true;
  }
  bg_cv_.notify_all();
  if (bg_.joinable()) bg_.join();
}

Result<void> Db::wait_background() {
  std::unique_lock<std::mutex> l(bg_mu_);
  bg_done_cv_.wait(l, [&] { return bg_done_ == bg_enqueued_ || !bg_error_.empty(); });
  if (bg_done_ != bg_enqueued_)
    return make_error(bg_disk_full_ ? "lmdb_tsdb: disk full: " + bg_error_ : bg_error_);
  return {};
}
// Heads that hold the WAL back too long (slow or vanished series) are cut
// early, so the WAL stays around checkpoint_records collection cycles. The
// scan over all series runs every eighth of that, not per batch.
void Db::flush_stale_heads(BatchState& b) {
  uint64_t cp = checkpoint();
  if (wal_seq_ - wal_first_ <= cp || wal_seq_ < next_stale_scan_) return;
  next_stale_scan_ = wal_seq_ + std::max<uint64_t>(1, cp / 8);
  size_t n = std::min(series_.size(), heads_.size());
  for (uint32_t id = 1; id < n; ++id) {
    Series& s = series_[id];
    if (!s.live || heads_[id].n == 0 || s.head_seq + cp > wal_seq_) continue;
    touch(id, s, b);
    cut(s, b);
  }
}

// Deletes the WAL segments whose samples are all in stored chunks (cut
// samples count once the background thread has stored them). Their chunks
// must be on disk first: with "nometasync" LMDB's last commit may not be
// yet, so it is synced (once per segment, not per batch).
void Db::drop_wal_segments() {
  uint64_t keep = std::min(wal_keep_from_, bg_keep_from_.load());
  // Not before the chunks are on disk (retried at the next drop).
  if (wal_log_->droppable(keep) &&
      (opt_.sync != SyncMode::NoMetaSync || mdb_env_sync(env_, 1) == 0))
    wal_log_->drop_before(keep);
  wal_first_ = wal_log_->first_seq(wal_seq_);
}

Result<void> Db::flush_heads() {
  if (opt_.read_only) return {};
  Exclusive ex(*this);
  BatchState b;
  b.begin(gen_);
  size_t n = std::min(series_.size(), heads_.size());
  for (uint32_t id = 1; id < n; ++id) {
    Series& s = series_[id];
    if (!s.live || heads_[id].n == 0) continue;
    touch(id, s, b);
    cut(s, b);
  }
  commit_heads(b, wal_seq_);
  if (auto r = wait_background(); !r) return r.error();
  if (legacy_wal_) {
    maybe_grow_map(0);
    int rc;
    {
      std::shared_lock<std::shared_mutex> rl(env_mu_);
      MDB_txn* txn = nullptr;
      if ((rc = mdb_txn_begin(env_, nullptr, 0, &txn)) == 0) {
        rc = mdb_drop(txn, dbi_.wal, 0);
        if (rc == 0)
          rc = mdb_txn_commit(txn);
        else
          mdb_txn_abort(txn);
      }
    }
    if (rc) return make_error(lmdb_error("flushing heads", rc));
    legacy_wal_ = false;
  }
  wal_keep_from_ = wal_seq_;
  drop_wal_segments();
  if (wal_first_ >= wal_seq_) {
    // Every record's samples are in stored chunks, on disk before the
    // segments went: durable, also those a failed fdatasync covered (a
    // batch sent again then finds them as duplicates and succeeds).
    std::lock_guard<std::mutex> l(sync_mu_);
    durable_next_ = std::max(durable_next_, wal_seq_);
  }
  return {};
}

// After the WAL append (record `seq`): readers now see this batch's samples
// in the heads (written in place by apply(), published here by their
// count). The heads cut in this batch move (without a copy) to the
// background thread's queue, still readable through Head::cuts until it
// stored them; queued before pub_mu_ is released, so that whoever next
// looks for the oldest WAL record still needed finds them in the head or in
// the queue.
void Db::commit_heads(BatchState& b, uint64_t seq) {
  auto pl = lock_spinning(pub_mu_);
  if (heads_.size() < series_.size()) heads_.resize(series_.size());
  const std::vector<Pending>& pend = b.pend;
  for (size_t k = 0; k < b.touched.size(); ++k) {
    uint32_t id = b.touched[k];
    Series& s = series_[id];
    Head& h = heads_[id];
    if (!s.p_drop) {
      if (h.n == 0 && s.p_inplace > 0) {
        s.head_seq = seq;
        s.head_t0 = h.a.data()[0].t;
      }
      h.n = s.p_inplace;
    } else {
      // The head (committed samples and those this batch wrote in place
      // before the cut), then the pending samples; each one marked with
      // kCutBit starts a new chunk. What follows the last cut is the new
      // head, unless the batch ended with a cut.
      auto cd = std::make_shared<CutData>();
      cd->id = id;
      cd->seq = h.n == 0 ? seq : s.head_seq;
      // Usually the head is cut whole: before the first pending sample, or
      // with nothing after it (a flush). Its arrays then move to the cut
      // and the pending samples start a new head.
      bool whole = false;
      uint32_t pending = 0;
      if (s.p_first == kNone) {
        whole = s.p_cut_next;
      } else if ((pend[s.p_first].id & kCutBit) && s.p_inplace > 0 && !s.p_cut_next) {
        whole = true;
        for (uint32_t i = s.p_first; i != kNone; i = pend[i].next, ++pending)
          if (i != s.p_first && (pend[i].id & kCutBit)) whole = false;
      }
      h.n = 0;
      if (whole) {
        cd->arrays = std::move(h.a);
        cd->n = s.p_inplace;
        cd->starts.push_back(0);
        if (pending > 0) {
          h.a = pool_.get(std::max<size_t>(opt_.head_chunk_samples, pending));
          for (uint32_t i = s.p_first; i != kNone; i = pend[i].next, ++h.n) {
            h.a.data()[h.n] = {pend[i].t, pend[i].v};
          }
          s.head_seq = seq;
          s.head_t0 = h.a.data()[0].t;
        }
      } else {
        std::vector<int64_t>& ts = cd->xts;
        std::vector<double>& vs = cd->xvs;
        if (s.p_inplace > 0) {
          ts.resize(s.p_inplace);
          vs.resize(s.p_inplace);
          for (uint32_t i = 0; i < s.p_inplace; ++i) {
            ts[i] = h.a.data()[i].t;
            vs[i] = h.a.data()[i].v;
          }
        }
        cd->starts.push_back(0);
        for (uint32_t i = s.p_first; i != kNone; i = pend[i].next) {
          if ((pend[i].id & kCutBit) && !ts.empty())
            cd->starts.push_back(static_cast<uint32_t>(ts.size()));
          ts.push_back(pend[i].t);
          vs.push_back(pend[i].v);
        }
        size_t tail = s.p_cut_next ? ts.size() : cd->starts.back();
        size_t keep = ts.size() - tail;
        if (keep > 0) {
          // The head keeps its arrays (their samples are copied above).
          if (h.a.cap() < keep) h.a = pool_.get(std::max<size_t>(opt_.head_chunk_samples, keep));
          for (size_t i = 0; i < keep; ++i) h.a.data()[i] = {ts[tail + i], vs[tail + i]};
          h.n = static_cast<uint32_t>(keep);
          s.head_seq = seq;
          s.head_t0 = h.a.data()[0].t;
          ts.resize(tail);
          vs.resize(tail);
          cd->starts.pop_back();
        }
        cd->arrays.reset();
        cd->n = ts.size();
      }
      s.p_cut_next = false;
      if (cd->n > 0) {
        h.cuts.push_back(cd);
        b.cuts.push_back(std::move(cd));
      }
    }
    s.has_data = s.p_has;
    s.max_t = s.p_max_t;
    s.last_vbits = s.p_vbits;
  }
  enqueue_cuts(b);
}

// A head's arrays have room for `need` samples. They are resized (a new
// allocation) only while readers cannot look: pub_mu_ held exclusively, or
// during load().
void Db::head_room(Head& h, size_t need, bool lock) {
  if (h.a.cap() >= need) return;
  // Samples written in place past n are kept too: all of the old arrays.
  HeadArrays a =
      pool_.get(std::max<size_t>({need, opt_.head_chunk_samples, size_t{h.a.cap()} * 2}));
  if (h.a.cap() > 0) {
    std::copy(h.a.data(), h.a.data() + h.a.cap(), a.data());
  }
  std::unique_lock<std::shared_mutex> pl(pub_mu_, std::defer_lock);
  if (lock) pl.lock();
  h.a = std::move(a);
}

// Applies one WAL record (series id and timestamp as zigzag deltas, raw
// value bits) to the heads; samples already in a stored chunk are skipped.
// With check_ids, a record naming a series LMDB does not know is refused
// whole: its batch's transaction never committed.
Db::Replay Db::replay_record(uint64_t seq, std::string_view rec, bool check_ids) {
  for (int pass = check_ids ? 0 : 1; pass < 2; ++pass) {
    std::string_view in = rec;
    uint32_t id = 0;
    int64_t t = 0;
    while (!in.empty()) {
      uint64_t zid, zts;
      if (!get_varint(in, zid) || !get_varint(in, zts) || in.size() < 8) return Replay::Corrupt;
      id = static_cast<uint32_t>(static_cast<int64_t>(id) +
                                 static_cast<int64_t>((zid >> 1) ^ (~(zid & 1) + 1)));
      t = static_cast<int64_t>(static_cast<uint64_t>(t) + ((zts >> 1) ^ (~(zts & 1) + 1)));
      uint64_t vbits;
      std::memcpy(&vbits, in.data(), 8);
      in.remove_prefix(8);
      if (pass == 0) {
        if (id == 0 || id >= next_id_) return Replay::UnknownSeries;
        continue;
      }
      if (id >= series_.size() || !series_[id].live) continue;  // deleted by retention
      Series& s = series_[id];
      if (s.has_data && t <= s.max_t) continue;  // already in a stored chunk
      Head& h = heads_[id];
      if (h.n == 0) {
        s.head_seq = seq;
        s.head_t0 = t;
      }
      head_room(h, h.n + 1, false);
      h.a.data()[h.n] = {t, std::bit_cast<double>(vbits)};
      ++h.n;
      s.has_data = true;
      s.max_t = t;
      s.last_vbits = vbits;
    }
  }
  return Replay::Applied;
}

// The LMDB wal table: records of a database written by an earlier version
// (or of a backup copy); open() moves them into chunks right away.
Result<void> Db::replay_wal(MDB_txn* txn) {
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn, dbi_.wal, &cur);
  if (rc) return make_error(lmdb_error("reading the WAL", rc));
  MDB_val k, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint64_t seq = get_be64(k.mv_data);
    legacy_wal_ = true;
    wal_seq_ = seq + 1;
    if (replay_record(seq, sview(v), false) != Replay::Applied) {
      mdb_cursor_close(cur);
      return make_error("lmdb_tsdb: WAL record " + std::to_string(seq) + " in " + opt_.path +
                        " is corrupt");
    }
  }
  mdb_cursor_close(cur);
  return {};
}

// The WAL segment files. A torn last record (crash mid-write) or one whose
// batch never committed ends the log; the files are cut back there.
Result<void> Db::replay_wal_log() {
  wal_log_ = std::make_unique<WalLog>();
  if (auto r = wal_log_->open(opt_.path, wal_token_, true); !r) return r;
  wal_log_->set_durable(opt_.sync != SyncMode::None);
  auto r = wal_log_->replay([this](uint64_t seq, std::string_view rec) {
    if (replay_record(seq, rec, true) != Replay::Applied) return WalLog::Verdict::Stop;
    wal_seq_ = std::max(wal_seq_, seq + 1);
    return WalLog::Verdict::Apply;
  });
  if (!r) return r;
  wal_first_ = wal_log_->first_seq(wal_seq_);
  wal_keep_from_ = oldest_head_seq();
  appended_next_ = wal_seq_;
  durable_next_ = wal_seq_;
  return {};
}

Result<std::unique_ptr<Db::ReadTxn>> Db::begin_read_with_head(uint32_t id, int64_t mint,
                                                              int64_t maxt,
                                                              std::vector<int64_t>& ts,
                                                              std::vector<double>& vs) {
  // Holding pub_mu_ while the snapshot is taken keeps the heads no newer
  // than the snapshot, so a chunk cut meanwhile is never missed.
  std::shared_lock<std::shared_mutex> pl(pub_mu_);
  auto rt = begin_read();
  if (!rt) return rt;
  ts.clear();
  vs.clear();
  auto add_head = [&](const HeadSample* hs, size_t n) {
    auto lo = std::partition_point(hs, hs + n, [&](const HeadSample& x) { return x.t < mint; });
    for (const HeadSample* p = lo; p < hs + n && p->t <= maxt; ++p) {
      ts.push_back(p->t);
      vs.push_back(p->v);
    }
  };
  auto add = [&](const int64_t* hts, const double* hvs, size_t n) {
    auto lo = std::lower_bound(hts, hts + n, mint) - hts;
    auto hi = std::upper_bound(hts, hts + n, maxt) - hts;
    if (lo < hi) {
      ts.insert(ts.end(), hts + lo, hts + hi);
      vs.insert(vs.end(), hvs + lo, hvs + hi);
    }
  };
  if (id < heads_.size()) {
    // Cut samples the background thread has not stored yet come first (a
    // snapshot that already has their chunk skips them as seen).
    const Head& h = heads_[id];
    for (const auto& cd : h.cuts) {
      if (cd->arrays.cap() > 0)
        add_head(cd->arrays.data(), cd->n);
      else
        add(cd->xts.data(), cd->xvs.data(), cd->n);
    }
    add_head(h.a.data(), h.n);
  }
  return rt;
}

}  // namespace moni::tsdb
