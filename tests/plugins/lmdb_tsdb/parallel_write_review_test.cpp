// Review of write() in parallel (batches whose series belong to their
// shape apply without the writer mutex; only the WAL append is under it):
// nothing acknowledged is lost at a kill -9 while WAL segments are dropped
// and recycled under parallel appends, cuts and hand-overs; the replay
// rebuilds what the live run served; the WAL stays bounded.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tsdb.hpp"
#include "tsdb_test_util.hpp"
#include "wal_log.hpp"

namespace fs = std::filesystem;
using moni::Batch;
using moni::BatchView;

namespace {

using tsdb_test::Dump;
using tsdb_test::dump;
using tsdb_test::kT0;
using tsdb_test::same;
using tsdb_test::TempDir;

// Bit patterns that any mix-up shows: NaN payloads, the staleness marker.
double value_of(int series, uint64_t k) {
  uint64_t x = (k * 0x9E3779B97F4A7C15ULL) ^ (static_cast<uint64_t>(series) * 0xBF58476D1CE4E5B9ULL);
  x ^= x >> 31;
  x *= 0x94D049BB133111EBULL;
  if ((k + static_cast<uint64_t>(series)) % 13 == 0)
    return std::bit_cast<double>(uint64_t{MONI_STALE_NAN_BITS});
  if (series % 2 == 0) return static_cast<double>(k * 3 + static_cast<uint64_t>(series));
  return std::bit_cast<double>(x ^ (x >> 29));
}

// The workload: kWriters threads, each sending kShapes batch shapes of its
// own series every round (parallel once owned), and writers 0 and 1 also a
// shape over the same kSharedSeries series in opposite orders (handed over
// exclusively every round). Series ids: writer w shape s series i ->
// w * 1000 + s * 100 + i; shared series 9000 + i.
constexpr int kWriters = 4, kShapes = 3, kSharedSeries = 6;
constexpr int kSharedShape = kShapes;  // shape index of the shared one

int shape_size(int w, int s) { return 3 + w + 2 * s; }

void fill(Batch& b, int w, int s, uint64_t k) {
  b.clear();
  int64_t t = kT0 + static_cast<int64_t>(k) * 1000;
  if (s == kSharedShape) {
    for (int j = 0; j < kSharedSeries; ++j) {
      int i = w == 0 ? j : kSharedSeries - 1 - j;
      b.add("shared", {{"i", std::to_string(i)}}, value_of(9000 + i, k), t);
    }
    return;
  }
  std::string name = "w" + std::to_string(w) + "_s" + std::to_string(s);
  for (int i = 0; i < shape_size(w, s); ++i)
    b.add(name, {{"i", std::to_string(i)}}, value_of(w * 1000 + s * 100 + i, k), t);
}

moni::tsdb::Options options(const std::string& path) {
  moni::tsdb::Options o;
  o.path = path;
  o.sync = moni::tsdb::SyncMode::None;  // a kill -9 leaves the page cache
  o.head_chunk_samples = 4;             // cuts every few rounds, in parallel batches
  o.checkpoint_records = 1;             // small segments, stale scans
  o.retention_ms = 0;
  return o;
}

struct Ack {
  uint16_t w, s;
  uint32_t k;
};

// The child: writes until killed, reporting each acknowledged batch.
[[noreturn]] void child(const std::string& path, int fd, uint32_t first) {
  auto db = moni::tsdb::Db::open(options(path));
  if (!db.ok()) {
    std::fprintf(stderr, "child open: %s\n", db.error().message.c_str());
    std::_Exit(3);
  }
  std::atomic<bool> stop{false};
  std::vector<std::thread> ts;
  for (int w = 0; w < kWriters; ++w)
    ts.emplace_back([&, w] {
      Batch b;
      int shapes = w < 2 ? kShapes + 1 : kShapes;
      for (uint32_t k = first;; ++k)
        for (int s = 0; s < shapes; ++s) {
          fill(b, w, s, k);
          auto r = (*db)->write(BatchView(b.view()));
          if (!r.ok()) {
            std::fprintf(stderr, "child write: %s\n", r.error().message.c_str());
            std::_Exit(4);
          }
          // The shared series: the writer behind finds the other's newer
          // samples (whoever writes a round first stores it).
          if ((r->out_of_order && s != kSharedShape) || r->duplicate_rejected || r->invalid)
            std::_Exit(5);
          Ack a{static_cast<uint16_t>(w), static_cast<uint16_t>(s), k};
          if (::write(fd, &a, sizeof a) != static_cast<ssize_t>(sizeof a)) std::_Exit(6);
        }
    });
  // A reader, and housekeeping that takes the series table exclusively.
  ts.emplace_back([&] {
    while (!stop) (void)dump(**db);
  });
  for (int i = 0;; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(7));
    if (i % 16 == 15) (void)(*db)->enforce_retention(365LL * 86400000, 0);
    if (i % 16 == 7) (void)(*db)->flush_heads();
  }
}

