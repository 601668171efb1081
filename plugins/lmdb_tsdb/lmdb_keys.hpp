// Internal: LMDB key layouts and the read transaction wrapper.
#pragma once

#include <lmdb.h>

#include <cstring>
#include <string_view>

#include "tsdb.hpp"

namespace moni::tsdb {

inline void put_be32(char* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}
inline uint32_t get_be32(const void* q) {
  auto* p = static_cast<const uint8_t*>(q);
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline void put_be64(char* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<char>(v & 0xff);
}
inline uint64_t get_be64(const void* q) {
  auto* p = static_cast<const uint8_t*>(q);
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | p[i];
  return v;
}

/// Chunk key: series id (BE) + first timestamp with the sign bit flipped
/// (BE), so a series' chunks are adjacent and sorted by time.
struct ChunkKey {
  char b[12];
  ChunkKey(uint32_t id, int64_t t0) {
    put_be32(b, id);
    put_be64(b + 4, static_cast<uint64_t>(t0) ^ 0x8000000000000000ULL);
  }
  MDB_val val() { return {sizeof b, b}; }
};
inline uint32_t chunk_key_id(const MDB_val& k) { return get_be32(k.mv_data); }
inline int64_t chunk_key_t0(const MDB_val& k) {
  return static_cast<int64_t>(get_be64(static_cast<const char*>(k.mv_data) + 4) ^
                              0x8000000000000000ULL);
}

struct IdKey {
  char b[4];
  explicit IdKey(uint32_t id) { put_be32(b, id); }
  MDB_val val() { return {sizeof b, b}; }
};

inline MDB_val mval(std::string_view s) { return {s.size(), const_cast<char*>(s.data())}; }
inline std::string_view sview(const MDB_val& v) {
  return {static_cast<const char*>(v.mv_data), v.mv_size};
}

/// A read-only transaction holding the env's shared lock (so the map is not
/// resized under it). Thread-safety: one thread at a time.
struct Db::ReadTxn {
  std::shared_lock<std::shared_mutex> lock;
  MDB_txn* txn = nullptr;
  ~ReadTxn() {
    if (txn) mdb_txn_abort(txn);
  }
};

}  // namespace moni::tsdb
