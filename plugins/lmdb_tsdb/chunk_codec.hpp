// Sample chunks: delta-of-delta timestamps plus, per chunk, the smaller of
// Gorilla XOR floats or decimal-scaled integers (delta or delta-of-delta),
// which is what most counters and gauges are. Bit-exact for every float64,
// including NaN payloads, the staleness marker, +-Inf and -0.0.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace moni::tsdb {

/// Appends bits MSB-first to a byte string. Thread-safety: none.
class BitWriter {
 public:
  explicit BitWriter(std::string* out) : out_(out) {}
  /// Continues a stream whose last byte holds `used` valid bits (1..8).
  void resume(uint8_t used) { used_ = used; }
  void bit(bool b);
  void bits(uint64_t v, unsigned n);  // the low n bits of v, n <= 64
  uint8_t used() const { return used_; }

 private:
  std::string* out_;
  uint8_t used_ = 8;  // bits used in the last byte; 8: start a new byte
};

/// Reads bits MSB-first; reading past the end yields zeros and sets bad().
/// Thread-safety: none.
class BitReader {
 public:
  BitReader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  bool bit();
  uint64_t bits(unsigned n);
  bool bad() const { return bad_; }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;  // in bits
  bool bad_ = false;
};

/// Value encodings of a chunk.
// Mode byte: kModeXor, kModeConst (one value, stored once), or low nibble
// = decimal scale, bits 4-5 = order and bits 6-7 = bucket table.
inline constexpr uint8_t kModeXor = 0x0f;
inline constexpr uint8_t kModeConst = 0x0e;

/// Timestamp coding of a chunk: delta-of-delta (width 0), or offsets from a
/// regular grid t0 + k * step: each sample writes `width` bits, base +
/// offset, all ones escaping to an explicit grid skip and offset (missed
/// scrapes, outliers). Scrapes on a ticker cost 1-3 bits per timestamp.
struct TsGrid {
  uint8_t width = 0;  // 0: delta-of-delta; 1..7: grid
  uint64_t step = 0;
  int64_t base = 0;
};

/// The open (head) chunk of one series: appends one sample at a time in O(1)
/// and serializes to the same format as a closed chunk.
/// Format: [mode u8][factor varint, integer modes][value u64, const mode]
/// [count varint][maxt-t0 varint][grid width u8][grid step varint, grid
/// base zigzag varint: width > 0][bit stream]; t0 is kept outside the blob
/// (in the LMDB key of a closed chunk).
/// Thread-safety: none.
class ChunkEncoder {
 public:
  void reset();
  bool empty() const { return count_ == 0; }
  uint32_t count() const { return count_; }
  int64_t t0() const { return t0_; }
  int64_t maxt() const { return last_t_; }
  /// Appends a sample; the caller guarantees t > maxt() unless empty.
  void append(int64_t t, double v);
  /// The serialized chunk (header + bits).
  void serialize(std::string& out) const;
  size_t byte_size() const { return bits_.size() + 8; }
  /// Restores from a serialized chunk whose first timestamp is t0.
  bool load(int64_t t0, std::string_view blob);
  /// Replaces the contents with `ts`/`vs` encoded in `mode` (which must fit).
  /// `factor` divides every step of the scaled integers (int modes only).
  void reencode(uint8_t mode, const std::vector<int64_t>& ts, const std::vector<double>& vs,
                uint64_t factor = 1, TsGrid grid = {});
  uint8_t mode() const { return mode_; }

  /// Cheap undo of appends: a mark restores the encoder as long as it was
  /// not reset or re-encoded since (same epoch()).
  struct Mark {
    size_t bytes;
    uint8_t last_byte, used, mode, lead, trail;
    uint32_t count;
    int64_t t0, last_t, last_n;
    uint64_t last_dt, last_vbits, last_dn, factor, epoch;
    int64_t last_k;
  };
  Mark mark() const;
  void restore(const Mark& m);
  /// Bumped whenever existing bytes are rewritten (reset, re-encode).
  uint64_t epoch() const { return epoch_; }
  /// Whether appending `v` re-encodes the chunk (value mode change).
  bool needs_reencode(double v) const;
  /// The header part of serialize(), and the raw bit stream.
  void serialize_header(std::string& out) const;
  std::string_view bits() const { return bits_; }

 private:
  void append_value(double v);
  void append_ts(BitWriter& w, int64_t t);

  std::string bits_;
  uint8_t used_ = 8;
  uint8_t mode_ = kModeXor;
  uint32_t count_ = 0;
  int64_t t0_ = 0, last_t_ = 0;
  uint64_t last_dt_ = 0;
  // XOR state
  uint64_t last_vbits_ = 0;
  uint8_t lead_ = 0xff, trail_ = 0;
  // integer state
  int64_t last_n_ = 0;
  uint64_t last_dn_ = 0;
  uint64_t factor_ = 1;
  uint64_t epoch_ = 0;
  TsGrid grid_;
  int64_t last_k_ = 0;  // grid index of the last sample
};

/// Decodes a chunk blob (t0 supplied by the caller) into `ts`/`vs`
/// (appending). Returns false when the blob is malformed.
bool decode_chunk(int64_t t0, std::string_view blob, std::vector<int64_t>& ts,
                  std::vector<double>& vs);

/// Header fields without decoding the samples.
struct ChunkInfo {
  uint32_t count = 0;
  int64_t maxt = 0;
};
bool chunk_info(int64_t t0, std::string_view blob, ChunkInfo& out);

struct HeadSample;  // head_pool.hpp

/// Encodes samples (strictly increasing timestamps) choosing the smallest of
/// the supported value encodings. `out` is replaced. Counts each candidate's
/// size and writes only the winner; the timestamps' codes are reused while
/// consecutive calls on one thread pass equal timestamps (the series of one
/// scrape target). Same bytes as encode_chunk_reference.
void encode_chunk_best(const int64_t* ts, const double* vs, size_t n, std::string& out);
/// The same from a head's (t, v) pairs, without copying them apart.
void encode_chunk_best(const HeadSample* samples, size_t n, std::string& out);
/// The straightforward encoder (each candidate encoded in full): slower,
/// the reference for tests and benchmarks.
void encode_chunk_reference(const int64_t* ts, const double* vs, size_t n, std::string& out);

// Varints (LEB128), shared with the other on-disk records.
void put_varint(std::string& out, uint64_t v);
/// Writes at `p` (room for 10 bytes); returns the end.
inline char* put_varint(char* p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  *p++ = static_cast<char>(v);
  return p;
}
bool get_varint(std::string_view& in, uint64_t& v);

}  // namespace moni::tsdb
