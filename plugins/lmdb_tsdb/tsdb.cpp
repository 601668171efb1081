// Opening the database, loading the writer's in-memory state, and the
// append path (one LMDB write transaction per batch).
#include "tsdb.hpp"

#include <sys/resource.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "label_set.hpp"
#include "lmdb_keys.hpp"
#include "metadata_record.hpp"

namespace moni::tsdb {

namespace fs = std::filesystem;

namespace {
constexpr std::string_view kFormat = "moni-lmdb-tsdb-1";
// Closed chunks stay well inside a 4 KiB page (no LMDB overflow pages).
constexpr size_t kMaxChunkBytes = 1536;
constexpr uint64_t kMapHeadroom = 64ULL << 20;

void head_value(const ChunkEncoder& head, std::string& blob, std::string& out) {
  head.serialize(blob);
  out.resize(8);
  put_be64(out.data(), static_cast<uint64_t>(head.t0()) ^ 0x8000000000000000ULL);
  out.append(blob);
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

Result<std::unique_ptr<Db>> Db::open(const Options& opt) {
  std::unique_ptr<Db> db(new Db(opt));
  if (auto r = db->open_env(); !r) return r.error();
  if (!opt.read_only)
    if (auto r = db->load(); !r) return r.error();
  return db;
}

Db::~Db() {
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
      {"series", c, &dbi_.series}, {"postings", c | MDB_DUPSORT | MDB_DUPFIXED, &dbi_.postings},
      {"chunks", c, &dbi_.chunks}, {"heads", c, &dbi_.heads},
      {"meta", c, &dbi_.meta},     {"metadata", c, &dbi_.metadata},
      {"wal", c, &dbi_.wal}};
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
    return make_error("lmdb_tsdb: " + opt_.path + " holds format \"" + std::string(sview(v)) +
                      "\", expected \"" + std::string(kFormat) + "\"");
  }
  if (rc && rc != MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return make_error(lmdb_error("reading the format", rc));
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
  // Series table -> in-memory index.
  mdb_cursor_open(txn, dbi_.series, &cur);
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint32_t id = get_be32(k.mv_data);
    if (series_.size() <= id) series_.resize(id + 1);
    series_[id].live = true;
    index_.emplace(std::string(sview(v)), id);
  }
  mdb_cursor_close(cur);
  if (series_.empty()) series_.resize(1);
  // Head chunks.
  mdb_cursor_open(txn, dbi_.heads, &cur);
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint32_t id = get_be32(k.mv_data);
    if (id >= series_.size() || v.mv_size < 8) continue;
    Series& s = series_[id];
    int64_t t0 = static_cast<int64_t>(get_be64(v.mv_data) ^ 0x8000000000000000ULL);
    std::string_view blob = sview(v).substr(8);
    ts_.clear();
    vs_.clear();
    if (!decode_chunk(t0, blob, ts_, vs_) || !s.head.load(t0, blob))
      return make_error("lmdb_tsdb: the head chunk of series " + std::to_string(id) + " in " +
                        opt_.path + " is corrupt");
    s.has_data = true;
    s.max_t = ts_.back();
    s.last_vbits = std::bit_cast<uint64_t>(vs_.back());
  }
  mdb_cursor_close(cur);
  // Series without a head (rare): their newest sample is in the last chunk.
  mdb_cursor_open(txn, dbi_.chunks, &cur);
  int64_t max_t = INT64_MIN;
  uint64_t live = 0;
  for (uint32_t id = 1; id < series_.size(); ++id) {
    Series& s = series_[id];
    if (!s.live) continue;
    ++live;
    if (!s.has_data) {
      ChunkKey ck(id + 1, INT64_MIN);
      k = ck.val();
      int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
      rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
      if (rc == 0 && chunk_key_id(k) == id) {
        ts_.clear();
        vs_.clear();
        if (decode_chunk(chunk_key_t0(k), sview(v), ts_, vs_)) {
          s.has_data = true;
          s.max_t = ts_.back();
          s.last_vbits = std::bit_cast<uint64_t>(vs_.back());
          s.last_chunk_t0 = chunk_key_t0(k);
          s.last_chunk_count = static_cast<uint32_t>(ts_.size());
          s.last_chunk_known = true;
        }
      }
    }
    if (s.has_data) max_t = std::max(max_t, s.max_t);
  }
  mdb_cursor_close(cur);
  {
    MDB_val nk = mval("next_id"), nv;
    if (mdb_get(txn, dbi_.meta, &nk, &nv) == 0 && nv.mv_size == 4) next_id_ = get_be32(nv.mv_data);
    next_id_ = std::max<uint32_t>(next_id_, static_cast<uint32_t>(series_.size()));
  }
  if (auto r = replay_wal(txn); !r) return r;
  for (uint32_t id = 1; id < series_.size(); ++id)
    if (series_[id].has_data) max_t = std::max(max_t, series_[id].max_t);
  published_.resize(series_.size());
  for (uint32_t id = 1; id < series_.size(); ++id) publish(id);
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
    // Another process grew the map: adopt its size.
    std::unique_lock<std::shared_mutex> ul(env_mu_);
    mdb_env_set_mapsize(env_, 0);
    MDB_envinfo info;
    mdb_env_info(env_, &info);
    map_size_ = info.me_mapsize;
  }
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

