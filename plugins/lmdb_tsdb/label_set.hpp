// Canonical label-set bytes (the series table's values and the in-memory
// series index's keys) and the inverted index's (name, value) keys.
#pragma once

#include <moni/plugin_abi.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moni::tsdb {

/// Longest label name accepted; longer ones are rejected per sample.
inline constexpr size_t kMaxLabelName = 256;
/// LMDB keys are at most 511 bytes; longer (name, value) keys are truncated
/// to exactly this size with a hash of the value at the end.
inline constexpr size_t kPostingKeyTruncated = 480;

/// Appends the canonical encoding of sorted labels: per label
/// varint(len) name varint(len) value.
void encode_labels(const moni_label* labels, uint32_t n, std::string& out);

/// Decodes canonical bytes into label views that point into `bytes`.
bool decode_labels(std::string_view bytes, std::vector<moni_label>& out);

/// The inverted index key of (name, value).
void posting_key(std::string_view name, std::string_view value, std::string& out);
/// Splits a posting key; `truncated` tells that `value` is only a prefix.
bool split_posting_key(std::string_view key, std::string_view& name, std::string_view& value,
                       bool& truncated);

uint64_t hash64(std::string_view s);

/// A fast hash of a sorted label array (the writer's series cache key).
uint64_t label_set_hash(const moni_label* labels, uint32_t n);
/// Whether `labels` encode to exactly the canonical bytes `key`.
bool labels_equal(const moni_label* labels, uint32_t n, std::string_view key);
/// The label bytes of canonical `key` back to back, without lengths.
void raw_label_bytes(std::string_view key, std::string& out);
/// labels_equal() for the writer's hot path: when the labels lie back to
/// back in memory (the SDK's Batch arena puts them so), the lengths are
/// checked against the key and all bytes with one memcmp against `raw`
/// (raw_label_bytes of `key`); other layouts take labels_equal().
inline bool labels_equal_fast(const moni_label* labels, uint32_t n, std::string_view key,
                              std::string_view raw) {
  const auto* p = reinterpret_cast<const uint8_t*>(key.data());
  const uint8_t* end = p + key.size();
  if (n == 0) return key.empty();
  const char* start = labels[0].name.ptr;
  const char* expect = start;
  for (uint32_t i = 0; i < n; ++i) {
    const moni_str& a = labels[i].name;
    const moni_str& b = labels[i].value;
    if (a.ptr != expect || b.ptr != a.ptr + a.len || p >= end || *p >= 0x80)
      return labels_equal(labels, n, key);
    if (*p != a.len) return false;
    p += 1 + a.len;
    if (p >= end || *p >= 0x80) return labels_equal(labels, n, key);
    if (*p != b.len) return false;
    p += 1 + b.len;
    expect = b.ptr + b.len;
  }
  if (p != end) return false;
  auto len = static_cast<size_t>(expect - start);
  return len == raw.size() && (len == 0 || __builtin_memcmp(start, raw.data(), len) == 0);
}

}  // namespace moni::tsdb
