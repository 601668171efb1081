// SeriesStore: the latest sample of every series written to the exposition
// output, with family metadata, expiring series not refreshed for a while.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <moni/sdk.hpp>
#include <shared_mutex>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
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

  /// What a snapshot saw: the store's generation (every write() makes a
  /// new one) and the last wall time at which the same generation still
  /// gives the same snapshot (when its first series goes stale).
  struct SnapshotInfo {
    uint64_t generation = 0;
    int64_t valid_until_ms = 0;
  };

  /// Calls fn(samples, metadata) with the live series (not refreshed within
  /// stale_after of `now_ms` are left out), in the order series were first
  /// seen, while holding the shared lock. `scratch` holds the sample views
  /// (kept by the caller so that a scrape does not allocate them).
  /// fn(samples, metadata, layout_key) also gets a key that is the same for
  /// two snapshots only when they hold the same series in the same order,
  /// with label and metadata text at the same addresses (text::RenderOptions::
  /// layout_key); 0 when series were left out as stale.
  template <class F>
  SnapshotInfo snapshot(int64_t now_ms, std::vector<moni_sample>& scratch, F&& fn) const {
    std::shared_lock lock(mu_);
    scratch.clear();
    scratch.reserve(order_.size());
    int64_t until = INT64_MAX;
    for (const Entry* e : order_) {
      if (e->seen_ms + stale_after_ms_ < now_ms) continue;
      until = std::min(until, e->seen_ms + stale_after_ms_);
      scratch.push_back(
          {e->labels.data(), static_cast<uint32_t>(e->labels.size()), e->value, e->ts_ms});
    }
    std::span<const moni_sample> smp(scratch);
    std::span<const moni_metadata> meta(meta_view_);
    if constexpr (std::is_invocable_v<F, decltype(smp), decltype(meta), uint64_t>)
      fn(smp, meta, scratch.size() == order_.size() ? layout_ : uint64_t{0});
    else
      fn(smp, meta);
    return {generation_.load(std::memory_order_relaxed), until};
  }

  /// The same with a scratch vector of its own (allocates).
  template <class F>
  SnapshotInfo snapshot(int64_t now_ms, F&& fn) const {
    std::vector<moni_sample> scratch;
    return snapshot(now_ms, scratch, std::forward<F>(fn));
  }

  /// Changes with every write(); a snapshot of the same generation taken
  /// before its valid_until_ms is the same.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

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
  /// True when an existing family changed its type, help or unit.
  bool update_metadata(const moni_metadata& m);

  const int64_t stale_after_ms_;
  mutable std::shared_mutex mu_;
  std::unordered_multimap<uint64_t, Entry> series_;  // by label-set hash
  std::vector<const Entry*> order_;
  std::unordered_map<std::string, Metadata, MetaHash, std::equal_to<>> meta_;
  std::vector<moni_metadata> meta_view_;  // into meta_, rebuilt when it changes
  int64_t last_purge_ms_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t epoch_ = 1;
  // Bumped when order_ or meta_view_ is rebuilt: see snapshot()'s layout key.
  uint64_t layout_ = 1;
  // Bumped under the exclusive lock at the start of each write(), so a
  // reader that sees the old value saw the store as it was before it.
  std::atomic<uint64_t> generation_{1};
  // Metadata of the last batch, by position: a collector describes the
  // same families in the same order every cycle, so a warm write() checks
  // them with compares instead of hashing every family name.
  struct SeenMeta {
    std::string family, help, unit;
    uint32_t type = 0;
  };
  std::vector<SeenMeta> last_meta_;
};

}  // namespace moni::expo