Result<WriteResult> Db::write(const BatchView& batch) {
  if (opt_.read_only) return make_error("lmdb_tsdb: the database is open read-only");
  std::lock_guard<std::mutex> wl(write_mu_);
  maybe_grow_map(batch.size());
  for (int attempt = 0;; ++attempt) {
    WriteResult wr;
    int rc;
    bool applied = false;
    {
      std::shared_lock<std::shared_mutex> rl(env_mu_);
      MDB_txn* txn = nullptr;
      rc = mdb_txn_begin(env_, nullptr, 0, &txn);
      if (rc == 0) {
        ++gen_;
        undo_n_ = 0;
        series_before_ = series_.size();
        new_keys_.clear();
        dirty_.clear();
        cut_ids_.clear();
        checkpointed_ = false;
        next_id_before_ = next_id_;
        rec_.clear();
        rec_prev_ts_ = 0;
        rec_prev_id_ = 0;
        pending_meta_.clear();
        batch_max_t_ = INT64_MIN;
        applied = true;
        rc = apply(txn, batch, wr);
        if (rc == 0)
          rc = mdb_txn_commit(txn);
        else
          mdb_txn_abort(txn);
      }
    }
    if (rc == 0) {
      {
        std::unique_lock<std::shared_mutex> pl(pub_mu_);
        if (published_.size() < series_.size()) published_.resize(series_.size());
        for (uint32_t id : dirty_) publish(id);
      }
      if (!rec_.empty()) {
        ++wal_seq_;
        ++wal_records_;
      }
      if (checkpointed_) {
        for (uint32_t id : ckpt_ids_)
          if (id < series_.size()) series_[id].ckpt_dirty = false;
        ckpt_ids_.clear();
        wal_records_ = 0;
      }
      for (auto& m : pending_meta_) meta_[m.family] = std::move(m);
      if (batch_max_t_ > max_t_.load()) max_t_ = batch_max_t_;
      stats_.series += static_cast<int64_t>(new_keys_.size());
      stats_.samples_appended += wr.appended;
      stats_.out_of_order += wr.out_of_order;
      stats_.duplicate_rejected += wr.duplicate_rejected;
      stats_.duplicate_ignored += wr.duplicate_ignored;
      stats_.invalid += wr.invalid;
      ++stats_.commits;
      return wr;
    }
    if (applied) rollback();
    if (rc == MDB_MAP_RESIZED && attempt < 4) {
      std::unique_lock<std::shared_mutex> ul(env_mu_);
      mdb_env_set_mapsize(env_, 0);
      MDB_envinfo info;
      mdb_env_info(env_, &info);
      map_size_ = info.me_mapsize;
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
      return make_error("lmdb_tsdb: disk full: the batch of " + std::to_string(batch.size()) +
                        " samples was not stored in " + opt_.path +
                        " (free space or lower retention_size; appends resume by themselves)");
    }
    ++stats_.write_errors_other;
    return make_error(lmdb_error("appending a batch", rc));
  }
}

void Db::rollback() {
  for (size_t i = 0; i < undo_n_; ++i) {
    Undo& u = undo_[i];
    Series& s = series_[u.id];
    ChunkEncoder head = std::move(s.head);
    s = std::move(u.scalars);
    s.head = std::move(head);
    if (u.full)
      s.head = u.head;
    else
      s.head.restore(u.mark);
  }
  for (const auto& k : new_keys_) index_.erase(k);
  series_.resize(series_before_);
  next_id_ = next_id_before_;
  undo_n_ = 0;
}

