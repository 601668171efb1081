// The WAL segment files: a torn tail, a record whose batch never committed
// (crash between the WAL write and the LMDB commit), and the WAL of another
// database left beside a copied-in data.mdb.
#include "wal_log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>

#include "chunk_codec.hpp"
#include "tsdb.hpp"
#include "tsdb_test_util.hpp"

namespace fs = std::filesystem;
using moni::Batch;
using moni::BatchView;

namespace {

using tsdb_test::kT0;
using tsdb_test::TempDir;

moni::tsdb::Options opts(const fs::path& p) {
  moni::tsdb::Options o;
  o.path = p.string();
  o.sync = moni::tsdb::SyncMode::None;
  return o;
}

using Dump = std::map<std::string, std::map<int64_t, uint64_t>>;  // series -> t -> bits

Dump dump(moni::tsdb::Db& db) {
  Dump out;
  auto c = db.select(std::vector<moni::Matcher>{}, INT64_MIN, INT64_MAX, true);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) return out;
  moni_series_view v{};
  for (;;) {
    auto r = (*c)->next(v);
    if (!r.ok() || !*r) break;
    std::string key;
    for (uint32_t i = 0; i < v.label_count; ++i)
      key += std::string(moni::sv(v.labels[i].value)) + ";";
    for (size_t i = 0; i < v.sample_count; ++i)
      out[key][v.timestamps_ms[i]] = std::bit_cast<uint64_t>(v.values[i]);
  }
  return out;
}

void write(moni::tsdb::Db& db, const std::vector<std::string>& series, int64_t t, double v) {
  Batch b;
  for (const auto& s : series) b.add(s, {{"job", "j"}}, v, t);
  auto r = db.write(BatchView(b.view()));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

std::vector<fs::path> segments(const fs::path& db) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(db / "wal")) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t token_of(const fs::path& segment) {
  std::ifstream f(segment, std::ios::binary);
  char h[16] = {};
  f.read(h, 16);
  uint64_t t;
  std::memcpy(&t, h + 8, 8);
  return t;
}

}  // namespace

TEST(LmdbTsdbWal, TornTailIsCutAndAppendsContinue) {
  TempDir dir("torn");
  Dump want;
  {
    auto db = moni::tsdb::Db::open(opts(dir.path));
    ASSERT_TRUE(db.ok()) << db.error().message;
    for (int i = 0; i < 5; ++i) write(**db, {"a", "b"}, kT0 + i * 15000, i);
    want = dump(**db);
  }
  ASSERT_FALSE(segments(dir.path).empty());
  {  // half a record: what a crash in the middle of write() leaves
    std::ofstream f(segments(dir.path).back(), std::ios::binary | std::ios::app);
    f.write("\x30\x00\x00\x00garbage", 11);
  }
  {
    auto db = moni::tsdb::Db::open(opts(dir.path));
    ASSERT_TRUE(db.ok()) << db.error().message;
    EXPECT_EQ(dump(**db), want);
    write(**db, {"a", "b"}, kT0 + 5 * 15000, 5);
    want = dump(**db);
  }
  auto db = moni::tsdb::Db::open(opts(dir.path));
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(dump(**db), want);
  EXPECT_EQ(want["a;j;"].size(), 6u);
}

