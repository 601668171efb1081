// WAL segment recycling under review: a spare file's old records must never
// read as new ones, whoever left them (an earlier run whose sequence
// numbers started over, another database), and a backup reading the WAL
// while the writer drops and recycles segments must still get every record
// not yet in chunks.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <filesystem>
#include <map>
#include <set>
#include <thread>

#include "tsdb.hpp"
#include "wal_log.hpp"

namespace fs = std::filesystem;
using moni::Batch;
using moni::BatchView;
using moni::tsdb::WalLog;

namespace {

constexpr int64_t kT0 = 1700000000000;

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& tag) {
    path =
        fs::temp_directory_path() / ("lmdb_tsdb_recycle_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
};

std::vector<std::pair<uint64_t, std::string>> replay_all(WalLog& log) {
  std::vector<std::pair<uint64_t, std::string>> out;
  auto r = log.replay([&](uint64_t seq, std::string_view p) {
    out.emplace_back(seq, std::string(p));
    return WalLog::Verdict::Apply;
  });
  EXPECT_TRUE(r.ok());
  return out;
}

using Dump = std::map<std::string, std::map<int64_t, double>>;

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
    for (size_t i = 0; i < v.sample_count; ++i) out[key][v.timestamps_ms[i]] = v.values[i];
  }
  return out;
}

void write(moni::tsdb::Db& db, const std::string& series, int64_t t, double v) {
  Batch b;
  b.add(series, {{"job", "j"}}, v, t);
  auto r = db.write(BatchView(b.view()));
  ASSERT_TRUE(r.ok()) << r.error().message;
}

moni::tsdb::Options opts(const fs::path& p) {
  moni::tsdb::Options o;
  o.path = p.string();
  o.sync = moni::tsdb::SyncMode::None;
  return o;
}

}  // namespace

// Sequence numbers start over when a run left no segment (Db numbers from
// the replayed records; a clean close drops them all). A spare of the
// earlier run then holds records numbered exactly like the new segment's
// next ones: after a crash they must not be replayed as new.
TEST(LmdbTsdbRecycleReview, SpareOfAnEarlierRunIsNotReplayedAfterSeqsStartOver) {
  TempDir dir("restart");
  const uint64_t token = 0xabc;
  auto old_payload = [](uint64_t s) { return "old-record-" + std::to_string(100 + s); };
  auto new_payload = [](uint64_t s) { return "new-record-" + std::to_string(100 + s); };
  {
    WalLog log;
    ASSERT_TRUE(log.open(dir.path.string(), token, true).ok());
    ASSERT_TRUE(replay_all(log).empty());
    for (uint64_t s = 0; s < 4; ++s) ASSERT_EQ(log.append(s, old_payload(s), false, 16), 0);
    log.drop_before(4);  // all in chunks (a clean close): segment 0 becomes a spare
  }
  {
    WalLog log;
    ASSERT_TRUE(log.open(dir.path.string(), token, true).ok());
    ASSERT_TRUE(replay_all(log).empty());
    // Numbered from 0 again; killed after two records.
    for (uint64_t s = 0; s < 2; ++s) ASSERT_EQ(log.append(s, new_payload(s), false, 16), 0);
  }
  WalLog log;
  ASSERT_TRUE(log.open(dir.path.string(), token, true).ok());
  auto got = replay_all(log);
  std::vector<std::pair<uint64_t, std::string>> want = {{0, new_payload(0)}, {1, new_payload(1)}};
  EXPECT_EQ(got, want);
}

// The WAL token keeps another database's segments out; its spares must be
// kept out too. b's data.mdb copied over a's (a restore by hand) while a's
// WAL directory holds a spare with records of a's series 1; the database
// then writes into that recycled file and is killed: a's old samples must
// not appear in b's series 1.
TEST(LmdbTsdbRecycleReview, SpareOfAnotherDatabaseIsNotReplayed) {
  TempDir a("other_a"), b("other_b");
  Dump want;
  {
    auto db = moni::tsdb::Db::open(opts(b.path));
    ASSERT_TRUE(db.ok()) << db.error().message;
    write(**db, "b", kT0, 1);
    ASSERT_TRUE((*db)->flush_heads().ok());
  }
  {
    auto db = moni::tsdb::Db::open(opts(a.path));
    ASSERT_TRUE(db.ok()) << db.error().message;
    for (int i = 0; i < 6; ++i) write(**db, "a", kT0 + i * 15000, 100 + i);
    ASSERT_TRUE((*db)->flush_heads().ok());  // its segment becomes a spare
  }
  bool spare = false;
  for (const auto& e : fs::directory_iterator(a.path / "wal"))
    spare |= e.path().filename().string().rfind("spare-", 0) == 0;
  ASSERT_TRUE(spare);
  fs::copy_file(b.path / "data.mdb", a.path / "data.mdb", fs::copy_options::overwrite_existing);
  fs::remove(a.path / "lock.mdb");
  {
    auto db = moni::tsdb::Db::open(opts(a.path));
    ASSERT_TRUE(db.ok()) << db.error().message;
    write(**db, "b", kT0 + 15000, 7);
    want = dump(**db);
  }  // no flush: as after kill -9
  ASSERT_EQ(want["b;j;"].size(), 2u);
  auto db = moni::tsdb::Db::open(opts(a.path));
  ASSERT_TRUE(db.ok()) << db.error().message;
  EXPECT_EQ(dump(**db), want);
}