int Db::apply(MDB_txn* txn, const BatchView& batch, WriteResult& wr) {
  int rc;
  for (const moni_sample& smp : batch.samples()) {
    key_.clear();
    bool valid = smp.label_count > 0;
    for (uint32_t i = 0; i < smp.label_count && valid; ++i)
      valid = smp.labels[i].name.len > 0 && smp.labels[i].name.len <= kMaxLabelName;
    if (!valid) {
      ++wr.invalid;
      continue;
    }
    encode_labels(smp.labels, smp.label_count, key_);
    auto it = index_.find(std::string_view(key_));
    uint32_t id;
    if (it == index_.end()) {
      id = next_id_++;
      series_.resize(id + 1);
      Series& ns = series_[id];
      ns.live = true;
      ns.last_chunk_known = true;
      ns.gen = gen_;
      index_.emplace(key_, id);
      new_keys_.push_back(key_);
      IdKey ik(id);
      MDB_val k = ik.val(), v = mval(key_);
      if ((rc = mdb_put(txn, dbi_.series, &k, &v, 0))) return rc;
      for (uint32_t i = 0; i < smp.label_count; ++i) {
        posting_key(sv(smp.labels[i].name), sv(smp.labels[i].value), buf_);
        MDB_val pk = mval(buf_), pv = ik.val();
        if ((rc = mdb_put(txn, dbi_.postings, &pk, &pv, 0))) return rc;
      }
    } else {
      id = it->second;
    }
    Series& s = series_[id];
    if (s.gen != gen_) {
      save_undo(id, s);
      s.gen = gen_;
      s.cut = false;
    }
    int64_t t = smp.timestamp_ms;
    uint64_t vbits = std::bit_cast<uint64_t>(smp.value);
    if (s.has_data && t <= s.max_t) {
      if (t < s.max_t)
        ++wr.out_of_order;
      else if (vbits == s.last_vbits)
        ++wr.duplicate_ignored;
      else
        ++wr.duplicate_rejected;
      continue;
    }
    bool cutting =
        !s.head.empty() && (s.head.count() >= opt_.head_chunk_samples ||
                            static_cast<uint64_t>(t) - static_cast<uint64_t>(s.head.t0()) >=
                                static_cast<uint64_t>(opt_.max_chunk_range_ms));
    if (cutting || s.head.needs_reencode(smp.value)) full_undo(id, s);
    if (!s.head.empty() && (s.head.count() >= opt_.head_chunk_samples ||
                            static_cast<uint64_t>(t) - static_cast<uint64_t>(s.head.t0()) >=
                                static_cast<uint64_t>(opt_.max_chunk_range_ms))) {
      if ((rc = cut_head(txn, id, s))) return rc;
      if (!s.cut) {
        s.cut = true;
        cut_ids_.push_back(id);
      }
    }
    s.head.append(t, smp.value);
    s.max_t = t;
    s.has_data = true;
    s.last_vbits = vbits;
    if (s.dirty_gen != gen_) {
      s.dirty_gen = gen_;
      dirty_.push_back(id);
    }
    if (!s.ckpt_dirty) {
      s.ckpt_dirty = true;
      ckpt_ids_.push_back(id);
    }
    // WAL record entry: id and timestamp as zigzag deltas, raw value bits.
    int64_t did = static_cast<int64_t>(id) - static_cast<int64_t>(rec_prev_id_);
    put_varint(rec_, (static_cast<uint64_t>(did) << 1) ^ static_cast<uint64_t>(did >> 63));
    uint64_t dts = static_cast<uint64_t>(t) - static_cast<uint64_t>(rec_prev_ts_);
    put_varint(rec_, (dts << 1) ^ static_cast<uint64_t>(static_cast<int64_t>(dts) >> 63));
    char vb[8];
    std::memcpy(vb, &vbits, 8);
    rec_.append(vb, 8);
    rec_prev_id_ = id;
    rec_prev_ts_ = t;
    ++wr.appended;
    batch_max_t_ = std::max(batch_max_t_, t);
  }
  if (next_id_ != next_id_before_) {
    char nb[4];
    put_be32(nb, next_id_);
    MDB_val k = mval("next_id"), v = {4, nb};
    if ((rc = mdb_put(txn, dbi_.meta, &k, &v, 0))) return rc;
  }
  if (!rec_.empty()) {
    char kb[8];
    put_be64(kb, wal_seq_);
    MDB_val k = {8, kb}, v = mval(rec_);
    if ((rc = mdb_put(txn, dbi_.wal, &k, &v, MDB_APPEND))) return rc;
  }
  // Heads that were cut are written now, so that replaying the WAL never
  // has to cut (it skips samples at or before a stored head's end).
  for (uint32_t id : cut_ids_) {
    head_value(series_[id].head, blob_, buf_);
    IdKey ik(id);
    MDB_val k = ik.val(), v = mval(buf_);
    if ((rc = mdb_put(txn, dbi_.heads, &k, &v, 0))) return rc;
  }
  if (wal_records_ + 1 >= opt_.checkpoint_records)
    if ((rc = checkpoint(txn))) return rc;
  for (const moni_metadata& m : batch.metadata()) {
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
    if ((rc = mdb_put(txn, dbi_.metadata, &k, &v, 0))) return rc;
    pending_meta_.push_back({std::string(fam), static_cast<MetricType>(m.type),
                             std::string(sv(m.help)), std::string(sv(m.unit))});
  }
  return 0;
}

