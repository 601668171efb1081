// SeriesStore: the latest sample of every series written to the exposition
// output, with family metadata, expiring series not refreshed for a while.
#pragma once

#include <cstdint>
#include <memory>
#include <moni/sdk.hpp>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace moni::expo {

/// Thread-safety: write() takes an exclusive lock, snapshot() a shared one;
/// safe to call from any thread.
///
/// Cost: a collector emits the same series in the same order every cycle,
/// so each series remembers the one that followed it in the last batch; a
/// write() then compares each sample with the predicted series (no hashing,
/// no allocation) and falls back to a hash lookup only when the prediction
/// misses (new series, reordered or interleaved batches).
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
      samples.push_back(
          {e->labels.data(), static_cast<uint32_t>(e->labels.size()), e->value, e->ts_ms});
    }
    fn(std::span<const moni_sample>(samples), std::span<const moni_metadata>(meta_view_));
  }

  size_t size() const {
    std::shared_lock lock(mu_);
    return series_.size();
  }

 private:
  struct Entry {
    std::unique_ptr<char[]> text;    // label names and values, back to back
    std::vector<moni_label> labels;  // into `text`, in the batch's order
    double value = 0;
    int64_t ts_ms = 0;
    int64_t seen_ms = 0;
    uint64_t seq = 0;  // first-seen order
    // The series after this one in the last batch it came in (valid while
    // next_epoch == epoch_: erasing any series invalidates them all).
    Entry* next = nullptr;
    uint64_t next_epoch = 0;
  };
  struct MetaHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };

  static bool same(const Entry& e, const moni_sample& s);
  static uint64_t hash_of(const moni_sample& s);
  Entry* find(uint64_t hash, const moni_sample& s);
  Entry& insert(uint64_t hash, const moni_sample& s);
  bool erase(const moni_sample& s);
  void update_metadata(const moni_metadata& m);

  const int64_t stale_after_ms_;
  mutable std::shared_mutex mu_;
  std::unordered_multimap<uint64_t, Entry> series_;  // by label-set hash
  std::vector<const Entry*> order_;
  std::unordered_map<std::string, Metadata, MetaHash, std::equal_to<>> meta_;
  std::vector<moni_metadata> meta_view_;  // into meta_, rebuilt when it changes
  int64_t last_purge_ms_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t epoch_ = 1;
};

}  // namespace moni::expo