// `moni backup` reads the segment files of a running database. Segments
// dropped (renamed to spares, then renamed into new segments and
// overwritten) while it reads them hold only samples its later snapshot
// has; the segments after them must still be read. Here the writer drops
// and recycles segments continuously while a reader takes backups' WAL
// reads: each must reach every record appended before it started.
TEST(LmdbTsdbRecycleReview, BackupReadWhileSegmentsAreRecycledMissesNoLaterSegment) {
  TempDir dir("backup_race");
  const uint64_t token = 0xbacc;
  auto payload = [](uint64_t s) { return "rec-" + std::to_string(s) + std::string(s % 7, 'x'); };
  WalLog log;
  ASSERT_TRUE(log.open(dir.path.string(), token, true).ok());
  ASSERT_TRUE(replay_all(log).empty());
  std::atomic<uint64_t> appended{0}, dropping{0};
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (uint64_t s = 0; !stop.load(); ++s) {
      if (log.append(s, payload(s), false, 4) != 0) break;
      appended.store(s + 1);
      if (s >= 40) {             // keeps about the last 40 records (10 segments)
        dropping.store(s - 40);  // published first: never behind the files
        log.drop_before(s - 40);
      }
    }
  });
  int missing = 0, bad = 0, reads = 0, checked = 0;
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (std::chrono::steady_clock::now() < until && reads < 4000) {
    uint64_t before = appended.load();
    if (before < 50) continue;
    std::vector<std::pair<uint64_t, std::string>> recs;
    ASSERT_TRUE(moni::tsdb::read_wal_records(dir.path.string(), token, recs).ok());
    uint64_t from = dropping.load();  // records before it may be gone (in chunks)
    ++reads;
    std::set<uint64_t> seen;
    for (const auto& [seq, p] : recs) {
      if (p != payload(seq)) ++bad;
      seen.insert(seq);
    }
    for (uint64_t s = from; s < before; ++s, ++checked) missing += seen.count(s) == 0;
  }
  stop = true;
  writer.join();
  EXPECT_GT(checked, 1000);
  EXPECT_GT(reads, 100);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(missing, 0) << "records not dropped, appended before the read, missing (" << reads
                        << " reads)";
}

// Head blocks go to the chunk thread with a whole cut and come back to the
// pool for the next heads while readers copy (t, v) pairs out. With tiny
// chunks and a tiny WAL checkpoint (blocks and segments recycled all the
// time), every sample a reader sees must be the one written at its
// timestamp, and after a reopen every sample is there.
TEST(LmdbTsdbRecycleReview, ReadersNeverSeeARecycledHeadBlock) {
  TempDir dir("pool");
  auto o = opts(dir.path);
  o.head_chunk_samples = 4;
  o.checkpoint_records = 2;
  auto value = [](int w, int s, int i) { return w * 1e6 + s * 1e3 + i; };
  constexpr int kWriters = 2, kSeries = 8, kSteps = 3000;
  {
    auto db = moni::tsdb::Db::open(o);
    ASSERT_TRUE(db.ok()) << db.error().message;
    std::atomic<int> done{0}, bad{0};
    std::vector<std::thread> ts;
    for (int w = 0; w < kWriters; ++w)
      ts.emplace_back([&, w] {
        for (int i = 0; i < kSteps; ++i) {
          Batch b;
          for (int s = 0; s < kSeries; ++s)
            b.add("m" + std::to_string(w) + "_" + std::to_string(s), {{"job", "j"}}, value(w, s, i),
                  kT0 + i * 1000);
          if (!(*db)->write(BatchView(b.view())).ok()) ++bad;
        }
        ++done;
      });
    for (int r = 0; r < 2; ++r)
      ts.emplace_back([&] {
        for (int reads = 0; done.load() < kWriters || reads < 5; ++reads) {
          auto c = (*db)->select(std::vector<moni::Matcher>{}, INT64_MIN, INT64_MAX, true);
          if (!c.ok()) {
            ++bad;
            return;
          }
          moni_series_view v{};
          for (;;) {
            auto n = (*c)->next(v);
            if (!n.ok() || !*n) break;
            std::string name(moni::sv(v.labels[0].value));  // __name__ "m<w>_<s>"
            int w = name[1] - '0', s = std::stoi(name.substr(3));
            for (size_t k = 0; k < v.sample_count; ++k) {
              int i = static_cast<int>((v.timestamps_ms[k] - kT0) / 1000);
              if (v.values[k] != value(w, s, i)) ++bad;
              if (k > 0 && v.timestamps_ms[k] <= v.timestamps_ms[k - 1]) ++bad;
            }
          }
        }
      });
    for (auto& t : ts) t.join();
    EXPECT_EQ(bad.load(), 0);
  }
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok()) << db.error().message;
  Dump d = dump(**db);
  ASSERT_EQ(d.size(), size_t{kWriters * kSeries});
  for (int w = 0; w < kWriters; ++w)
    for (int s = 0; s < kSeries; ++s) {
      auto& m = d["m" + std::to_string(w) + "_" + std::to_string(s) + ";j;"];
      ASSERT_EQ(m.size(), size_t{kSteps});
      for (int i = 0; i < kSteps; ++i) EXPECT_EQ(m[kT0 + i * 1000], value(w, s, i));
    }
}
