// Replays recorded node_exporter scrapes (text exposition, each preceded by
// "# SCRAPE <unix ms>") as a longer series set: gauges play the recording
// forwards and backwards, counters continue with the recorded increments
// (in exact decimal steps), and each scrape keeps its recorded jitter
// against the 15 s grid.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

struct ReplaySeries {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // sorted, without __name__
  bool counter = false;
  int scale = -1;              // decimals that make every value an integer, or -1
  std::vector<double> values;  // per recorded scrape (NaN bits 0x7ff8...1: absent)
  std::vector<int64_t> steps;  // counters: scaled increments between recorded scrapes
};

class ScrapeReplay {
 public:
  /// Loads a recording; returns false with `err` set on a malformed file.
  bool load(const std::string& path, std::string& err);
  size_t scrapes() const { return jitter_.size(); }
  const std::vector<ReplaySeries>& series() const { return series_; }
  /// Value of series `i` at scrape `j` (any j >= 0); false when absent.
  bool value(size_t i, int64_t j, double& out);
  /// Offset of scrape j from the 15 s grid, as recorded.
  int64_t jitter(int64_t j) const { return jitter_[static_cast<size_t>(j) % jitter_.size()]; }

 private:
  std::vector<ReplaySeries> series_;
  std::vector<int64_t> jitter_;
  std::vector<int64_t> counter_now_;  // scaled running value of counters
  std::vector<int64_t> counter_j_;    // scrape index counter_now_ is at
};