// Writes every head changed since the last checkpoint and empties the WAL.
int Db::checkpoint(MDB_txn* txn) {
  int rc;
  std::sort(ckpt_ids_.begin(), ckpt_ids_.end());
  ckpt_ids_.erase(std::unique(ckpt_ids_.begin(), ckpt_ids_.end()), ckpt_ids_.end());
  for (uint32_t id : ckpt_ids_) {
    if (id >= series_.size() || !series_[id].live) continue;
    IdKey ik(id);
    MDB_val k = ik.val();
    if (series_[id].head.empty()) {
      rc = mdb_del(txn, dbi_.heads, &k, nullptr);
      if (rc && rc != MDB_NOTFOUND) return rc;
      continue;
    }
    head_value(series_[id].head, blob_, buf_);
    MDB_val v = mval(buf_);
    if ((rc = mdb_put(txn, dbi_.heads, &k, &v, 0))) return rc;
  }
  if ((rc = mdb_drop(txn, dbi_.wal, 0))) return rc;
  checkpointed_ = true;
  return 0;
}

Result<void> Db::replay_wal(MDB_txn* txn) {
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn, dbi_.wal, &cur);
  if (rc) return make_error(lmdb_error("reading the WAL", rc));
  MDB_val k, v;
  uint64_t records = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    ++records;
    wal_seq_ = get_be64(k.mv_data) + 1;
    std::string_view in = sview(v);
    uint32_t id = 0;
    int64_t t = 0;
    while (!in.empty()) {
      uint64_t zid, zts;
      if (!get_varint(in, zid) || !get_varint(in, zts) || in.size() < 8) {
        mdb_cursor_close(cur);
        return make_error("lmdb_tsdb: WAL record " + std::to_string(get_be64(k.mv_data)) + " in " +
                          opt_.path + " is corrupt");
      }
      id = static_cast<uint32_t>(static_cast<int64_t>(id) +
                                 static_cast<int64_t>((zid >> 1) ^ (~(zid & 1) + 1)));
      t = static_cast<int64_t>(static_cast<uint64_t>(t) + ((zts >> 1) ^ (~(zts & 1) + 1)));
      uint64_t vbits;
      std::memcpy(&vbits, in.data(), 8);
      in.remove_prefix(8);
      if (id >= series_.size() || !series_[id].live) continue;
      Series& s = series_[id];
      if (s.has_data && t <= s.max_t) continue;  // already in a stored head or chunk
      s.head.append(t, std::bit_cast<double>(vbits));
      s.has_data = true;
      s.max_t = t;
      s.last_vbits = vbits;
      if (!s.ckpt_dirty) {
        s.ckpt_dirty = true;
        ckpt_ids_.push_back(id);
      }
    }
  }
  mdb_cursor_close(cur);
  wal_records_ = static_cast<uint32_t>(records);
  return {};
}

void Db::save_undo(uint32_t id, Series& s) {
  if (undo_n_ == undo_.size()) undo_.emplace_back();
  Undo& u = undo_[undo_n_];
  s.undo_slot = static_cast<uint32_t>(undo_n_++);
  u.id = id;
  // Copy the scalars without the head's bytes.
  ChunkEncoder head = std::move(s.head);
  u.scalars = s;
  s.head = std::move(head);
  u.mark = s.head.mark();
  u.full = false;
}

void Db::full_undo(uint32_t id, Series& s) {
  // A series created in this batch has no undo slot: rollback drops it whole.
  if (id >= series_before_ || s.undo_slot >= undo_n_) return;
  Undo& u = undo_[s.undo_slot];
  if (u.id != id || u.full) return;
  // The head is about to be rewritten: keep it as of the batch start.
  u.head = s.head;
  u.head.restore(u.mark);
  u.full = true;
}