// Per writer and shape, the rounds acknowledged.
using Acked = std::map<std::pair<int, int>, std::set<uint32_t>>;

void check_acked(const Dump& d, const Acked& acked, const std::string& ctx) {
  auto expect_series = [&](const std::string& key, int id, const std::set<uint32_t>& ks) {
    auto it = d.find(key);
    ASSERT_NE(it, d.end()) << ctx << ": " << key << " missing (" << ks.size() << " rounds acked)";
    const auto& [tv, vv] = it->second;
    // Every sample is one of the workload's, in order, bit for bit (rounds
    // written but not acknowledged before a kill may be there too).
    std::set<uint32_t> have;
    for (size_t j = 0; j < tv.size(); ++j) {
      ASSERT_EQ((tv[j] - kT0) % 1000, 0) << ctx << ": " << key;
      auto k = static_cast<uint32_t>((tv[j] - kT0) / 1000);
      if (j > 0) {
        ASSERT_LT(tv[j - 1], tv[j]) << ctx << ": " << key;
      }
      ASSERT_EQ(std::bit_cast<uint64_t>(vv[j]), std::bit_cast<uint64_t>(value_of(id, k)))
          << ctx << ": " << key << " round " << k;
      have.insert(k);
    }
    size_t lost = 0;
    uint32_t first_lost = 0;
    for (uint32_t k : ks)
      if (!have.count(k) && lost++ == 0) first_lost = k;
    ASSERT_EQ(lost, 0u) << ctx << ": " << key << " lost " << lost
                        << " acknowledged samples, the first of round " << first_lost << " (holds "
                        << tv.size() << " samples)";
  };
  std::set<uint32_t> shared;
  for (const auto& [ws, ks] : acked) {
    auto [w, s] = ws;
    if (s == kSharedShape) {
      shared.insert(ks.begin(), ks.end());
      continue;
    }
    std::string name = "w" + std::to_string(w) + "_s" + std::to_string(s);
    for (int i = 0; i < shape_size(w, s); ++i)
      expect_series("__name__=" + name + ",i=" + std::to_string(i), w * 1000 + s * 100 + i, ks);
  }
  if (!shared.empty())
    for (int i = 0; i < kSharedSeries; ++i)
      expect_series("__name__=shared,i=" + std::to_string(i), 9000 + i, shared);
}

}  // namespace

