// The WAL under failing system calls: a record is acknowledged (sync()
// returns 0) only when a power loss right after keeps it. The calls on
// segment files go through a model of the disk (WalFileOps): what
// fdatasync put there survives, the rest is lost; a failed fdatasync loses
// the pages written since the last good one and reports it once, as Linux
// does. A "power loss" writes each file as the model has it into a fresh
// directory, and a WalLog replays that. Last, the database on top: write()
// acknowledges nothing after a failed WAL sync until the WAL is flushed.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <moni/batch.hpp>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tsdb.hpp"
#include "wal_log.hpp"

namespace fs = std::filesystem;
using moni::tsdb::WalFileOps;
using moni::tsdb::WalLog;

namespace {

constexpr uint64_t kToken = 0xfa17;

struct Disk {
  std::mutex mu;
  std::map<ino_t, std::string> image;  // on the platter
  std::map<ino_t, std::vector<std::pair<uint64_t, uint64_t>>> dirty;
  int fail_fdatasync = 0;  // the next n fdatasyncs fail with EIO
  int fail_every = 0;      // > 0: every n-th fdatasync fails
  int short_pwritev = -1;  // >= 0: the next pwritev writes this many bytes only
  int fail_pwrite = 0;     // the next n pwrites fail with ENOSPC
  int fail_ftruncate = 0;  // the next n ftruncates fail with EIO
  int fdatasyncs = 0, failed_fdatasyncs = 0;
};
Disk* disk = nullptr;

ino_t ino_of(int fd) {
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  return st.st_ino;
}

void written(int fd, off_t off, ssize_t n) {
  if (n > 0)
    disk->dirty[ino_of(fd)].emplace_back(static_cast<uint64_t>(off),
                                         static_cast<uint64_t>(off) + static_cast<uint64_t>(n));
}

ssize_t model_pwrite(int fd, const void* p, size_t n, off_t off) {
  std::lock_guard<std::mutex> l(disk->mu);
  if (disk->fail_pwrite > 0) {
    --disk->fail_pwrite;
    errno = ENOSPC;
    return -1;
  }
  struct stat st {};
  if (off == 0 && ::fstat(fd, &st) == 0 && st.st_size == 0) {  // a new file (inodes are reused)
    disk->image.erase(st.st_ino);
    disk->dirty.erase(st.st_ino);
  }
  ssize_t w = ::pwrite(fd, p, n, off);
  written(fd, off, w);
  return w;
}

ssize_t model_pwritev(int fd, const iovec* iov, int cnt, off_t off) {
  std::lock_guard<std::mutex> l(disk->mu);
  if (disk->short_pwritev >= 0) {
    size_t n = std::min(static_cast<size_t>(disk->short_pwritev), iov[0].iov_len);
    disk->short_pwritev = -1;
    ssize_t w = ::pwrite(fd, iov[0].iov_base, n, off);
    written(fd, off, w);
    return w;
  }
  ssize_t w = ::pwritev(fd, iov, cnt, off);
  written(fd, off, w);
  return w;
}

int model_fdatasync(int fd) {
  std::lock_guard<std::mutex> l(disk->mu);
  ++disk->fdatasyncs;
  ino_t ino = ino_of(fd);
  if (disk->fail_fdatasync > 0 ||
      (disk->fail_every > 0 && disk->fdatasyncs % disk->fail_every == 0)) {
    if (disk->fail_fdatasync > 0) --disk->fail_fdatasync;
    ++disk->failed_fdatasyncs;
    disk->dirty.erase(ino);  // marked clean, never written
    errno = EIO;
    return -1;
  }
  if (::fdatasync(fd) != 0) return -1;
  struct stat st {};
  EXPECT_EQ(::fstat(fd, &st), 0);
  std::string& img = disk->image[ino];
  img.resize(static_cast<size_t>(st.st_size));  // zeros where pages were lost
  int rfd = ::open(("/proc/self/fd/" + std::to_string(fd)).c_str(), O_RDONLY | O_CLOEXEC);
  EXPECT_GE(rfd, 0);
  for (auto [from, to] : disk->dirty[ino]) {
    to = std::min<uint64_t>(to, img.size());
    if (from < to) {
      EXPECT_EQ(::pread(rfd, img.data() + from, to - from, static_cast<off_t>(from)),
                static_cast<ssize_t>(to - from));
    }
  }
  ::close(rfd);
  disk->dirty.erase(ino);
  return 0;
}

int model_ftruncate(int fd, off_t len) {
  std::lock_guard<std::mutex> l(disk->mu);
  if (disk->fail_ftruncate > 0) {
    --disk->fail_ftruncate;
    errno = EIO;
    return -1;
  }
  return ::ftruncate(fd, len);
}

std::string payload(uint64_t seq) { return "sample-batch-" + std::to_string(seq * 7919); }

class WalFault : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("lmdb_tsdb_wal_fault_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "db");
    saved_ = moni::tsdb::wal_file_ops;
    disk = &disk_;
    moni::tsdb::wal_file_ops = {model_pwrite, model_pwritev, model_fdatasync, model_ftruncate};
  }
  void TearDown() override {
    moni::tsdb::wal_file_ops = saved_;
    disk = nullptr;
    fs::remove_all(dir_);
  }

