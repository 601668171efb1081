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

// Runs the child (writer w from firsts[w]) for about `ms` milliseconds,
// kills it, and returns the batch ids each writer acknowledged.
std::vector<std::vector<uint64_t>> run_and_kill(const std::string& dir,
                                                const std::vector<uint64_t>& firsts, int ms,
                                                const char* sync) {
  int fds[2];
  EXPECT_EQ(::pipe(fds), 0);
  pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    ::close(fds[1]);
    std::string f, n = std::to_string(firsts.size());
    for (uint64_t x : firsts) f += (f.empty() ? "" : ",") + std::to_string(x);
    ::execl(CRASH_CHILD, CRASH_CHILD, dir.c_str(), f.c_str(), sync, n.c_str(),
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  ::close(fds[1]);
  std::vector<std::vector<uint64_t>> acked(firsts.size());
  size_t lines = 0;
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
      size_t sp = buf.find(' ');
      auto w = static_cast<size_t>(std::stoul(buf.substr(0, sp)));
      EXPECT_LT(w, acked.size());
      if (w < acked.size()) acked[w].push_back(std::stoull(buf.substr(sp + 1, nl - sp - 1)));
      ++lines;
      buf.erase(0, nl + 1);
    }
    return true;
  };
  // The kill timer starts at the first acknowledgement (process start-up
  // under sanitizers takes a while).
  auto start_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!started && std::chrono::steady_clock::now() < start_deadline) {
    drain(50);
    if (lines > 0) {
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

// Kills the child 6 times, then checks every acknowledged batch of every
// writer bit for bit.
void crash_rounds(const char* sync, int writers = 1) {
  fs::path dir =
      fs::temp_directory_path() / ("lmdb_tsdb_crash_" + std::string(sync) + "_" +
                                   std::to_string(writers) + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::random_device rd;
  unsigned seed = rd();
  SCOPED_TRACE("seed " + std::to_string(seed));
  std::mt19937 rng(seed);
  auto nw = static_cast<size_t>(writers);
  std::vector<std::vector<uint64_t>> acked(nw);
  std::vector<uint64_t> next(nw, 0);
  for (int round = 0; round < 6; ++round) {
    auto got = run_and_kill(dir.string(), next, 30 + static_cast<int>(rng() % 400), sync);
    size_t any = 0;
    for (size_t w = 0; w < nw; ++w) {
      const auto& g = got[w];
      any += g.size();
      for (size_t i = 1; i < g.size(); ++i) ASSERT_EQ(g[i], g[i - 1] + 1);
      if (!g.empty()) {
        ASSERT_EQ(g.front(), next[w]);
      }
      acked[w].insert(acked[w].end(), g.begin(), g.end());
      // Batches after the last acknowledged one may or may not be stored;
      // writing them again is harmless (identical duplicates are ignored).
      if (!g.empty()) next[w] = g.back() + 1;
    }
    ASSERT_GT(any, 0u) << "round " << round << ": the child acknowledged nothing";
  }

  auto h = moni::testing::PluginHarness::load(moni::testing::plugin_path("lmdb_tsdb"),
                                              "chunk_samples = 10\ncheckpoint_records = 7", "tsdb",
                                              dir.string());
  ASSERT_TRUE(h.ok()) << h.error().message;
  auto st = (*h)->start();
  ASSERT_TRUE(st.ok()) << "the database must open without repair: " << st.error().message;
  moni::StorageClient c((*h)->reader());
  // (writer, series) -> ts -> value bits; writer -1: the single writer.
  std::map<std::pair<int, int>, std::map<int64_t, uint64_t>> stored;
  std::vector<moni::Matcher> ms{{moni::MatchType::Equal, "__name__", "crash_metric"}};
  auto r = c.select(ms, INT64_MIN, INT64_MAX, true, [&](const moni::SeriesView& v) {
    int s = std::stoi(std::string(v.label("series")));
    std::string ws(v.label("writer"));
    int w = ws.empty() ? -1 : std::stoi(ws);
    for (size_t i = 0; i < v.timestamps_ms.size(); ++i)
      stored[{w, s}][v.timestamps_ms[i]] = std::bit_cast<uint64_t>(v.values[i]);
    return true;
  });
  ASSERT_TRUE(r.ok()) << r.error().message;
  size_t checked = 0, batches = 0;
  for (size_t wi = 0; wi < nw; ++wi) {
    int w = writers > 1 ? static_cast<int>(wi) : -1;
    batches += acked[wi].size();
    for (uint64_t k : acked[wi])
      for (int s = 0; s < crash::kSeries; ++s) {
        int64_t ts = crash::kT0 + static_cast<int64_t>(k) * 1000;
        auto& m = stored[{w, s}];
        auto it = m.find(ts);
        ASSERT_NE(it, m.end()) << "acknowledged batch " << k << " of writer " << w << " series "
                               << s << " lost";
        ASSERT_EQ(it->second,
                  std::bit_cast<uint64_t>(crash::value(k, s + (w + 1) * crash::kSeries)))
            << "batch " << k << " writer " << w << " series " << s;
        ++checked;
      }
  }
  EXPECT_GT(checked, 0u);
  std::printf("verified %zu acknowledged batches (%zu samples) of %d writer(s) over 6 kills\n",
              batches, checked, writers);
  // Nothing beyond what was written, and no gaps.
  for (auto& [ws, m] : stored)
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

// Four threads writing concurrently (group commit with "full"): every
// batch any of them had acknowledged survives, bit for bit.
TEST(LmdbTsdbCrash, ConcurrentWritersAcknowledgedBatchesSurviveSigkill) { crash_rounds("full", 4); }

TEST(LmdbTsdbCrash, ConcurrentWritersWithQueuedCutsSurviveSigkill) { crash_rounds("none", 4); }