// kill -9 at random moments while four writers run in parallel (and two of
// them hand shared series over every round), heads are cut in parallel
// batches, the WAL rolls every 16 records and its segments are dropped as
// soon as the heads and cuts allow: every acknowledged sample is there
// after reopening, bit for bit, and a second reopen serves the same.
TEST(LmdbTsdbParallelReview, AcknowledgedSamplesSurviveKillDuringParallelWrites) {
  TempDir dir("kill");
  std::mt19937 rng(12345);
  Acked acked;
  uint32_t first = 0;
  for (int round = 0; round < 4; ++round) {
    int p[2];
    ASSERT_EQ(::pipe(p), 0);
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(p[0]);
      child(dir.path.string(), p[1], first);
    }
    ::close(p[1]);
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(std::uniform_int_distribution<int>(100, 350)(rng));
    bool killed = false;
    uint32_t max_k = first;
    size_t n_acks = 0;
    Ack buf[256];
    size_t have = 0;  // bytes in buf
    for (;;) {
      if (!killed && std::chrono::steady_clock::now() >= deadline) {
        ::kill(pid, SIGKILL);
        killed = true;
      }
      pollfd pf{p[0], POLLIN, 0};
      int pr = ::poll(&pf, 1, killed ? 1000 : 5);
      if (pr == 0) {
        if (killed) break;
        continue;
      }
      ssize_t r = ::read(p[0], reinterpret_cast<char*>(buf) + have, sizeof buf - have);
      if (r <= 0) break;
      have += static_cast<size_t>(r);
      size_t whole = have / sizeof(Ack);
      for (size_t i = 0; i < whole; ++i) {
        acked[{buf[i].w, buf[i].s}].insert(buf[i].k);
        max_k = std::max(max_k, buf[i].k);
        ++n_acks;
      }
      std::memmove(buf, reinterpret_cast<char*>(buf) + whole * sizeof(Ack), have % sizeof(Ack));
      have %= sizeof(Ack);
    }
    ::close(p[0]);
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL)
        << "child ended by itself, status " << status;
    ASSERT_GT(n_acks, 0u) << "round " << round;
    Dump d1;
    {
      auto db = moni::tsdb::Db::open(options(dir.path.string()));
      ASSERT_TRUE(db.ok()) << db.error().message;
      d1 = dump(**db);
      check_acked(d1, acked, "round " + std::to_string(round));
    }
    {
      auto db = moni::tsdb::Db::open(options(dir.path.string()));
      ASSERT_TRUE(db.ok()) << db.error().message;
      EXPECT_TRUE(same(d1, dump(**db))) << "round " << round << ": second reopen differs";
    }
    if (HasFatalFailure()) return;
    // The next child goes on past everything any writer may have written.
    first = max_k + 1;
    for (const auto& [k, e] : d1)
      if (!e.first.empty())
        first = std::max(first, static_cast<uint32_t>((e.first.back() - kT0) / 1000 + 1));
  }
}

// In one process: the writers above, a reader, housekeeping and flushes at
// once, then exactly every sample written, bit for bit; the WAL replay at
// reopen serves the same, and so does a flush, which empties the WAL.
TEST(LmdbTsdbParallelReview, ParallelWritersWithHousekeepingKeepEverySample) {
  TempDir dir("stress");
  constexpr uint32_t kRounds = 150;
  auto db = moni::tsdb::Db::open(options(dir.path.string()));
  ASSERT_TRUE(db.ok()) << db.error().message;
  std::atomic<int> bad{0};
  std::atomic<bool> stop{false};
  std::atomic<size_t> max_files{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < kWriters; ++w)
    ts.emplace_back([&, w] {
      Batch b;
      int shapes = w < 2 ? kShapes + 1 : kShapes;
      for (uint32_t k = 0; k < kRounds; ++k)
        for (int s = 0; s < shapes; ++s) {
          fill(b, w, s, k);
          auto r = (*db)->write(BatchView(b.view()));
          if (!r.ok() || (r->out_of_order && s != kSharedShape) || r->duplicate_rejected ||
              r->invalid)
            ++bad;
        }
    });
  std::thread reader([&] {
    while (!stop) (void)dump(**db);
  });
  std::thread house([&] {
    for (int i = 0; !stop; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(3));
      size_t files = 0;
      std::error_code ec;
      for (auto it = fs::directory_iterator(dir.path / "wal", ec);
           !ec && it != fs::directory_iterator(); it.increment(ec))
        ++files;
      max_files = std::max(max_files.load(), files);
      if (i % 20 == 19) (void)(*db)->enforce_retention(365LL * 86400000, 0);
      if (i % 20 == 9) (void)(*db)->flush_heads();
    }
  });
  for (auto& t : ts) t.join();
  stop = true;
  reader.join();
  house.join();
  ASSERT_EQ(bad.load(), 0);
  ASSERT_TRUE((*db)->wait_background().ok());
  Acked all;
  for (int w = 0; w < kWriters; ++w)
    for (int s = 0; s < (w < 2 ? kShapes + 1 : kShapes); ++s)
      for (uint32_t k = 0; k < kRounds; ++k) all[{w, s}].insert(k);
  Dump live = dump(**db);
  check_acked(live, all, "live");
  for (const auto& [k, e] : live) EXPECT_EQ(e.first.size(), kRounds) << k;
  EXPECT_GT(max_files.load(), 0u);
  db->reset();
  auto db2 = moni::tsdb::Db::open(options(dir.path.string()));
  ASSERT_TRUE(db2.ok()) << db2.error().message;
  EXPECT_TRUE(same(dump(**db2), live));
  // A flush leaves no record behind: nothing holds the WAL (an in-flight
  // record never deregistered, a cut never stored) once the writers are done.
  ASSERT_TRUE((*db2)->flush_heads().ok());
  size_t segments = 0;
  for (const auto& e : fs::directory_iterator(dir.path / "wal"))
    segments += e.path().filename().string().rfind("spare-", 0) != 0;
  EXPECT_EQ(segments, 0u);
  EXPECT_TRUE(same(dump(**db2), live));
}

