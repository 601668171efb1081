#include "series_store.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>

namespace moni::expo {

bool SeriesStore::same(const Entry& e, const moni_sample& s) {
  if (e.labels.size() != s.label_count) return false;
  // Lengths first; then, when the sample's label text is one run (a Batch
  // lays it out name, value, name, value, ... as the entry's text is), one
  // memcmp instead of two per label.
  size_t total = 0;
  bool one_run = true;
  const char* next = s.label_count ? s.labels[0].name.ptr : nullptr;
  for (uint32_t i = 0; i < s.label_count; ++i) {
    const moni_label& a = e.labels[i];
    const moni_label& b = s.labels[i];
    if (a.name.len != b.name.len || a.value.len != b.value.len) return false;
    one_run = one_run && b.name.ptr == next && b.value.ptr == b.name.ptr + b.name.len;
    next = b.value.ptr + b.value.len;
    total += a.name.len + a.value.len;
  }
  if (one_run) return total == 0 || std::memcmp(e.text.get(), s.labels[0].name.ptr, total) == 0;
  for (uint32_t i = 0; i < s.label_count; ++i) {
    const moni_label& a = e.labels[i];
    const moni_label& b = s.labels[i];
    if (std::memcmp(a.value.ptr, b.value.ptr, a.value.len) != 0 ||
        std::memcmp(a.name.ptr, b.name.ptr, a.name.len) != 0)
      return false;
  }
  return true;
}

uint64_t SeriesStore::hash_of(const moni_sample& s) {
  uint64_t h = s.label_count;
  std::hash<std::string_view> hs;
  for (uint32_t i = 0; i < s.label_count; ++i) {
    h = (h ^ hs(sv(s.labels[i].name))) * 0x9E3779B97F4A7C15ull;
    h = (h ^ hs(sv(s.labels[i].value))) * 0xC2B2AE3D27D4EB4Full;
  }
  return h ^ (h >> 29);
}

SeriesStore::Entry* SeriesStore::find(uint64_t hash, const moni_sample& s) {
  auto [it, end] = series_.equal_range(hash);
  for (; it != end; ++it)
    if (same(it->second, s)) return &it->second;
  return nullptr;
}

SeriesStore::Entry& SeriesStore::insert(uint64_t hash, const moni_sample& s) {
  Entry& e = series_.emplace(hash, Entry{})->second;
  size_t bytes = 0;
  for (uint32_t i = 0; i < s.label_count; ++i)
    bytes += s.labels[i].name.len + s.labels[i].value.len;
  e.text = std::make_unique<char[]>(bytes ? bytes : 1);
  e.labels.resize(s.label_count);
  char* p = e.text.get();
  for (uint32_t i = 0; i < s.label_count; ++i) {
    const moni_label& l = s.labels[i];
    std::memcpy(p, l.name.ptr, l.name.len);
    e.labels[i].name = {p, l.name.len};
    p += l.name.len;
    std::memcpy(p, l.value.ptr, l.value.len);
    e.labels[i].value = {p, l.value.len};
    p += l.value.len;
  }
  e.seq = next_seq_++;
  return e;
}

bool SeriesStore::erase(const moni_sample& s) {
  auto [it, end] = series_.equal_range(hash_of(s));
  for (; it != end; ++it)
    if (same(it->second, s)) {
      series_.erase(it);
      ++epoch_;
      return true;
    }
  return false;
}

bool SeriesStore::update_metadata(const moni_metadata& m) {
  std::string_view family = sv(m.family);
  auto it = meta_.find(family);
  if (it == meta_.end()) {
    Metadata md{std::string(family), static_cast<MetricType>(m.type), std::string(sv(m.help)),
                std::string(sv(m.unit))};
    meta_.emplace(std::string(family), std::move(md));
    meta_view_.clear();
    return false;
  }
  Metadata& md = it->second;
  auto type = static_cast<MetricType>(m.type);
  if (md.type == type && md.help == sv(m.help) && md.unit == sv(m.unit)) return false;
  md.type = type;
  md.help.assign(sv(m.help));
  md.unit.assign(sv(m.unit));
  meta_view_.clear();
  return true;
}

void SeriesStore::write(const BatchView& batch, int64_t now_ms) {
  std::unique_lock lock(mu_);
  generation_.fetch_add(1, std::memory_order_release);
  bool changed = false;
  const auto metas = batch.metadata();
  if (last_meta_.size() < metas.size()) last_meta_.resize(metas.size());
  bool redefined = false;
  for (size_t i = 0; i < metas.size(); ++i) {
    const moni_metadata& m = metas[i];
    SeenMeta& seen = last_meta_[i];
    if (seen.type == m.type && seen.family == sv(m.family) && seen.help == sv(m.help) &&
        seen.unit == sv(m.unit))
      continue;
    redefined |= update_metadata(m);
    seen.family.assign(sv(m.family));
    seen.help.assign(sv(m.help));
    seen.unit.assign(sv(m.unit));
    seen.type = m.type;
  }
  // A family redefined (e.g. two pipelines disagree on its help) may be
  // remembered at other positions with its old text: forget them all, so
  // the last writer still wins as when every batch was looked up.
  if (redefined)
    for (SeenMeta& seen : last_meta_) seen.type = UINT32_MAX;
  if (meta_view_.size() != meta_.size()) {
    ++layout_;
    meta_view_.clear();
    meta_view_.reserve(meta_.size());
    for (const auto& [family, m] : meta_)
      meta_view_.push_back({ms(m.family), static_cast<uint32_t>(m.type), ms(m.help), ms(m.unit)});
  }
  Entry* prev = nullptr;
  for (const moni_sample& s : batch.samples()) {
    if (is_stale_nan(s.value)) {
      changed |= erase(s);
      prev = nullptr;  // may have been the erased one
      continue;
    }
    Entry* e = nullptr;
    if (prev && prev->next_epoch == epoch_ && prev->next && same(*prev->next, s)) {
      e = prev->next;
    } else {
      uint64_t h = hash_of(s);
      e = find(h, s);
      if (!e) {
        e = &insert(h, s);
        changed = true;
        e->value = s.value;
        e->ts_ms = s.timestamp_ms;
      }
      if (prev) {
        prev->next = e;
        prev->next_epoch = epoch_;
      }
    }
    prev = e;
    // A sample older than what is held (out-of-order pipelines) is ignored.
    if (s.timestamp_ms < e->ts_ms) continue;
    e->value = s.value;
    e->ts_ms = s.timestamp_ms;
    e->seen_ms = now_ms;
  }
  // Purge expired series at most once per stale_after/4.
  if (now_ms - last_purge_ms_ >= std::max<int64_t>(stale_after_ms_ / 4, 1000)) {
    last_purge_ms_ = now_ms;
    for (auto it = series_.begin(); it != series_.end();) {
      if (it->second.seen_ms + stale_after_ms_ < now_ms) {
        it = series_.erase(it);
        changed = true;
        ++epoch_;
      } else {
        ++it;
      }
    }
  }
  if (changed) {
    // First-seen order keeps what collectors emit together together (and
    // histogram buckets in their ascending order).
    ++layout_;
    order_.clear();
    order_.reserve(series_.size());
    for (const auto& [h, e] : series_) order_.push_back(&e);
    std::sort(order_.begin(), order_.end(),
              [](const Entry* a, const Entry* b) { return a->seq < b->seq; });
  }
}

}  // namespace moni::expo
