#include "disk_queue.hpp"

#include <lmdb.h>

#include <algorithm>
#include <cstring>
#include <filesystem>

namespace moni::remote_write {

namespace {

constexpr size_t kKeySize = 11;           // 'r' + be16 partition + be64 seq
constexpr size_t kHeaderSize = 12;        // le64 enqueued_ms + le32 samples
constexpr uint64_t kRecordOverhead = 16;  // LMDB node header, roughly
constexpr char kMetaPartitions[] = "m:partitions";

void make_key(char* k, uint32_t partition, uint64_t seq) {
  k[0] = 'r';
  k[1] = static_cast<char>(partition >> 8);
  k[2] = static_cast<char>(partition);
  for (int i = 0; i < 8; ++i) k[3 + i] = static_cast<char>(seq >> (56 - 8 * i));
}

bool parse_key(const MDB_val& v, uint32_t* partition, uint64_t* seq) {
  if (v.mv_size != kKeySize) return false;
  auto* k = static_cast<const unsigned char*>(v.mv_data);
  if (k[0] != 'r') return false;
  *partition = (uint32_t{k[1]} << 8) | k[2];
  uint64_t s = 0;
  for (int i = 0; i < 8; ++i) s = (s << 8) | k[3 + i];
  *seq = s;
  return true;
}

Error lmdb_error(const std::string& dir, const char* what, int rc) {
  return make_error("remote_write: queue " + dir + ": " + what + ": " + mdb_strerror(rc));
}

// Aborts a write transaction unless committed.
struct Txn {
  MDB_txn* t = nullptr;
  ~Txn() {
    if (t) mdb_txn_abort(t);
  }
  int commit() {
    int rc = mdb_txn_commit(t);
    t = nullptr;
    return rc;
  }
};

}  // namespace

Result<std::unique_ptr<DiskQueue>> DiskQueue::open(const std::string& dir, uint64_t max_bytes,
                                                   uint32_t partitions) {
  std::unique_ptr<DiskQueue> q(new DiskQueue());
  q->dir_ = dir;
  q->max_bytes_ = max_bytes;
  q->partitions_ = partitions;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return make_error("remote_write: cannot create queue directory " + dir + ": " + ec.message());
  int rc = mdb_env_create(&q->env_);
  if (rc) return lmdb_error(dir, "mdb_env_create", rc);
  // Headroom over the cap: LMDB is copy-on-write, deletes need free pages too.
  uint64_t map = max_bytes * 2 + (64ULL << 20);
  if ((rc = mdb_env_set_mapsize(q->env_, map))) return lmdb_error(dir, "mdb_env_set_mapsize", rc);
  // NOMETASYNC: each commit flushes its data pages; append() additionally
  // syncs the meta page so that a returned write() is durable.
  rc = mdb_env_open(q->env_, dir.c_str(), MDB_NOMETASYNC | MDB_NOTLS, 0640);
  if (rc) return lmdb_error(dir, "mdb_env_open", rc);
  if (auto r = q->load(); !r) return r.error();
  return q;
}

DiskQueue::~DiskQueue() {
  if (env_) mdb_env_close(env_);
}

Result<void> DiskQueue::load() {
  Txn txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn.t);
  if (rc) return lmdb_error(dir_, "mdb_txn_begin", rc);
  MDB_dbi dbi;
  if ((rc = mdb_dbi_open(txn.t, nullptr, 0, &dbi))) return lmdb_error(dir_, "mdb_dbi_open", rc);
  dbi_ = dbi;

  uint32_t stored = 0;
  MDB_val mk{sizeof(kMetaPartitions) - 1, const_cast<char*>(kMetaPartitions)}, mv;
  if (mdb_get(txn.t, dbi, &mk, &mv) == 0 && mv.mv_size == 4) std::memcpy(&stored, mv.mv_data, 4);