// A batch that does not own its series (a new shape here) resolves their
// ids under the shared series lock, lets go of it and waits for the
// exclusive one. Retention, in between, may delete one of those series
// (nothing of it within the retention yet): the batch must not append to
// the deleted id (its samples would be acknowledged, counted as appended,
// and then never readable, nor replayed: lost), but store the series anew.
TEST(LmdbTsdbParallelReview, SeriesDeletedByRetentionWhileABatchWaitsIsStoredAnew) {
  TempDir dir("retention");
  auto o = options(dir.path.string());
  o.retention_ms = 1000;
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok()) << db.error().message;
  // Many filler series make resolving a batch take a while, widening the
  // window between its shared and exclusive locks.
  constexpr int kFill = 1900, kIters = 120;  // one retention step covers all
  const int64_t now = kT0 + 100LL * 86400000;
  auto fill = [&](Batch& b, int iter, int64_t t) {
    b.clear();
    // A new first series every iteration: a shape never seen, owned by nobody.
    b.add("first", {{"iter", std::to_string(iter)}}, 1, t);
    b.add("victim", {{"iter", std::to_string(iter)}}, 42, t);
    for (int i = 0; i < kFill; ++i) b.add("fill", {{"i", std::to_string(i)}}, i, t);
  };
  Batch b;
  fill(b, -1, now);
  ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
  std::atomic<bool> stop{false};
  std::thread retention([&] {
    while (!stop) (void)(*db)->enforce_retention(o.retention_ms, 0);
  });
  int lost = 0;
  for (int iter = 0; iter < kIters; ++iter) {
    int64_t t = now + (iter + 1) * 1000LL;
    // The victim: one old sample (outside the retention once written) and
    // the iteration's first series, so that the batch below finds both.
    Batch old;
    old.add("first", {{"iter", std::to_string(iter)}}, 0, kT0 + iter);
    old.add("victim", {{"iter", std::to_string(iter)}}, 41, kT0 + iter);
    auto w0 = (*db)->write(BatchView(old.view()));
    ASSERT_TRUE(w0.ok()) << w0.error().message;
    fill(b, iter, t);
    auto r = (*db)->write(BatchView(b.view()));
    ASSERT_TRUE(r.ok()) << r.error().message;
    ASSERT_EQ(r->appended, static_cast<uint64_t>(kFill + 2)) << "iteration " << iter;
    // Acknowledged and counted as appended: readable.
    std::vector<moni::Matcher> m{{moni::MatchType::Equal, "__name__", "victim"},
                                 {moni::MatchType::Equal, "iter", std::to_string(iter)}};
    auto c = (*db)->select(m, t, t, true);
    ASSERT_TRUE(c.ok());
    moni_series_view v{};
    auto n = (*c)->next(v);
    ASSERT_TRUE(n.ok());
    bool found = *n && v.sample_count == 1 && v.timestamps_ms[0] == t && v.values[0] == 42;
    if (!found) ++lost;
  }
  stop = true;
  retention.join();
  EXPECT_EQ(lost, 0) << "acknowledged samples of " << lost << " of " << kIters
                     << " batches went to a series retention had deleted";
}

namespace {
// Fault injection: every n-th WAL write fails with EIO (0: none).
std::atomic<int> g_fail_every{0};
std::atomic<int> g_writes{0};
ssize_t failing_pwritev(int fd, const iovec* iov, int n, off_t off) {
  int every = g_fail_every.load();
  if (every > 0 && g_writes.fetch_add(1) % every == every - 1) {
    errno = EIO;
    return -1;
  }
  return ::pwritev(fd, iov, n, off);
}
std::atomic<int> g_fail_syncs{0};
int failing_fdatasync(int fd) {
  if (g_fail_syncs.load() > 0 && g_fail_syncs.fetch_sub(1) > 0) {
    errno = EIO;
    return -1;
  }
  return ::fdatasync(fd);
}
struct FaultOps {
  moni::tsdb::WalFileOps saved = moni::tsdb::wal_file_ops;
  FaultOps() {
    moni::tsdb::wal_file_ops.pwritev = failing_pwritev;
    moni::tsdb::wal_file_ops.fdatasync = failing_fdatasync;
  }
  ~FaultOps() {
    moni::tsdb::wal_file_ops = saved;
    g_fail_every = 0;
    g_fail_syncs = 0;
  }
};
}  // namespace