  void open(WalLog& log) {
    ASSERT_TRUE(log.open((dir_ / "db").string(), kToken, true).ok());
    log.set_durable(true);
    ASSERT_TRUE(log.replay([&](uint64_t seq, std::string_view) {
                     appended_.insert(seq);  // the database counts them durable
                     acked_.insert(seq);
                     return WalLog::Verdict::Apply;
                   })
                    .ok());
  }
  int append(WalLog& log, uint64_t seq, uint32_t roll = 1000) {
    int e = log.append(seq, payload(seq), false, roll);
    if (e == 0) {
      std::lock_guard<std::mutex> l(mu_);
      appended_.insert(seq);
    }
    return e;
  }
  // The group commit: a success acknowledges every record appended before.
  int sync(WalLog& log) {
    std::set<uint64_t> before;
    {
      std::lock_guard<std::mutex> l(mu_);
      before = appended_;
    }
    int e = log.sync();
    if (e == 0) {
      std::lock_guard<std::mutex> l(mu_);
      acked_.insert(before.begin(), before.end());
    }
    return e;
  }
  // Records below `seq` are in stored chunks from now on.
  void drop_before(WalLog& log, uint64_t seq) {
    log.drop_before(seq);
    chunked_below_ = std::max(chunked_below_, seq);
  }

  // Directory entries as they are, file contents as the disk has them.
  std::vector<uint64_t> after_power_loss() {
    fs::path to = dir_ / ("lost" + std::to_string(++losses_));
    fs::create_directories(to / "wal");
    for (const auto& e : fs::directory_iterator(dir_ / "db" / "wal")) {
      struct stat st {};
      EXPECT_EQ(::stat(e.path().c_str(), &st), 0);
      std::ofstream out(to / "wal" / e.path().filename(), std::ios::binary);
      auto it = disk_.image.find(st.st_ino);
      if (it != disk_.image.end()) out.write(it->second.data(), std::ssize(it->second));
    }
    moni::tsdb::wal_file_ops = saved_;
    WalLog log;
    std::vector<uint64_t> got;
    EXPECT_TRUE(log.open(to.string(), kToken, false).ok());
    EXPECT_TRUE(log.replay([&](uint64_t seq, std::string_view p) {
                     EXPECT_EQ(p, payload(seq));
                     got.push_back(seq);
                     return WalLog::Verdict::Apply;
                   })
                    .ok());
    moni::tsdb::wal_file_ops = {model_pwrite, model_pwritev, model_fdatasync, model_ftruncate};
    return got;
  }
  // Every acknowledged record not yet in chunks survives a power loss.
  void expect_acked_survive() {
    auto got = after_power_loss();
    std::set<uint64_t> have(got.begin(), got.end());
    std::vector<uint64_t> lost;
    for (uint64_t s : acked_)
      if (s >= chunked_below_ && !have.count(s)) lost.push_back(s);
    EXPECT_TRUE(lost.empty()) << lost.size() << " acknowledged records lost, the first "
                              << lost.front();
  }
  int spares() {
    int n = 0;
    for (const auto& e : fs::directory_iterator(dir_ / "db" / "wal"))
      n += e.path().filename().string().rfind("spare-", 0) == 0;
    return n;
  }