// A crash after the WAL record of a batch with a new series, before its
// LMDB commit: the record names an id LMDB never stored. It must be dropped
// whole, and cut from the file, or a later series given that id would get
// its samples.
TEST(LmdbTsdbWal, RecordOfAnUncommittedBatchIsDropped) {
  TempDir dir("uncommitted");
  Dump want;
  {
    auto db = moni::tsdb::Db::open(opts(dir.path));
    ASSERT_TRUE(db.ok()) << db.error().message;
    for (int i = 0; i < 3; ++i) write(**db, {"a"}, kT0 + i * 15000, i);
    want = dump(**db);
  }
  {  // the record: series 1 (known) at t3, then series 2 (never committed)
    auto segs = segments(dir.path);
    ASSERT_FALSE(segs.empty());
    moni::tsdb::WalLog log;
    ASSERT_TRUE(log.open(dir.path.string(), token_of(segs.back()), true).ok());
    uint64_t next = 0;
    ASSERT_TRUE(log.replay([&](uint64_t seq, std::string_view) {
                     next = seq + 1;
                     return moni::tsdb::WalLog::Verdict::Apply;
                   })
                    .ok());
    EXPECT_EQ(next, 3u);
    std::string rec;
    double v = 42;
    int64_t t = kT0 + 3 * 15000;
    moni::tsdb::put_varint(rec, 2);  // zigzag(+1): series 1
    moni::tsdb::put_varint(rec, static_cast<uint64_t>(t) << 1);
    rec.append(reinterpret_cast<const char*>(&v), 8);
    moni::tsdb::put_varint(rec, 2);  // series 2
    moni::tsdb::put_varint(rec, 0);
    rec.append(reinterpret_cast<const char*>(&v), 8);
    ASSERT_EQ(log.append(next, rec, false, 1000), 0);
  }
  {
    auto db = moni::tsdb::Db::open(opts(dir.path));
    ASSERT_TRUE(db.ok()) << db.error().message;
    EXPECT_EQ(dump(**db), want) << "no sample of the uncommitted batch";
    write(**db, {"a", "z_new"}, kT0 + 4 * 15000, 7);  // z_new gets id 2
    want = dump(**db);
  }
  auto db = moni::tsdb::Db::open(opts(dir.path));
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(dump(**db), want);
  EXPECT_EQ(want["z_new;j;"].size(), 1u);
  EXPECT_EQ(want["a;j;"].count(kT0 + 3 * 15000), 0u);
}

TEST(LmdbTsdbWal, WalOfAnotherDatabaseIsIgnored) {
  TempDir a("other_a"), b("other_b");
  Dump want;
  {
    auto db = moni::tsdb::Db::open(opts(b.path));
    ASSERT_TRUE(db.ok()) << db.error().message;
    write(**db, {"b"}, kT0, 1);
    ASSERT_TRUE((*db)->flush_heads().ok());  // everything in data.mdb
    want = dump(**db);
  }
  {
    auto db = moni::tsdb::Db::open(opts(a.path));
    ASSERT_TRUE(db.ok()) << db.error().message;
    for (int i = 0; i < 3; ++i) write(**db, {"a1", "a2"}, kT0 + i * 15000, i);
  }
  // b's data.mdb copied over a's (a restore done by hand); a's WAL remains.
  fs::copy_file(b.path / "data.mdb", a.path / "data.mdb", fs::copy_options::overwrite_existing);
  fs::remove(a.path / "lock.mdb");
  ASSERT_FALSE(segments(a.path).empty());
  auto db = moni::tsdb::Db::open(opts(a.path));
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(dump(**db), want);
}