  struct Found {
    uint32_t p;
    Rec r;
  };
  std::vector<Found> found;
  MDB_cursor* cur;
  if ((rc = mdb_cursor_open(txn.t, dbi, &cur))) return lmdb_error(dir_, "mdb_cursor_open", rc);
  char first[kKeySize];
  make_key(first, 0, 0);
  MDB_val k{kKeySize, first}, v;
  uint32_t max_p = 0;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint32_t p;
    uint64_t seq;
    if (!parse_key(k, &p, &seq)) break;
    if (v.mv_size < kHeaderSize) continue;
    Rec r{seq, 0, static_cast<uint32_t>(v.mv_size), 0};
    std::memcpy(&r.enqueued_ms, v.mv_data, 8);
    std::memcpy(&r.samples, static_cast<const char*>(v.mv_data) + 8, 4);
    found.push_back({p, r});
    max_p = std::max(max_p, p);
    next_seq_ = std::max(next_seq_, seq + 1);
  }
  mdb_cursor_close(cur);

  // A non-empty queue keeps its partitioning so that a series' old and new
  // samples stay in one partition, in order.
  if (!found.empty()) partitions_ = std::max({stored, max_p + 1, uint32_t{1}});
  parts_.assign(partitions_, Part{});
  for (const auto& f : found) {
    Part& part = parts_[f.p];
    part.recs.push_back(f.r);
    part.samples += f.r.samples;
    samples_ += f.r.samples;
    records_ += 1;
    bytes_ += f.r.bytes + kKeySize + kRecordOverhead;
  }
  if (stored != partitions_) {
    MDB_val val{4, &partitions_};
    if ((rc = mdb_put(txn.t, dbi, &mk, &val, 0))) return lmdb_error(dir_, "mdb_put", rc);
  }
  if ((rc = txn.commit())) return lmdb_error(dir_, "mdb_txn_commit", rc);
  return {};
}

Result<void> DiskQueue::append(std::vector<QueueRecord>& records, int64_t now_ms,
                               uint64_t* dropped) {
  if (records.empty()) return {};
  struct Key {
    uint32_t p;
    uint64_t seq;
  };
  std::vector<Key> doomed;
  std::vector<uint64_t> seqs(records.size());
  uint64_t need = 0;
  for (const auto& r : records) need += kHeaderSize + r.payload.size() + kKeySize + kRecordOverhead;
  {
    std::lock_guard l(mu_);
    for (auto& s : seqs) s = next_seq_++;
    // Make room: drop the oldest records no sender holds (documented policy).
    while (bytes_ + need > max_bytes_) {
      int best = -1;
      size_t best_idx = 0;
      for (uint32_t p = 0; p < partitions_; ++p) {
        const Part& part = parts_[p];
        size_t i = 0;
        if (part.leased)
          while (i < part.recs.size() && part.recs[i].seq <= part.leased_upto) ++i;
        if (i >= part.recs.size()) continue;
        if (best < 0 || part.recs[i].enqueued_ms < parts_[best].recs[best_idx].enqueued_ms ||
            (part.recs[i].enqueued_ms == parts_[best].recs[best_idx].enqueued_ms &&
             part.recs[i].seq < parts_[best].recs[best_idx].seq)) {
          best = static_cast<int>(p);
          best_idx = i;
        }
      }
      if (best < 0) break;  // everything left is in flight; exceed the cap by that much
      Part& part = parts_[best];
      const Rec r = part.recs[best_idx];
      part.recs.erase(part.recs.begin() + static_cast<std::ptrdiff_t>(best_idx));
      part.samples -= r.samples;
      samples_ -= r.samples;
      records_ -= 1;
      bytes_ -= r.bytes + kKeySize + kRecordOverhead;
      if (dropped) *dropped += r.samples;
      doomed.push_back({static_cast<uint32_t>(best), r.seq});
    }
  }

  Txn txn;
  int rc = mdb_txn_begin(env_, nullptr, 0, &txn.t);
  if (rc) return lmdb_error(dir_, "mdb_txn_begin", rc);
  char key[kKeySize];
  for (const auto& d : doomed) {
    make_key(key, d.p, d.seq);
    MDB_val k{kKeySize, key};
    rc = mdb_del(txn.t, dbi_, &k, nullptr);
    if (rc && rc != MDB_NOTFOUND) return lmdb_error(dir_, "mdb_del", rc);
  }
  std::string value;
  for (size_t i = 0; i < records.size(); ++i) {
    const QueueRecord& r = records[i];
    make_key(key, r.partition, seqs[i]);
    MDB_val k{kKeySize, key};
    MDB_val v{kHeaderSize + r.payload.size(), nullptr};
    // MDB_RESERVE: write the value in place, no intermediate copy.
    if ((rc = mdb_put(txn.t, dbi_, &k, &v, MDB_RESERVE))) return lmdb_error(dir_, "mdb_put", rc);
    char* dst = static_cast<char*>(v.mv_data);
    std::memcpy(dst, &now_ms, 8);
    std::memcpy(dst + 8, &r.samples, 4);
    std::memcpy(dst + kHeaderSize, r.payload.data(), r.payload.size());
  }
  if ((rc = txn.commit())) return lmdb_error(dir_, "mdb_txn_commit", rc);
  if ((rc = mdb_env_sync(env_, 1))) return lmdb_error(dir_, "mdb_env_sync", rc);

  std::lock_guard l(mu_);
  for (size_t i = 0; i < records.size(); ++i) {
    const QueueRecord& r = records[i];
    Part& part = parts_[r.partition];
    Rec rec{seqs[i], r.samples, static_cast<uint32_t>(kHeaderSize + r.payload.size()), now_ms};
    // Two concurrent appends could commit out of seq order; keep deques sorted.
    auto pos = part.recs.end();
    while (pos != part.recs.begin() && std::prev(pos)->seq > rec.seq) --pos;
    part.recs.insert(pos, rec);
    part.samples += r.samples;
    samples_ += r.samples;
    records_ += 1;
    bytes_ += rec.bytes + kKeySize + kRecordOverhead;
  }
  return {};
}