  fs::path dir_;
  Disk disk_;
  WalFileOps saved_{};
  std::mutex mu_;
  std::set<uint64_t> appended_, acked_;
  uint64_t chunked_below_ = 0;
  int losses_ = 0;
};

// The reported bug: an append fails (a short write, then ENOSPC) and so
// does its undo (ftruncate). The segment used to be closed without
// fdatasync, and the waiting group commit then "synced" nothing and
// acknowledged the records before it.
TEST_F(WalFault, FailedUndoKeepsEarlierRecordsSyncable) {
  WalLog log;
  open(log);
  for (uint64_t s = 0; s < 5; ++s) ASSERT_EQ(append(log, s), 0);
  disk_.short_pwritev = 10;  // frame half written
  disk_.fail_pwrite = 1;     // the rest: ENOSPC
  disk_.fail_ftruncate = 1;  // the undo fails too
  EXPECT_EQ(append(log, 5), ENOSPC);
  int before = disk_.fdatasyncs;
  EXPECT_EQ(sync(log), 0);
  EXPECT_EQ(disk_.fdatasyncs, before + 1) << "a success must come from an fdatasync";
  expect_acked_survive();
  // The next record starts a new segment after the torn one; the log
  // continues through both.
  ASSERT_EQ(append(log, 5), 0);
  EXPECT_EQ(sync(log), 0);
  auto got = after_power_loss();
  EXPECT_EQ(got, (std::vector<uint64_t>{0, 1, 2, 3, 4, 5}));
}

// fsyncgate: after a failed fdatasync a later one succeeds without writing
// the lost pages. sync() must keep failing until the segment is dropped.
TEST_F(WalFault, FailedFdatasyncIsStickyUntilTheSegmentIsDropped) {
  WalLog log;
  open(log);
  for (uint64_t s = 0; s < 5; ++s) ASSERT_EQ(append(log, s), 0);
  disk_.fail_fdatasync = 1;
  EXPECT_EQ(sync(log), EIO);
  ASSERT_EQ(append(log, 5), 0);
  EXPECT_EQ(sync(log), EIO) << "records 0-4 may be lost";
  ASSERT_EQ(append(log, 6), 0);
  EXPECT_NE(sync(log), 0);
  expect_acked_survive();
  // Records 0-4 reach stored chunks: their segment goes (not kept as a
  // spare), and the records after it are acknowledged again.
  drop_before(log, 5);
  EXPECT_EQ(spares(), 0);
  EXPECT_EQ(sync(log), 0);
  ASSERT_EQ(append(log, 7), 0);
  EXPECT_EQ(sync(log), 0);
  EXPECT_TRUE(acked_.count(7));
  expect_acked_survive();
}

// The fdatasync of a full segment before the next one starts fails: the
// group commit must not acknowledge its records by syncing again.
TEST_F(WalFault, FailedFdatasyncAtRollOverIsNotForgotten) {
  WalLog log;
  open(log);
  for (uint64_t s = 0; s < 4; ++s) ASSERT_EQ(append(log, s, 4), 0);
  disk_.fail_fdatasync = 1;
  (void)append(log, 4, 4);  // rolls over
  EXPECT_EQ(disk_.failed_fdatasyncs, 1);
  EXPECT_NE(sync(log), 0);
  EXPECT_NE(sync(log), 0);
  expect_acked_survive();
  drop_before(log, 4);
  EXPECT_EQ(sync(log), 0);
  for (uint64_t s = 5; s < 10; ++s) ASSERT_EQ(append(log, s, 4), 0);
  EXPECT_EQ(sync(log), 0);
  expect_acked_survive();
}

// A run killed before syncing its last records leaves them in the page
// cache only; the next run replays them (and counts them durable), then
// acknowledges new records in a new segment. A power loss must not end
// the log before those.
TEST_F(WalFault, ReplayedRecordsAreSyncedBeforeLaterOnesAreAcknowledged) {
  {
    WalLog log;
    open(log);
    for (uint64_t s = 0; s < 3; ++s) ASSERT_EQ(append(log, s), 0);
    ASSERT_EQ(sync(log), 0);
    for (uint64_t s = 3; s < 5; ++s) ASSERT_EQ(append(log, s), 0);
  }  // killed: nothing synced after record 2
  WalLog log;
  open(log);
  ASSERT_EQ(acked_.size(), 5u);
  ASSERT_EQ(append(log, 5), 0);
  EXPECT_EQ(sync(log), 0);
  expect_acked_survive();
}

