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

}  // namespace moni::tsdb
