// Crash test child: appends batch after batch to an lmdb_tsdb instance and
// prints each batch id once write() has returned (acknowledged). The test
// kills it with SIGKILL at a random moment.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "crash_batches.hpp"
#include "plugin_harness.hpp"

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: %s DATA_DIR FIRST_BATCH [SYNC]\n", argv[0]);
    return 2;
  }
  std::string sync = argc == 4 ? argv[3] : "full";
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
  moni::Batch b;
  for (uint64_t k = std::strtoull(argv[2], nullptr, 10);; ++k) {
    crash::fill(b, k);
    auto r = (*h)->write(b);
    if (!r.ok()) {
      std::fprintf(stderr, "write %llu: %s\n", static_cast<unsigned long long>(k),
                   r.error().message.c_str());
      return 1;
    }
    std::string line = std::to_string(k) + "\n";
    if (::write(1, line.data(), line.size()) != static_cast<ssize_t>(line.size())) return 1;
  }
}