TEST_F(WalFault, FailedFdatasyncOfReplayedRecordsIsSticky) {
  {
    WalLog log;
    open(log);
    for (uint64_t s = 0; s < 5; ++s) ASSERT_EQ(append(log, s), 0);
  }
  disk_.fail_fdatasync = 1;
  WalLog log;
  open(log);
  acked_.clear();  // what replay found and could not sync is not acknowledged
  ASSERT_EQ(append(log, 5), 0);
  EXPECT_EQ(sync(log), EIO);
  expect_acked_survive();
  drop_before(log, 5);
  EXPECT_EQ(sync(log), 0);
  expect_acked_survive();
}

// An appender rolling segments every 4 records while another thread runs
// group commits, with every 7th fdatasync failing: whatever was
// acknowledged survives (TSan: the roll's fdatasync and sync()'s share
// the failure state).
TEST_F(WalFault, ConcurrentGroupCommitsWithFailingFdatasyncs) {
  WalLog log;
  open(log);
  disk_.fail_every = 7;
  std::atomic<bool> done = false;
  std::atomic<int> failures = 0, successes = 0;
  std::thread syncer([&] {
    while (!done.load()) (sync(log) == 0 ? successes : failures)++;
  });
  uint64_t seq = 0;
  for (int i = 0; i < 400; ++i) {
    if (append(log, seq, 4) == 0) ++seq;
    // Now and then the chunks catch up and the old segments go.
    if (i % 50 == 49) drop_before(log, seq > 6 ? seq - 6 : 0);
  }
  done = true;
  syncer.join();
  EXPECT_GT(failures.load(), 0);
  EXPECT_GT(successes.load(), 0);
  expect_acked_survive();
}

// The group commit on top: the batch whose sync fails fails, and a later
// one is acknowledged only once the segment that failed is gone (its
// records in stored chunks: flush_heads(), or the database flushing by
// itself). Failed batches' samples stay in the heads and reach chunks.
TEST_F(WalFault, DatabaseAcknowledgesNothingAfterAFailedWalSyncUntilFlushed) {
  moni::tsdb::Options o;
  o.path = (dir_ / "db").string();
  o.sync = moni::tsdb::SyncMode::Full;
  auto db = moni::tsdb::Db::open(o);
  ASSERT_TRUE(db.ok()) << db.error().message;
  constexpr int64_t kT0 = 1700000000000;
  auto write = [&](int i) {
    moni::Batch b;
    for (const char* s : {"a", "b", "c"}) b.add(s, {{"job", "j"}}, i, kT0 + i * 15000);
    return (*db)->write(moni::BatchView(b.view()));
  };
  ASSERT_TRUE(write(0).ok());
  disk_.fail_fdatasync = 1;
  EXPECT_FALSE(write(1).ok());
  EXPECT_EQ(disk_.failed_fdatasyncs, 1);
  const fs::path failed = dir_ / "db" / "wal" / "00000000000000000000";
  ASSERT_TRUE(fs::exists(failed));
  for (int i = 2; i < 5; ++i) {
    bool ok = write(i).ok();
    EXPECT_FALSE(ok && fs::exists(failed)) << "batch " << i << " acknowledged";
  }
  ASSERT_TRUE((*db)->flush_heads().ok());
  for (int i = 5; i < 8; ++i) EXPECT_TRUE(write(i).ok()) << "batch " << i;
  EXPECT_EQ(disk_.failed_fdatasyncs, 1);
  size_t samples = 0;
  auto c = (*db)->select(std::vector<moni::Matcher>{}, INT64_MIN, INT64_MAX, true);
  ASSERT_TRUE(c.ok());
  moni_series_view v{};
  for (;;) {
    auto r = (*c)->next(v);
    ASSERT_TRUE(r.ok());
    if (!*r) break;
    samples += v.sample_count;
  }
  EXPECT_EQ(samples, 3u * 8);
}

}  // namespace