// WAL appends failing under parallel writers: a failed batch wrote its
// samples into the heads past their published counts and made its cut
// decisions without the writer mutex; none of it may show, and the same
// batch sent again goes in whole. Every sample once, bit for bit, live
// and after reopening.
TEST(LmdbTsdbParallelReview, FailedWalAppendsInParallelBatchesLeaveNoTrace) {
  TempDir dir("appendfail");
  constexpr uint32_t kRounds = 60;
  FaultOps faults;
  auto db = moni::tsdb::Db::open(options(dir.path.string()));
  ASSERT_TRUE(db.ok()) << db.error().message;
  g_fail_every = 5;
  std::atomic<int> bad{0}, failures{0};
  std::vector<std::thread> ts;
  for (int w = 0; w < kWriters; ++w)
    ts.emplace_back([&, w] {
      Batch b;
      for (uint32_t k = 0; k < kRounds; ++k)
        for (int s = 0; s < kShapes; ++s) {
          fill(b, w, s, k);
          for (;;) {
            auto r = (*db)->write(BatchView(b.view()));
            if (r.ok()) {
              if (r->appended != b.size()) ++bad;
              break;
            }
            ++failures;
            // Not visible: the round's sample of the shape's first series.
            std::vector<moni::Matcher> m{
                {moni::MatchType::Equal, "__name__",
                 "w" + std::to_string(w) + "_s" + std::to_string(s)},
                {moni::MatchType::Equal, "i", "0"}};
            int64_t t = kT0 + static_cast<int64_t>(k) * 1000;
            auto c = (*db)->select(m, t, t, true);
            moni_series_view v{};
            if (c.ok()) {
              auto n = (*c)->next(v);
              if (n.ok() && *n && v.sample_count > 0) ++bad;
            }
          }
        }
    });
  for (auto& t : ts) t.join();
  g_fail_every = 0;
  EXPECT_GT(failures.load(), 0);
  ASSERT_EQ(bad.load(), 0);
  ASSERT_TRUE((*db)->wait_background().ok());
  Acked all;
  for (int w = 0; w < kWriters; ++w)
    for (int s = 0; s < kShapes; ++s)
      for (uint32_t k = 0; k < kRounds; ++k) all[{w, s}].insert(k);
  Dump live = dump(**db);
  check_acked(live, all, "live");
  for (const auto& [k, e] : live) EXPECT_EQ(e.first.size(), kRounds) << k;
  db->reset();
  auto db2 = moni::tsdb::Db::open(options(dir.path.string()));
  ASSERT_TRUE(db2.ok()) << db2.error().message;
  EXPECT_TRUE(same(dump(**db2), live));
}

// A failed fdatasync fails the batches it covered; their samples stay in
// the heads. Sent again (as a remote-write sender or a careful client
// does), the batch finds them all as duplicates, appends nothing, and the
// next write() has flushed the heads into stored chunks meanwhile: the
// retry must succeed, not fail for good while no other batch appends.
TEST(LmdbTsdbParallelReview, RetryAfterAFailedFdatasyncSucceedsOnceTheHeadsAreFlushed) {
  TempDir dir("syncfail");
  FaultOps faults;
  auto o = options(dir.path.string());
  o.sync = moni::tsdb::SyncMode::Full;
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok()) << db.error().message;
  Batch b;
  fill(b, 0, 0, 0);
  ASSERT_TRUE((*db)->write(BatchView(b.view())).ok());
  fill(b, 0, 0, 1);
  g_fail_syncs = 1;
  auto r = (*db)->write(BatchView(b.view()));
  ASSERT_FALSE(r.ok());
  bool ok = false;
  for (int attempt = 0; attempt < 3 && !ok; ++attempt) ok = (*db)->write(BatchView(b.view())).ok();
  EXPECT_TRUE(ok) << "the retry keeps failing though its samples are stored and synced";
  db->reset();
  auto db2 = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db2.ok()) << db2.error().message;
  Acked acked;
  acked[{0, 0}] = {0, 1};
  check_acked(dump(**db2), acked, "reopened");
}
