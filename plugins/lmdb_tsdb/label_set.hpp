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
/// The writer's compact copy of canonical `key` for labels_equal_fast():
/// label count, each name's and value's length (one byte each), then all
/// label bytes back to back. Appends nothing and returns false when a
/// length or the count exceeds 255 (such series take labels_equal()).
bool pack_labels(std::string_view key, std::string& out);
/// labels_equal() for the writer's hot path: when the labels lie back to
/// back in memory (the SDK's Batch arena puts them so), the lengths are
/// checked against `packed` (pack_labels of `key`, or empty) and all bytes
/// with one memcmp; other layouts take labels_equal(). `packed` sits in
/// one arena in series order, so the check does not touch `key` at all.
inline bool labels_equal_fast(const moni_label* labels, uint32_t n, std::string_view key,
                              std::string_view packed) {
  if (packed.empty() || n == 0) return labels_equal(labels, n, key);
  const auto* p = reinterpret_cast<const uint8_t*>(packed.data());
  if (*p++ != n) return false;
  const char* start = labels[0].name.ptr;
  const char* expect = start;
  for (uint32_t i = 0; i < n; ++i, p += 2) {
    const moni_str& a = labels[i].name;
    const moni_str& b = labels[i].value;
    if (a.ptr != expect || b.ptr != a.ptr + a.len) return labels_equal(labels, n, key);
    if (p[0] != a.len || p[1] != b.len) return false;
    expect = b.ptr + b.len;
  }
  auto len = static_cast<size_t>(expect - start);
  const char* raw = reinterpret_cast<const char*>(p);
  return raw + len == packed.data() + packed.size() &&
         (len == 0 || __builtin_memcmp(start, raw, len) == 0);
}

}  // namespace moni::tsdb