// Deleted segments' files are kept as spares and overwritten by later
// segments: their older records after the new ones end the segment at
// replay (and in a backup's read), a later segment still follows, and the
// log continues after a reopen.
TEST(LmdbTsdbWal, RecycledSegmentsStaleRecordsAreNotReplayed) {
  TempDir dir("recycle");
  const uint64_t token = 0x5eed;
  auto payload = [](uint64_t seq) { return "record-" + std::to_string(1000 + seq); };
  auto spares = [&] {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir.path / "wal"))
      n += e.path().filename().string().rfind("spare-", 0) == 0;
    return n;
  };
  auto replayed = [&](moni::tsdb::WalLog& log) {
    std::vector<uint64_t> seqs;
    EXPECT_TRUE(log.replay([&](uint64_t seq, std::string_view p) {
                     EXPECT_EQ(p, payload(seq));
                     seqs.push_back(seq);
                     return moni::tsdb::WalLog::Verdict::Apply;
                   })
                    .ok());
    return seqs;
  };
  auto range = [](uint64_t from, uint64_t to) {
    std::vector<uint64_t> v;
    for (uint64_t s = from; s < to; ++s) v.push_back(s);
    return v;
  };
  {
    moni::tsdb::WalLog log;
    ASSERT_TRUE(log.open(dir.path.string(), token, true).ok());
    ASSERT_TRUE(replayed(log).empty());
    for (uint64_t s = 0; s < 12; ++s) ASSERT_EQ(log.append(s, payload(s), false, 4), 0);
    log.drop_before(8);  // segments 0 and 4 become spares
    EXPECT_EQ(spares(), 2);
    // Segment 12 reuses a spare: records 12 and 13 overwrite its first two
    // (same sizes), its records 2-3 or 6-7 stay behind them in the file.
    for (uint64_t s = 12; s < 14; ++s) ASSERT_EQ(log.append(s, payload(s), false, 4), 0);
    EXPECT_EQ(spares(), 1);
    EXPECT_GT(fs::file_size(dir.path / "wal" / "00000000000000000012"), 16u + 4 * 20);
  }
  std::vector<std::pair<uint64_t, std::string>> backup;
  ASSERT_TRUE(moni::tsdb::read_wal_records(dir.path.string(), token, backup).ok());
  std::vector<uint64_t> backup_seqs;
  for (auto& [seq, p] : backup) backup_seqs.push_back(seq);
  EXPECT_EQ(backup_seqs, range(8, 14));
  {
    moni::tsdb::WalLog log;
    ASSERT_TRUE(log.open(dir.path.string(), token, true).ok());
    EXPECT_EQ(spares(), 0);  // an earlier run's spare is deleted, never reused
    EXPECT_EQ(replayed(log), range(8, 14));
    // Continues in a new segment (a new file); a third segment too.
    for (uint64_t s = 14; s < 20; ++s) ASSERT_EQ(log.append(s, payload(s), false, 4), 0);
    EXPECT_EQ(spares(), 0);
  }
  moni::tsdb::WalLog log;
  ASSERT_TRUE(log.open(dir.path.string(), token, true).ok());
  EXPECT_EQ(replayed(log), range(8, 20));
}

// A recycled segment's new records rarely end on an old record's boundary:
// the bytes after them then look torn. That ends the segment, and the next
// segment, which follows on from it, is still replayed (not deleted as
// after a crash mid-write).
TEST(LmdbTsdbWal, RecycledSegmentsTornLookingTailKeepsLaterSegments) {
  TempDir dir("recycle_torn");
  const uint64_t token = 0x70e;
  auto payload = [](uint64_t seq) { return std::string(5 + (seq * 7) % 13, char('a' + seq % 26)); };
  std::vector<uint64_t> want;
  {
    moni::tsdb::WalLog log;
    ASSERT_TRUE(log.open(dir.path.string(), token, true).ok());
    ASSERT_TRUE(
        log.replay([](uint64_t, std::string_view) { return moni::tsdb::WalLog::Verdict::Apply; })
            .ok());
    for (uint64_t s = 0; s < 12; ++s) ASSERT_EQ(log.append(s, payload(s), false, 4), 0);
    log.drop_before(8);
    // Segments 12 and 16 reuse both spares with shorter records than the
    // old ones; segment 20 is a new file after them.
    for (uint64_t s = 12; s < 22; ++s)
      ASSERT_EQ(log.append(s, "n" + payload(s).substr(3), false, 4), 0);
  }
  for (uint64_t s = 8; s < 22; ++s) want.push_back(s);
  std::vector<std::pair<uint64_t, std::string>> backup;
  ASSERT_TRUE(moni::tsdb::read_wal_records(dir.path.string(), token, backup).ok());
  std::vector<uint64_t> got;
  for (auto& [seq, p] : backup) got.push_back(seq);
  EXPECT_EQ(got, want);
  got.clear();
  moni::tsdb::WalLog log;
  ASSERT_TRUE(log.open(dir.path.string(), token, true).ok());
  ASSERT_TRUE(log.replay([&](uint64_t seq, std::string_view p) {
                   EXPECT_EQ(p, seq < 12 ? payload(seq) : "n" + payload(seq).substr(3));
                   got.push_back(seq);
                   return moni::tsdb::WalLog::Verdict::Apply;
                 })
                  .ok());
  EXPECT_EQ(got, want);
}
