// Retention by age and by size. Deletes whole chunks (and then series with
// nothing left) in small write transactions, taking the writer lock per
// transaction only, so that appends wait at most one small step.
#include <algorithm>

#include "label_set.hpp"
#include "lmdb_keys.hpp"
#include "tsdb.hpp"

namespace moni::tsdb {

namespace {
constexpr int kStepWork = 2000;  // deletions or series visited per transaction
}

int Db::delete_series(MDB_txn* txn, uint32_t id, std::string& bytes) {
  IdKey ik(id);
  MDB_val k = ik.val(), v;
  int rc = mdb_get(txn, dbi_.series, &k, &v);
  if (rc) return rc;
  bytes.assign(sview(v));
  std::vector<moni_label> ls;
  decode_labels(bytes, ls);
  std::string pk;
  for (const auto& l : ls) {
    posting_key(sv(l.name), sv(l.value), pk);
    MDB_val pkv = mval(pk), pv = ik.val();
    rc = mdb_del(txn, dbi_.postings, &pkv, &pv);
    if (rc && rc != MDB_NOTFOUND) return rc;
  }
  k = ik.val();
  return mdb_del(txn, dbi_.series, &k, nullptr);
}

Result<bool> Db::retention_pass(int64_t cutoff, bool by_size) {
  bool any = false;
  uint32_t id = 1;
  for (;;) {
    Exclusive ex(*this);
    if (id >= series_.size()) break;
    // A series is deleted only with no cut chunk of it still to be stored.
    if (auto w = wait_background(); !w) return w.error();
    std::vector<std::pair<uint32_t, std::string>> gone;
    uint64_t deleted = 0;
    int rc;
    {
      std::shared_lock<std::shared_mutex> rl(env_mu_);
      MDB_txn* txn = nullptr;
      if ((rc = mdb_txn_begin(env_, nullptr, 0, &txn)))
        return make_error(lmdb_error("retention", rc));
      MDB_cursor* cur = nullptr;
      rc = mdb_cursor_open(txn, dbi_.chunks, &cur);
      for (int work = 0; rc == 0 && id < series_.size() && work < kStepWork; ++id, ++work) {
        Series& s = series_[id];
        if (!s.live) continue;
        bool chunks_left = false;
        for (;;) {
          ChunkKey ck(id, INT64_MIN);
          MDB_val k = ck.val(), v;
          int g = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
          if (g || chunk_key_id(k) != id) break;
          ChunkInfo ci;
          if (chunk_info(chunk_key_t0(k), sview(v), ci) && ci.maxt >= cutoff) {
            chunks_left = true;
            break;
          }
          if ((rc = mdb_cursor_del(cur, 0))) break;
          ++deleted;
          ++work;
        }
        if (rc) break;
        if (!chunks_left && s.has_data && s.max_t < cutoff) {
          std::string bytes;
          if ((rc = delete_series(txn, id, bytes))) break;
          gone.emplace_back(id, std::move(bytes));
        }
      }
      if (cur) mdb_cursor_close(cur);
      if (rc == 0)
        rc = mdb_txn_commit(txn);
      else
        mdb_txn_abort(txn);
    }
    if (rc) return make_error(lmdb_error("retention", rc));
    {
      std::unique_lock<std::shared_mutex> pl(pub_mu_);
      std::vector<moni_label> ls;
      for (auto& [g, bytes] : gone) {
        if (decode_labels(bytes, ls)) {
          auto h = by_hash_.find(label_set_hash(ls.data(), static_cast<uint32_t>(ls.size())));
          if (h != by_hash_.end() && h->second == g) by_hash_.erase(h);
        }
        index_.erase(bytes);
        series_[g] = Series{};
        if (g < heads_.size()) heads_[g] = Head{};
      }
    }
    if (!gone.empty()) wal_keep_from_ = oldest_head_seq();
    stats_.series -= static_cast<int64_t>(gone.size());
    stats_.retention_series += gone.size();
    (by_size ? stats_.retention_chunks_size : stats_.retention_chunks_age) += deleted;
    any |= deleted > 0 || !gone.empty();
  }
  return any;
}

Result<void> Db::enforce_retention() {
  return enforce_retention(opt_.retention_ms, opt_.retention_bytes);
}

Result<void> Db::enforce_retention(int64_t retention_ms, uint64_t retention_bytes) {
  int64_t max_t = max_t_.load();
  if (max_t == INT64_MIN) return {};
  if (retention_ms > 0 && max_t > INT64_MIN + retention_ms) {
    auto r = retention_pass(max_t - retention_ms, false);
    if (!r) return r.error();
  }
  if (retention_bytes == 0) return {};
  for (int round = 0; round < 256 && used_bytes() > retention_bytes; ++round) {
    // The oldest data: the smallest end time of any series' first chunk.
    int64_t oldest = INT64_MAX;
    {
      auto rt = begin_read();
      if (!rt) return rt.error();
      MDB_cursor* cur = nullptr;
      if (mdb_cursor_open((*rt)->txn, dbi_.chunks, &cur)) break;
      MDB_val k, v;
      int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
      while (rc == 0) {
        uint32_t id = chunk_key_id(k);
        ChunkInfo ci;
        if (chunk_info(chunk_key_t0(k), sview(v), ci)) oldest = std::min(oldest, ci.maxt);
        ChunkKey next(id + 1, INT64_MIN);
        k = next.val();
        if (id == UINT32_MAX) break;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
      }
      mdb_cursor_close(cur);
    }
    if (oldest == INT64_MAX) break;  // only head chunks left
    int64_t step = std::max<int64_t>(3600000, (max_t - oldest) / 16);
    int64_t cutoff = oldest > INT64_MAX - step ? INT64_MAX : oldest + step;
    auto r = retention_pass(cutoff, true);
    if (!r) return r.error();
    if (!*r) break;
  }
  return {};
}

}  // namespace moni::tsdb
