// Crash test child: appends batch after batch to an lmdb_tsdb instance and
// prints "WRITER BATCH" once write() has returned (acknowledged). With
// WRITERS > 1, that many threads write concurrently, each its own series,
// starting at its own first batch (FIRSTS: comma-separated, one per
// writer). The test kills it with SIGKILL at a random moment.
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "crash_batches.hpp"
#include "plugin_harness.hpp"

int main(int argc, char** argv) {
  if (argc < 3 || argc > 5) {
    std::fprintf(stderr, "usage: %s DATA_DIR FIRSTS [SYNC [WRITERS]]\n", argv[0]);
    return 2;
  }
  std::string sync = argc >= 4 ? argv[3] : "full";
  int writers = argc == 5 ? std::atoi(argv[4]) : 1;
  std::vector<uint64_t> firsts;
  std::string list = argv[2];
  for (size_t p = 0; p <= list.size();) {
    size_t c = std::min(list.find(',', p), list.size());
    firsts.push_back(std::strtoull(list.substr(p, c - p).c_str(), nullptr, 10));
    p = c + 1;
  }
  firsts.resize(static_cast<size_t>(writers), firsts.empty() ? 0 : firsts.back());
  auto h = moni::testing::PluginHarness::load(
      moni::testing::plugin_path("lmdb_tsdb"),
      "sync = \"" + sync + "\"\nchunk_samples = 10\ncheckpoint_records = 7", "tsdb", argv[1]);
  if (!h.ok()) {
    std::fprintf(stderr, "load: %s\n", h.error().message.c_str());
    return 1;
  }
  if (auto r = (*h)->start(); !r.ok()) {
    std::fprintf(stderr, "start: %s\n", r.error().message.c_str());
    return 1;
  }
  auto run = [&](int w) {
    moni::Batch b;
    for (uint64_t k = firsts[static_cast<size_t>(w)];; ++k) {
      crash::fill(b, k, writers > 1 ? w : -1);
      auto r = (*h)->write(b);
      if (!r.ok()) {
        std::fprintf(stderr, "write %d %llu: %s\n", w, static_cast<unsigned long long>(k),
                     r.error().message.c_str());
        std::_Exit(1);
      }
      // One write() per line: whole lines in the pipe (< PIPE_BUF).
      std::string line = std::to_string(w) + " " + std::to_string(k) + "\n";
      if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) std::_Exit(1);
    }
  };
  std::vector<std::thread> ts;
  for (int w = 1; w < writers; ++w) ts.emplace_back(run, w);
  run(0);
}
