// Crash test: a child process appends acknowledged batches and is killed
// with SIGKILL at random moments, several times. Afterwards the database
// opens without any repair step and holds every acknowledged batch, bit for
// bit.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>

#include "crash_batches.hpp"
#include "plugin_harness.hpp"

namespace fs = std::filesystem;

namespace {

// Runs the child from `first` for about `ms` milliseconds, kills it, and
// returns the batch ids it acknowledged.
std::vector<uint64_t> run_and_kill(const std::string& dir, uint64_t first, int ms,
                                   const char* sync) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::string f = std::to_string(first);
    ::execl(CRASH_CHILD, CRASH_CHILD, dir.c_str(), f.c_str(), sync, static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::vector<uint64_t> acked;
  std::string buf;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  bool started = false;
  auto drain = [&](int timeout_ms) {
    pollfd p{fds[0], POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return false;
    char tmp[4096];
    ssize_t n = ::read(fds[0], tmp, sizeof tmp);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      acked.push_back(std::stoull(buf.substr(0, nl)));
      buf.erase(0, nl + 1);
    }
    return true;
  };
  // The kill timer starts at the first acknowledgement (process start-up
  // under sanitizers takes a while).
  auto start_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!started && std::chrono::steady_clock::now() < start_deadline) {
    drain(50);
    if (!acked.empty()) {
      started = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    }
  }
  while (std::chrono::steady_clock::now() < deadline) drain(5);
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFSIGNALED(status)) << "child exited by itself, status " << status;
  // Lines already in the pipe were acknowledged before the kill.
  while (drain(0)) {
  }
  ::close(fds[0]);
  return acked;
}

// Kills the child 6 times, then checks every acknowledged batch bit for bit.
void crash_rounds(const char* sync) {
  fs::path dir = fs::temp_directory_path() /
                 ("lmdb_tsdb_crash_" + std::string(sync) + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::random_device rd;
  unsigned seed = rd();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  std::vector<uint64_t> acked;
  uint64_t next = 0;
  for (int round = 0; round < 6; ++round) {
    auto got = run_and_kill(dir.string(), next, 30 + static_cast<int>(rng() % 400), sync);
    ASSERT_FALSE(got.empty()) << "round " << round << ": the child acknowledged nothing";
    for (size_t i = 1; i < got.size(); ++i) ASSERT_EQ(got[i], got[i - 1] + 1);
    acked.insert(acked.end(), got.begin(), got.end());
    // Batches after the last acknowledged one may or may not be stored;
    // writing them again is harmless (identical duplicates are ignored).
    next = got.back() + 1;
  }

  auto h = moni::testing::PluginHarness::load(moni::testing::plugin_path("lmdb_tsdb"),
                                              "chunk_samples = 10\ncheckpoint_records = 7", "tsdb",
                                              dir.string());
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto st = (*h)->start();
  ASSERT_TRUE(st.ok()) << "the database must open without repair: " << st.error().message;
  moni::StorageClient c((*h)->reader());
  std::map<int, std::map<int64_t, uint64_t>> stored;  // series -> ts -> value bits
  std::vector<moni::Matcher> ms{{moni::MatchType::Equal, "__name__", "crash_metric"}};
  auto r = c.select(ms, INT64_MIN, INT64_MAX, true, [&](const moni::SeriesView& v) {
    int s = std::stoi(std::string(v.label("series")));
    for (size_t i = 0; i < v.timestamps_ms.size(); ++i)
      stored[s][v.timestamps_ms[i]] = std::bit_cast<uint64_t>(v.values[i]);
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(stored.size(), static_cast<size_t>(crash::kSeries));
  size_t checked = 0;
  for (uint64_t k : acked)
    for (int s = 0; s < crash::kSeries; ++s) {
      int64_t ts = crash::kT0 + static_cast<int64_t>(k) * 1000;
      auto it = stored[s].find(ts);
      ASSERT_NE(it, stored[s].end()) << "acknowledged batch " << k << " series " << s << " lost";
      ASSERT_EQ(it->second, std::bit_cast<uint64_t>(crash::value(k, s)))
          << "batch " << k << " series " << s;
      ++checked;
    }
  EXPECT_GT(checked, 0u);
  std::printf("verified %zu acknowledged batches (%zu samples) over 6 kills\n", acked.size(),
              checked);
  // Nothing beyond what was written, and no gaps.
  for (auto& [s, m] : stored)
    EXPECT_EQ(m.size(), m.empty() ? 0 : (m.rbegin()->first - m.begin()->first) / 1000 + 1);
  (*h)->stop();
  fs::remove_all(dir);
}

}  // namespace

TEST(LmdbTsdbCrash, AcknowledgedBatchesSurviveSigkill) { crash_rounds("full"); }

// Without fsync the writer runs ~100x faster, so kills are likely to land
// while cut chunks wait in the chunk thread's queue: their samples must
// come back from the WAL (the OS keeps the written pages).
TEST(LmdbTsdbCrash, AcknowledgedBatchesSurviveSigkillWithQueuedCuts) { crash_rounds("none"); }