Result<std::optional<Lease>> DiskQueue::lease(uint32_t partition, uint64_t max_samples,
                                              uint64_t upto) {
  Lease out;
  out.partition = partition;
  {
    std::lock_guard l(mu_);
    if (partition >= partitions_) return std::optional<Lease>();
    Part& part = parts_[partition];
    if (part.leased || part.recs.empty()) return std::optional<Lease>();
    size_t n = 0;
    for (const Rec& r : part.recs) {
      if (n > 0 && (out.samples + r.samples > max_samples || (upto && r.seq > upto))) break;
      out.samples += r.samples;
      ++n;
    }
    out.first_seq = part.recs.front().seq;
    out.last_seq = part.recs[n - 1].seq;
    part.leased = true;
    part.leased_upto = out.last_seq;
  }
  auto fail = [&](const char* what, int rc) {
    std::lock_guard l(mu_);
    parts_[partition].leased = false;
    return lmdb_error(dir_, what, rc);
  };
  MDB_txn* txn;
  int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn);
  if (rc) return fail("mdb_txn_begin", rc);
  MDB_cursor* cur;
  if ((rc = mdb_cursor_open(txn, dbi_, &cur))) {
    mdb_txn_abort(txn);
    return fail("mdb_cursor_open", rc);
  }
  char key[kKeySize];
  make_key(key, partition, out.first_seq);
  MDB_val k{kKeySize, key}, v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    uint32_t p;
    uint64_t seq;
    if (!parse_key(k, &p, &seq) || p != partition || seq > out.last_seq) break;
    if (v.mv_size >= kHeaderSize)
      out.body.append(static_cast<const char*>(v.mv_data) + kHeaderSize, v.mv_size - kHeaderSize);
  }
  mdb_cursor_close(cur);
  mdb_txn_abort(txn);
  return std::optional<Lease>(std::move(out));
}

Result<void> DiskQueue::release(const Lease& lease, bool remove) {
  Result<void> result;
  if (remove) {
    Txn txn;
    int rc = mdb_txn_begin(env_, nullptr, 0, &txn.t);
    MDB_cursor* cur = nullptr;
    if (!rc) rc = mdb_cursor_open(txn.t, dbi_, &cur);
    if (!rc) {
      char key[kKeySize];
      make_key(key, lease.partition, lease.first_seq);
      MDB_val k{kKeySize, key}, v;
      for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
           rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        uint32_t p;
        uint64_t seq;
        if (!parse_key(k, &p, &seq) || p != lease.partition || seq > lease.last_seq) break;
        if ((rc = mdb_cursor_del(cur, 0))) break;
      }
      mdb_cursor_close(cur);
      if (rc == MDB_NOTFOUND || rc == 0) rc = txn.commit();
    }
    if (rc) result = lmdb_error(dir_, "deleting acknowledged records", rc);
  }
  std::lock_guard l(mu_);
  Part& part = parts_[lease.partition];
  part.leased = false;
  if (remove && result)
    while (!part.recs.empty() && part.recs.front().seq <= lease.last_seq) {
      const Rec& r = part.recs.front();
      part.samples -= r.samples;
      samples_ -= r.samples;
      records_ -= 1;
      bytes_ -= r.bytes + kKeySize + kRecordOverhead;
      part.recs.pop_front();
    }
  return result;
}

QueueStats DiskQueue::stats() const {
  std::lock_guard l(mu_);
  QueueStats s{samples_, records_, bytes_, 0};
  for (const Part& p : parts_)
    if (!p.recs.empty() &&
        (s.oldest_enqueued_ms == 0 || p.recs.front().enqueued_ms < s.oldest_enqueued_ms))
      s.oldest_enqueued_ms = p.recs.front().enqueued_ms;
  return s;
}

PartitionState DiskQueue::partition(uint32_t p) const {
  std::lock_guard l(mu_);
  const Part& part = parts_[p];
  return {part.samples, part.recs.size(), part.recs.empty() ? 0 : part.recs.front().enqueued_ms,
          part.leased};
}

}  // namespace moni::remote_write
