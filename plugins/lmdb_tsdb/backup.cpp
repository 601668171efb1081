#include "backup.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <random>
#include <vector>

#include "dir_lock.hpp"
#include "lmdb_keys.hpp"
#include "wal_log.hpp"

namespace moni::tsdb {

namespace fs = std::filesystem;

namespace {

// Copies every table of `src` into the empty environment `dst` in key
// order with MDB_APPEND: LMDB then fills each page completely (a B-tree
// filled by random inserts is about 70% full, and mdb_env_copy2's compaction
// only drops free pages, it does not refill them). Commits every so often
// so that huge databases do not exceed LMDB's dirty-page limit.
int packed_copy(MDB_txn* src, MDB_env* dst, const Db::Dbis& d) {
  struct Table {
    const char* name;
    unsigned dbi;
    unsigned flags;
  } tables[] = {{"series", d.series, 0},     {"postings", d.postings, MDB_DUPSORT | MDB_DUPFIXED},
                {"chunks", d.chunks, 0},     {"meta", d.meta, 0},
                {"metadata", d.metadata, 0}, {"wal", d.wal, 0}};
  constexpr int kPerTxn = 50000;
  for (const auto& t : tables) {
    MDB_cursor* sc = nullptr;
    int rc = mdb_cursor_open(src, t.dbi, &sc);
    if (rc) return rc;
    MDB_txn* txn = nullptr;
    MDB_dbi out = 0;
    MDB_cursor* dc = nullptr;
    std::string last_key;
    int n = 0;
    MDB_val k, v;
    for (rc = mdb_cursor_get(sc, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(sc, &k, &v, MDB_NEXT)) {
      if (!txn) {
        if ((rc = mdb_txn_begin(dst, nullptr, 0, &txn))) break;
        if ((rc = mdb_dbi_open(txn, t.name, t.flags | MDB_CREATE, &out)) ||
            (rc = mdb_cursor_open(txn, out, &dc)))
          break;
      }
      std::string_view key = sview(k);
      unsigned flags =
          (t.flags & MDB_DUPSORT) && n > 0 && key == last_key ? MDB_APPENDDUP : MDB_APPEND;
      if ((rc = mdb_cursor_put(dc, &k, &v, flags))) break;
      if (t.flags & MDB_DUPSORT) last_key.assign(key);
      if (++n % kPerTxn == 0) {
        mdb_cursor_close(dc);
        dc = nullptr;
        rc = mdb_txn_commit(txn);
        txn = nullptr;
        if (rc) break;
      }
    }
    mdb_cursor_close(sc);
    if (rc != MDB_NOTFOUND) {
      if (dc) mdb_cursor_close(dc);
      if (txn) mdb_txn_abort(txn);
      return rc;
    }
    if (!txn) {  // an empty table still exists in the copy
      if ((rc = mdb_txn_begin(dst, nullptr, 0, &txn))) return rc;
      if ((rc = mdb_dbi_open(txn, t.name, t.flags | MDB_CREATE, &out))) {
        mdb_txn_abort(txn);
        return rc;
      }
    }
    if (dc) mdb_cursor_close(dc);
    if ((rc = mdb_txn_commit(txn))) return rc;
  }
  return mdb_env_sync(dst, 1);
}

// The copy gets the WAL records still outside chunks (its wal table is
// replayed when it is opened) and a token of its own, so that it never
// adopts the live database's WAL files when restored in its place.
int add_wal_records(MDB_env* dst, const std::vector<std::pair<uint64_t, std::string>>& recs) {
  MDB_txn* txn = nullptr;
  int rc = mdb_txn_begin(dst, nullptr, 0, &txn);
  if (rc) return rc;
  MDB_dbi wal = 0, meta = 0;
  if ((rc = mdb_dbi_open(txn, "wal", MDB_CREATE, &wal)) ||
      (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &meta))) {
    mdb_txn_abort(txn);
    return rc;
  }
  for (const auto& [seq, rec] : recs) {
    char kb[8];
    put_be64(kb, seq);
    MDB_val k = {8, kb}, v = mval(rec);
    if ((rc = mdb_put(txn, wal, &k, &v, 0))) {
      mdb_txn_abort(txn);
      return rc;
    }
  }
  std::random_device rd;
  uint64_t token = (static_cast<uint64_t>(rd()) << 32) ^ rd() ^ 1;
  MDB_val k = mval("wal_token"), v = {8, &token};
  if ((rc = mdb_put(txn, meta, &k, &v, 0))) {
    mdb_txn_abort(txn);
    return rc;
  }
  if ((rc = mdb_txn_commit(txn))) return rc;
  return mdb_env_sync(dst, 1);
}

}  // namespace

Result<void> Db::backup_to(const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return make_error("lmdb_tsdb: backup: cannot create " + dir + ": " + ec.message());
  fs::path file = fs::path(dir) / "data.mdb";
  if (fs::exists(file))
    return make_error("lmdb_tsdb: backup: " + dir +
                      " already holds a database (data.mdb); choose an empty directory");
  // Without the flush the copy is just as complete (its WAL is replayed on
  // open), only larger; so a failed flush does not fail the backup.
  (void)flush_heads();
  // The WAL files are read before the snapshot is taken: a segment dropped
  // meanwhile holds only samples that the snapshot's chunks have.
  std::vector<std::pair<uint64_t, std::string>> wal_recs;
  if (auto r = read_wal_records(opt_.path, wal_token_, wal_recs); !r) {
    ++stats_.backups_failed;
    return r.error();
  }
  int rc;
  {
    auto rt = begin_read();
    if (!rt) {
      ++stats_.backups_failed;
      return rt.error();
    }
    MDB_env* dst = nullptr;
    rc = mdb_env_create(&dst);
    if (rc == 0) {
      mdb_env_set_maxdbs(dst, 8);
      mdb_env_set_mapsize(dst,
                          std::max<uint64_t>(map_size_.load(), file_bytes() * 2) + (64ULL << 20));
      rc = mdb_env_open(dst, file.c_str(), MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0644);
      if (rc == 0) rc = packed_copy((*rt)->txn, dst, dbi_);
      if (rc == 0) rc = add_wal_records(dst, wal_recs);
      mdb_env_close(dst);
    }
  }
  if (rc) {
    ++stats_.backups_failed;
    fs::remove(file, ec);
    return make_error(lmdb_error(("backup to " + dir).c_str(), rc));
  }
  ++stats_.backups_ok;
  return {};
}

Result<std::string> rotated_backup(Db& db, const std::string& dir, int64_t now_ms, int keep) {
  std::time_t t = static_cast<std::time_t>(now_ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char name[64];
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
  std::snprintf(name, sizeof name, "backup-%s.%03dZ", stamp, static_cast<int>(now_ms % 1000));
  fs::path final_path = fs::path(dir) / name;
  fs::path tmp = fs::path(dir) / (std::string(".tmp-") + name);
  std::error_code ec;
  fs::remove_all(tmp, ec);
  if (fs::exists(final_path))
    return make_error("lmdb_tsdb: backup: " + final_path.string() + " exists already");
  if (auto r = db.backup_to(tmp.string()); !r) {
    fs::remove_all(tmp, ec);
    return r.error();
  }
  fs::rename(tmp, final_path, ec);
  if (ec) {
    ++db.stats().backups_failed;
    return make_error("lmdb_tsdb: backup: cannot rename " + tmp.string() + ": " + ec.message());
  }
  db.stats().last_backup_ms = now_ms;
  // Keep the newest `keep` backups (names sort by time).
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory() && e.path().filename().string().rfind("backup-", 0) == 0)
      all.push_back(e.path());
  std::sort(all.begin(), all.end());
  for (size_t i = 0; keep > 0 && all.size() > static_cast<size_t>(keep) &&
                     i < all.size() - static_cast<size_t>(keep);
       ++i)
    fs::remove_all(all[i], ec);
  return final_path.string();
}

namespace {
Result<void> copy_file_synced(const fs::path& from, const fs::path& to) {
  int in = ::open(from.c_str(), O_RDONLY | O_CLOEXEC);
  if (in < 0) return make_error("lmdb_tsdb: restore: cannot read " + from.string());
  int out = ::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (out < 0) {
    ::close(in);
    return make_error("lmdb_tsdb: restore: cannot write " + to.string());
  }
  std::vector<char> buf(1 << 20);
  bool ok = true;
  for (;;) {
    ssize_t n = ::read(in, buf.data(), buf.size());
    if (n == 0) break;
    if (n < 0 || ::write(out, buf.data(), static_cast<size_t>(n)) != n) {
      ok = false;
      break;
    }
  }
  ok = ok && ::fsync(out) == 0;
  ::close(in);
  ok = ::close(out) == 0 && ok;
  if (!ok)
    return make_error("lmdb_tsdb: restore: copying to " + to.string() + " failed (disk full?)");
  return {};
}
}  // namespace

Result<void> restore_backup(const std::string& from, const std::string& to, bool force,
                            const std::string& owner) {
  fs::path src = fs::path(from) / "data.mdb";
  if (!fs::exists(src))
    return make_error("lmdb_tsdb: restore: " + from + " holds no backup (data.mdb is missing)");
  {
    Options o;
    o.path = from;
    o.read_only = true;
    o.no_lock = true;
    auto chk = Db::open(o);
    if (!chk)
      return make_error("lmdb_tsdb: restore: " + from +
                        " is not a usable backup: " + chk.error().message);
  }
  // Held until the new database is in place: a running moni on `to` would
  // keep writing its cached state over the restored one.
  auto lock = DirLock::acquire(to, owner);
  if (!lock) return lock.error();
  std::error_code ec;
  if (fs::exists(fs::path(to) / "data.mdb")) {
    Options o;
    o.path = to;
    o.read_only = true;
    auto cur = Db::open(o);
    if (cur && !force) {
      auto n = (*cur)->series_count();
      if (n && *n > 0)
        return make_error("lmdb_tsdb: restore: " + to + " already holds " + std::to_string(*n) +
                          " series; pass --force to replace it");
    } else if (!cur && !force) {
      return make_error("lmdb_tsdb: restore: " + to + " holds an unreadable database (" +
                        cur.error().message + "); pass --force to replace it");
    }
  }
  fs::path tmp = fs::path(to) / "data.mdb.restoring";
  if (auto r = copy_file_synced(src, tmp); !r) {
    fs::remove(tmp, ec);
    return r;
  }
  fs::rename(tmp, fs::path(to) / "data.mdb", ec);
  if (ec)
    return make_error("lmdb_tsdb: restore: cannot install " + tmp.string() + ": " + ec.message());
  fs::remove(fs::path(to) / "lock.mdb", ec);
  fs::remove_all(fs::path(to) / "wal", ec);  // the replaced database's WAL
  int dfd = ::open(to.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

}  // namespace moni::tsdb
