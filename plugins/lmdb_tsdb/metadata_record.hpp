// The value of a metadata table record: type byte, varint help length, help,
// unit. One encoder and one decoder for the writer, the loader and readers.
#pragma once

#include <moni/sample.hpp>
#include <string>
#include <string_view>

#include "chunk_codec.hpp"

namespace moni::tsdb {

inline void encode_metadata_record(const moni_metadata& m, std::string& out) {
  out.clear();
  out.push_back(static_cast<char>(m.type));
  put_varint(out, m.help.len);
  out.append(sv(m.help));
  out.append(sv(m.unit));
}

/// False for a malformed record (skipped by callers, never fatal).
inline bool decode_metadata_record(std::string_view family, std::string_view in, Metadata& m) {
  if (in.empty()) return false;
  m.family = std::string(family);
  m.type = static_cast<MetricType>(static_cast<uint8_t>(in[0]));
  in.remove_prefix(1);
  uint64_t n;
  if (!get_varint(in, n) || n > in.size()) return false;
  m.help = std::string(in.substr(0, n));
  m.unit = std::string(in.substr(n));
  return true;
}

}  // namespace moni::tsdb
