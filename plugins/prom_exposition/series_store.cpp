#include "series_store.hpp"

#include <algorithm>
#include <mutex>

namespace moni::expo {

void SeriesStore::write(const BatchView& batch, int64_t now_ms) {
  std::unique_lock lock(mu_);
  bool changed = false;
  for (const auto& m : batch.metadata()) {
    Metadata& md = meta_[std::string(sv(m.family))];
    md.family.assign(sv(m.family));
    md.type = static_cast<MetricType>(m.type);
    md.help.assign(sv(m.help));
    md.unit.assign(sv(m.unit));
  }
  for (const moni_sample& s : batch.samples()) {
    std::string_view name = find_label(s.labels, s.label_count, kMetricNameLabel);
    key_.assign(name);
    for (uint32_t i = 0; i < s.label_count; ++i) {
      std::string_view n = sv(s.labels[i].name);
      if (n == kMetricNameLabel) continue;
      key_ += '\0';
      key_ += n;
      key_ += '\0';
      key_ += sv(s.labels[i].value);
    }
    if (is_stale_nan(s.value)) {
      changed |= series_.erase(key_) > 0;
      continue;
    }
    auto [it, inserted] = series_.try_emplace(key_);
    Entry& e = it->second;
    if (inserted) {
      changed = true;
      // Labels point into the node's key, which never moves.
      const std::string& k = it->first;
      const char* base = k.data();
      e.labels.reserve(s.label_count);
      size_t pos = name.size();
      bool name_done = false;
      for (uint32_t i = 0; i < s.label_count; ++i) {
        std::string_view n = sv(s.labels[i].name);
        if (n == kMetricNameLabel) {
          e.labels.push_back({ms(kMetricNameLabel), {base, name.size()}});
          name_done = true;
          continue;
        }
        size_t npos = pos + 1;
        size_t vpos = npos + n.size() + 1;
        e.labels.push_back({{base + npos, n.size()}, {base + vpos, s.labels[i].value.len}});
        pos = vpos + s.labels[i].value.len;
      }
      (void)name_done;
      e.seq = next_seq_++;
    }
    // A sample older than what is held (out-of-order pipelines) is ignored.
    if (!inserted && s.timestamp_ms < e.ts_ms) continue;
    e.value = s.value;
    e.ts_ms = s.timestamp_ms;
    e.seen_ms = now_ms;
  }
  // Purge expired series at most once per stale_after/4.
  if (now_ms - last_purge_ms_ >= std::max<int64_t>(stale_after_ms_ / 4, 1000)) {
    last_purge_ms_ = now_ms;
    for (auto it = series_.begin(); it != series_.end();) {
      if (it->second.seen_ms + stale_after_ms_ < now_ms) {
        it = series_.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
  }
  if (changed) {
    // First-seen order keeps what collectors emit together together (and
    // histogram buckets in their ascending order).
    order_.clear();
    order_.reserve(series_.size());
    for (const auto& [k, e] : series_) order_.push_back(&e);
    std::sort(order_.begin(), order_.end(),
              [](const Entry* a, const Entry* b) { return a->seq < b->seq; });
  }
}

}  // namespace moni::expo