// Copies only the bytes appended since the last publish when the head was
// not rewritten meanwhile (the last byte may have gained bits).
void Db::publish(uint32_t id) {
  PublishedHead& p = published_[id];
  const Series& s = series_[id];
  if (!s.live || s.head.empty()) {
    p.header.clear();
    p.bits.clear();
    p.epoch = UINT64_MAX;
    return;
  }
  std::string_view bits = s.head.bits();
  if (p.epoch == s.head.epoch() && !p.bits.empty() && p.bits.size() <= bits.size()) {
    size_t keep = p.bits.size() - 1;
    p.bits.resize(keep);
    p.bits.append(bits.substr(keep));
  } else {
    p.bits.assign(bits);
    p.epoch = s.head.epoch();
  }
  p.t0 = s.head.t0();
  s.head.serialize_header(p.header);
}

bool Db::published_head(uint32_t id, int64_t& t0, std::string& blob) {
  std::shared_lock<std::shared_mutex> pl(pub_mu_);
  if (id >= published_.size() || published_[id].header.empty()) return false;
  const PublishedHead& p = published_[id];
  t0 = p.t0;
  blob.assign(p.header);
  blob.append(p.bits);
  return true;
}

int Db::cut_head(MDB_txn* txn, uint32_t id, Series& s) {
  int rc;
  ts_.clear();
  vs_.clear();
  if (!s.last_chunk_known) {
    MDB_cursor* cur = nullptr;
    if ((rc = mdb_cursor_open(txn, dbi_.chunks, &cur))) return rc;
    ChunkKey ck(id + 1, INT64_MIN);
    MDB_val k = ck.val(), v;
    rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    rc = rc == 0 ? mdb_cursor_get(cur, &k, &v, MDB_PREV) : mdb_cursor_get(cur, &k, &v, MDB_LAST);
    s.last_chunk_count = 0;
    ChunkInfo ci;
    if (rc == 0 && chunk_key_id(k) == id && chunk_info(chunk_key_t0(k), sview(v), ci)) {
      s.last_chunk_t0 = chunk_key_t0(k);
      s.last_chunk_count = ci.count;
    }
    mdb_cursor_close(cur);
    s.last_chunk_known = true;
  }
  // Merge into the newest closed chunk while it stays small: fewer, larger
  // chunks mean less per-chunk overhead on disk.
  int64_t key_t0 = s.head.t0();
  bool merged = false;
  if (s.last_chunk_count > 0 && s.last_chunk_count + s.head.count() <= opt_.max_chunk_samples &&
      static_cast<uint64_t>(s.head.maxt()) - static_cast<uint64_t>(s.last_chunk_t0) <
          static_cast<uint64_t>(opt_.max_chunk_range_ms) * 4) {
    ChunkKey ck(id, s.last_chunk_t0);
    MDB_val k = ck.val(), v;
    if ((rc = mdb_get(txn, dbi_.chunks, &k, &v)) == 0 &&
        decode_chunk(s.last_chunk_t0, sview(v), ts_, vs_)) {
      size_t n0 = ts_.size();
      s.head.serialize(blob_);
      if (decode_chunk(s.head.t0(), blob_, ts_, vs_)) {
        encode_chunk_best(ts_.data(), vs_.data(), ts_.size(), blob_);
        if (blob_.size() <= kMaxChunkBytes) {
          merged = true;
          key_t0 = s.last_chunk_t0;
        }
      }
      if (!merged) {
        ts_.erase(ts_.begin(), ts_.begin() + static_cast<std::ptrdiff_t>(n0));
        vs_.erase(vs_.begin(), vs_.begin() + static_cast<std::ptrdiff_t>(n0));
      }
    } else if (rc && rc != MDB_NOTFOUND) {
      return rc;
    }
  }
  if (!merged) {
    ts_.clear();
    vs_.clear();
    s.head.serialize(blob_);
    decode_chunk(s.head.t0(), blob_, ts_, vs_);
    encode_chunk_best(ts_.data(), vs_.data(), ts_.size(), blob_);
  }
  ChunkKey ck(id, key_t0);
  MDB_val k = ck.val(), v = mval(blob_);
  if ((rc = mdb_put(txn, dbi_.chunks, &k, &v, 0))) return rc;
  s.last_chunk_t0 = key_t0;
  s.last_chunk_count = static_cast<uint32_t>(ts_.size());
  s.head.reset();
  ++stats_.chunks_closed;
  return 0;
}

}  // namespace moni::tsdb
