// SeriesStore: the latest sample of every series written to the exposition
// output, with family metadata, expiring series not refreshed for a while.
#pragma once

#include <moni/sdk.hpp>

#include <cstdint>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace moni::expo {

/// Thread-safety: write()/expire() take an exclusive lock, snapshot() a
/// shared one; safe to call from any thread.
class SeriesStore {
 public:
  explicit SeriesStore(int64_t stale_after_ms) : stale_after_ms_(stale_after_ms) {}

  /// Updates series from `batch` at wall time `now_ms`. A staleness marker
  /// removes its series at once.
  void write(const BatchView& batch, int64_t now_ms);

  /// Calls fn(samples, metadata) with the live series (not refreshed within
  /// stale_after of `now_ms` are left out), in the order series were first
  /// seen, while holding the shared lock.
  template <class F>
  void snapshot(int64_t now_ms, F&& fn) const {
    std::shared_lock lock(mu_);
    std::vector<moni_sample> samples;
    samples.reserve(order_.size());
    for (const Entry* e : order_) {
      if (e->seen_ms + stale_after_ms_ < now_ms) continue;
      samples.push_back({e->labels.data(), static_cast<uint32_t>(e->labels.size()), e->value,
                         e->ts_ms});
    }
    std::vector<moni_metadata> meta;
    meta.reserve(meta_.size());
    for (const auto& [family, m] : meta_)
      meta.push_back({ms(m.family), static_cast<uint32_t>(m.type), ms(m.help), ms(m.unit)});
    fn(std::span<const moni_sample>(samples), std::span<const moni_metadata>(meta));
  }

  size_t size() const {
    std::shared_lock lock(mu_);
    return series_.size();
  }

 private:
  struct Entry {
    std::vector<moni_label> labels;  // point into the map key
    double value = 0;
    int64_t ts_ms = 0;
    int64_t seen_ms = 0;
    uint64_t seq = 0;  // first-seen order
  };

  const int64_t stale_after_ms_;
  mutable std::shared_mutex mu_;
  // Key: metric name, then "\0name\0value" per label.
  std::unordered_map<std::string, Entry> series_;
  std::vector<const Entry*> order_;
  std::unordered_map<std::string, Metadata> meta_;
  std::string key_;
  int64_t last_purge_ms_ = 0;
  uint64_t next_seq_ = 0;
};

}  // namespace moni::expo
