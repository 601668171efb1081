#include "wire_encoder.hpp"

#include <cstring>

namespace moni::remote_write {

namespace {

constexpr uint64_t kMul = 0x9E3779B97F4A7C15ULL;

inline uint64_t mix(uint64_t x) {
  x ^= x >> 32;
  x *= 0xD6E8FEB86659FD93ULL;
  x ^= x >> 32;
  return x;
}

inline void put_varint(std::string& out, uint64_t v) {
  char buf[10];
  int n = 0;
  while (v >= 0x80) {
    buf[n++] = static_cast<char>(v | 0x80);
    v >>= 7;
  }
  buf[n++] = static_cast<char>(v);
  out.append(buf, n);
}

inline size_t varint_size(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

inline void put_string_field(std::string& out, char tag, std::string_view s) {
  out.push_back(tag);
  put_varint(out, s.size());
  out.append(s);
}

// Sample { double value = 1; int64 timestamp = 2; } as TimeSeries field 2.
inline size_t sample_size(int64_t ts) { return 1 + 8 + 1 + varint_size(static_cast<uint64_t>(ts)); }

inline void put_sample(std::string& out, double value, int64_t ts) {
  size_t inner = sample_size(ts);
  out.push_back(0x12);
  put_varint(out, inner);
  out.push_back(0x09);
  char b[8];
  std::memcpy(b, &value, 8);  // little-endian fixed64, NaN payloads (staleness) kept
  out.append(b, 8);
  out.push_back(0x10);
  put_varint(out, static_cast<uint64_t>(ts));
}

uint32_t proto_type(MetricType t) {
  switch (t) {
    case MetricType::Counter:
      return 1;
    case MetricType::Gauge:
      return 2;
    case MetricType::Histogram:
      return 3;
    case MetricType::GaugeHistogram:
      return 4;
    case MetricType::Summary:
      return 5;
    case MetricType::Info:
      return 6;
    case MetricType::StateSet:
      return 7;
    default:
      return 0;
  }
}

}  // namespace

uint64_t stable_hash(std::string_view s) {
  uint64_t h = 0x243F6A8885A308D3ULL ^ (s.size() * kMul);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, 8);
    h = (h ^ mix(w)) * kMul;
  }
  uint64_t tail = 0;
  std::memcpy(&tail, s.data() + i, s.size() - i);
  h = (h ^ mix(tail ^ (s.size() - i))) * kMul;
  return mix(h);
}

void encode_label(std::string& out, std::string_view name, std::string_view value) {
  size_t inner =
      1 + varint_size(name.size()) + name.size() + 1 + varint_size(value.size()) + value.size();
  out.push_back(0x0a);
  put_varint(out, inner);
  put_string_field(out, 0x0a, name);
  put_string_field(out, 0x12, value);
}

void RecordBuilder::add(std::string_view encoded_labels, double value, int64_t ts_ms) {
  // try_emplace with a string key copies only for a new series.
  auto [it, inserted] =
      index_.try_emplace(std::string(encoded_labels), static_cast<uint32_t>(series_.size()));
  if (inserted)
    series_.push_back(
        {&it->first, static_cast<uint32_t>(stable_hash(encoded_labels) % partitions_)});
  series_[it->second].count++;
  points_.push_back({it->second, value, ts_ms});
}

void RecordBuilder::add_metadata(std::string_view family, MetricType type, std::string_view help,
                                 std::string_view unit) {
  std::string inner;
  inner.push_back(0x08);
  put_varint(inner, proto_type(type));
  put_string_field(inner, 0x12, family);
  if (!help.empty()) put_string_field(inner, 0x22, help);
  if (!unit.empty()) put_string_field(inner, 0x2a, unit);
  metadata_.push_back(0x1a);
  put_varint(metadata_, inner.size());
  metadata_ += inner;
}

void RecordBuilder::finish(std::vector<QueueRecord>& out) {
  out.clear();
  // Stable counting sort of points by series: each series' samples stay in
  // the order they were written.
  uint32_t off = 0;
  for (auto& s : series_) {
    s.offset = off;
    off += s.count;
    s.count = 0;
  }
  sorted_.resize(points_.size());
  for (const auto& p : points_) {
    Series& s = series_[p.series];
    sorted_[s.offset + s.count++] = p;
  }

  std::vector<std::vector<uint32_t>> by_partition(partitions_);
  for (uint32_t i = 0; i < series_.size(); ++i) by_partition[series_[i].partition].push_back(i);

  for (uint32_t p = 0; p < partitions_; ++p) {
    QueueRecord* cur = nullptr;
    auto new_record = [&] {
      out.push_back({p, 0, {}});
      cur = &out.back();
    };
    if (p == 0 && !metadata_.empty()) {
      new_record();
      cur->payload = std::move(metadata_);
    }
    for (uint32_t si : by_partition[p]) {
      const Series& s = series_[si];
      uint32_t done = 0;
      while (done < s.count) {
        if (!cur || cur->samples >= max_samples_) new_record();
        uint32_t k = std::min(s.count - done, max_samples_ - cur->samples);
        size_t inner = s.labels->size();
        for (uint32_t j = 0; j < k; ++j) {
          const Point& pt = sorted_[s.offset + done + j];
          size_t ss = sample_size(pt.ts);
          inner += 1 + varint_size(ss) + ss;
        }
        std::string& b = cur->payload;
        b.push_back(0x0a);
        put_varint(b, inner);
        b.append(*s.labels);
        for (uint32_t j = 0; j < k; ++j) {
          const Point& pt = sorted_[s.offset + done + j];
          put_sample(b, pt.value, pt.ts);
        }
        cur->samples += k;
        done += k;
      }
    }
  }
  index_.clear();
  series_.clear();
  points_.clear();
  metadata_.clear();
}

}  // namespace moni::remote_write
