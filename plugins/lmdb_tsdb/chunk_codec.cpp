#include "chunk_codec.hpp"

#include <bit>
#include <cmath>
#include <numeric>

namespace moni::tsdb {

// ------------------------------------------------------------------ bits

void BitWriter::bit(bool b) {
  if (used_ == 8) {
    out_->push_back('\0');
    used_ = 0;
  }
  if (b) out_->back() = static_cast<char>(static_cast<uint8_t>(out_->back()) | (0x80u >> used_));
  ++used_;
}

void BitWriter::bits(uint64_t v, unsigned n) {
  while (n > 0) {
    if (used_ == 8) {
      out_->push_back('\0');
      used_ = 0;
    }
    unsigned room = 8u - used_;
    unsigned take = n < room ? n : room;
    uint8_t chunk = static_cast<uint8_t>((v >> (n - take)) & ((1u << take) - 1u));
    out_->back() = static_cast<char>(static_cast<uint8_t>(out_->back()) |
                                     static_cast<uint8_t>(chunk << (room - take)));
    used_ = static_cast<uint8_t>(used_ + take);
    n -= take;
  }
}

bool BitReader::bit() {
  if (pos_ >= n_ * 8) {
    bad_ = true;
    return false;
  }
  bool b = (p_[pos_ >> 3] >> (7 - (pos_ & 7))) & 1;
  ++pos_;
  return b;
}

uint64_t BitReader::bits(unsigned n) {
  uint64_t v = 0;
  while (n > 0) {
    if (pos_ >= n_ * 8) {
      bad_ = true;
      return 0;
    }
    unsigned off = static_cast<unsigned>(pos_ & 7);
    unsigned room = 8 - off;
    unsigned take = n < room ? n : room;
    uint64_t byte = p_[pos_ >> 3];
    uint64_t chunk = (byte >> (room - take)) & ((1u << take) - 1u);
    v = (v << take) | chunk;
    pos_ += take;
    n -= take;
  }
  return v;
}

void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

bool get_varint(std::string_view& in, uint64_t& v) {
  v = 0;
  for (unsigned shift = 0; shift < 64 && !in.empty(); shift += 7) {
    uint8_t b = static_cast<uint8_t>(in[0]);
    in.remove_prefix(1);
    v |= static_cast<uint64_t>(b & 0x7f) << shift;
    if (!(b & 0x80)) return true;
  }
  return false;
}

// ------------------------------------------------------- field encodings

namespace {

bool fits(int64_t s, unsigned n) {
  int64_t lim = int64_t{1} << (n - 1);
  return s >= -lim && s < lim;
}
int64_t sign_extend(uint64_t v, unsigned n) {
  if (n == 64) return static_cast<int64_t>(v);
  uint64_t m = uint64_t{1} << (n - 1);
  return static_cast<int64_t>((v ^ m) - m);
}

// Timestamp delta-of-delta buckets as in Gorilla, but with a 4-bit bucket
// first: scrape jitter of a few ms then costs 6 bits, not 16.
void put_ts_dod(BitWriter& w, uint64_t dod) {
  int64_t s = static_cast<int64_t>(dod);
  if (s == 0)
    w.bit(false);
  else if (fits(s, 4)) {
    w.bits(0b10, 2);
    w.bits(dod, 4);
  } else if (fits(s, 14)) {
    w.bits(0b110, 3);
    w.bits(dod, 14);
  } else if (fits(s, 24)) {
    w.bits(0b1110, 4);
    w.bits(dod, 24);
  } else {
    w.bits(0b1111, 4);
    w.bits(dod, 64);
  }
}
uint64_t get_ts_dod(BitReader& r) {
  unsigned n;
  if (!r.bit()) return 0;
  if (!r.bit())
    n = 4;
  else if (!r.bit())
    n = 14;
  else if (!r.bit())
    n = 24;
  else
    n = 64;
  return static_cast<uint64_t>(sign_extend(r.bits(n), n));
}

// Integer value (delta or delta-of-delta) buckets; a chunk picks one of
// these width tables (small steps, medium, large).
constexpr unsigned kIntWidths[3][4] = {{7, 14, 21, 32}, {3, 8, 16, 32}, {11, 18, 26, 40}};

void put_int(BitWriter& w, uint64_t u, unsigned table) {
  const unsigned* wd = kIntWidths[table];
  int64_t s = static_cast<int64_t>(u);
  if (s == 0)
    w.bit(false);
  else if (fits(s, wd[0])) {
    w.bits(0b10, 2);
    w.bits(u, wd[0]);
  } else if (fits(s, wd[1])) {
    w.bits(0b110, 3);
    w.bits(u, wd[1]);
  } else if (fits(s, wd[2])) {
    w.bits(0b1110, 4);
    w.bits(u, wd[2]);
  } else if (fits(s, wd[3])) {
    w.bits(0b11110, 5);
    w.bits(u, wd[3]);
  } else {
    w.bits(0b11111, 5);
    w.bits(u, 64);
  }
}
uint64_t get_int(BitReader& r, unsigned table) {
  const unsigned* wd = kIntWidths[table];
  unsigned n;
  if (!r.bit()) return 0;
  if (!r.bit())
    n = wd[0];
  else if (!r.bit())
    n = wd[1];
  else if (!r.bit())
    n = wd[2];
  else if (!r.bit())
    n = wd[3];
  else
    n = 64;
  return static_cast<uint64_t>(sign_extend(r.bits(n), n));
}

constexpr int kMaxScale = 6;
constexpr double kPow10[kMaxScale + 1] = {1, 10, 100, 1000, 10000, 100000, 1000000};

// Whether v is exactly n / 10^k for an integer n that a double holds exactly.
bool scaled(double v, int k, int64_t& n) {
  if (!std::isfinite(v)) return false;
  double m = v * kPow10[k];
  if (!(std::fabs(m) < 9007199254740992.0)) return false;
  n = std::llround(m);
  return std::bit_cast<uint64_t>(static_cast<double>(n) / kPow10[k]) == std::bit_cast<uint64_t>(v);
}
// Smallest scale representing v, or -1.
int min_scale(double v) {
  int64_t n;
  for (int k = 0; k <= kMaxScale; ++k)
    if (scaled(v, k, n)) return k;
  return -1;
}
// Smallest scale representing all values, or -1.
int min_scale_all(const double* vs, size_t n, int from = 0) {
  int k = from;
  for (size_t i = 0; i < n; ++i) {
    int64_t x;
    while (k <= kMaxScale && !scaled(vs[i], k, x)) ++k;
    if (k > kMaxScale) return -1;
  }
  return k;
}
uint8_t int_mode(int k, int order, int table = 0) {
  return static_cast<uint8_t>(k | (order << 4) | (table << 6));
}
unsigned mode_order(uint8_t m) { return (m >> 4) & 3u; }
unsigned mode_table(uint8_t m) { return m >> 6; }

struct Header {
  uint8_t mode;
  uint64_t factor = 1;
  uint32_t count;
  uint64_t span;
};
bool parse_header(std::string_view& blob, Header& h) {
  if (blob.empty()) return false;
  h.mode = static_cast<uint8_t>(blob[0]);
  blob.remove_prefix(1);
  if (h.mode != kModeXor && (!get_varint(blob, h.factor) || h.factor == 0)) return false;
  uint64_t c;
  if (!get_varint(blob, c) || c == 0 || c > (1u << 24)) return false;
  h.count = static_cast<uint32_t>(c);
  if (!get_varint(blob, h.span)) return false;
  if (h.mode != kModeXor) {
    unsigned k = h.mode & 0x0f, order = mode_order(h.mode);
    if (k > kMaxScale || (order != 1 && order != 2) || mode_table(h.mode) > 2) return false;
  }
  return true;
}

}  // namespace

// ------------------------------------------------------------ ChunkEncoder

void ChunkEncoder::reset() {
  ++epoch_;
  bits_.clear();
  used_ = 8;
  mode_ = kModeXor;
  count_ = 0;
  t0_ = last_t_ = 0;
  last_dt_ = 0;
  last_vbits_ = 0;
  lead_ = 0xff;
  trail_ = 0;
  last_n_ = 0;
  last_dn_ = 0;
  factor_ = 1;
}

void ChunkEncoder::append_value(double v) {
  BitWriter w(&bits_);
  w.resume(used_);
  if (mode_ == kModeXor) {
    uint64_t b = std::bit_cast<uint64_t>(v);
    if (count_ == 0) {
      w.bits(b, 64);
    } else {
      uint64_t x = b ^ last_vbits_;
      if (x == 0) {
        w.bit(false);
      } else {
        uint8_t lead = static_cast<uint8_t>(std::countl_zero(x));
        uint8_t trail = static_cast<uint8_t>(std::countr_zero(x));
        if (lead > 31) lead = 31;
        if (lead_ != 0xff && lead >= lead_ && trail >= trail_) {
          w.bits(0b10, 2);
          w.bits(x >> trail_, 64u - lead_ - trail_);
        } else {
          unsigned sig = 64u - lead - trail;
          w.bits(0b11, 2);
          w.bits(lead, 5);
          w.bits(sig & 63u, 6);  // 64 is written as 0
          w.bits(x >> trail, sig);
          lead_ = lead;
          trail_ = trail;
        }
      }
    }
    last_vbits_ = b;
  } else {
    int64_t n = 0;
    scaled(v, mode_ & 0x0f, n);  // checked by the caller
    unsigned table = mode_table(mode_);
    if (count_ == 0) {
      put_int(w, static_cast<uint64_t>(n), table);
      last_dn_ = 0;
    } else {
      // |n| < 2^53, so the difference fits; factor_ divides every step.
      uint64_t dn = static_cast<uint64_t>((n - last_n_) / static_cast<int64_t>(factor_));
      put_int(w, mode_order(mode_) == 1 ? dn : dn - last_dn_, table);
      last_dn_ = dn;
    }
    last_n_ = n;
  }
  used_ = w.used();
}

void ChunkEncoder::append(int64_t t, double v) {
  if (count_ == 0) {
    int k = min_scale(v);
    mode_ = k < 0 ? kModeXor : int_mode(k, 2);
    t0_ = last_t_ = t;
    last_dt_ = 0;
    append_value(v);
    ++count_;
    return;
  }
  if (mode_ != kModeXor) {
    int64_t n;
    int k = mode_ & 0x0f;
    if (!scaled(v, k, n)) {
      // Re-encode the chunk once with a wider scale, or as XOR floats.
      std::vector<int64_t> ts;
      std::vector<double> vs;
      std::string blob;
      serialize(blob);
      decode_chunk(t0_, blob, ts, vs);
      ts.push_back(t);
      vs.push_back(v);
      int k2 = min_scale_all(vs.data(), vs.size(), k + 1);
      reencode(k2 < 0 ? kModeXor : int_mode(k2, 2), ts, vs);
      return;
    }
  }
  BitWriter w(&bits_);
  w.resume(used_);
  uint64_t dt = static_cast<uint64_t>(t) - static_cast<uint64_t>(last_t_);
  put_ts_dod(w, dt - last_dt_);
  used_ = w.used();
  last_dt_ = dt;
  last_t_ = t;
  append_value(v);
  ++count_;
}

void ChunkEncoder::reencode(uint8_t mode, const std::vector<int64_t>& ts,
                            const std::vector<double>& vs, uint64_t factor) {
  reset();
  mode_ = mode;
  factor_ = factor;
  for (size_t i = 0; i < ts.size(); ++i) {
    if (i == 0) {
      t0_ = last_t_ = ts[0];
    } else {
      BitWriter w(&bits_);
      w.resume(used_);
      uint64_t dt = static_cast<uint64_t>(ts[i]) - static_cast<uint64_t>(last_t_);
      put_ts_dod(w, dt - last_dt_);
      used_ = w.used();
      last_dt_ = dt;
      last_t_ = ts[i];
    }
    append_value(vs[i]);
    ++count_;
  }
}

void ChunkEncoder::serialize_header(std::string& out) const {
  out.clear();
  out.push_back(static_cast<char>(mode_));
  if (mode_ != kModeXor) put_varint(out, factor_);
  put_varint(out, count_);
  put_varint(out, static_cast<uint64_t>(last_t_) - static_cast<uint64_t>(t0_));
}

void ChunkEncoder::serialize(std::string& out) const {
  serialize_header(out);
  out.append(bits_);
}

ChunkEncoder::Mark ChunkEncoder::mark() const {
  return Mark{bits_.size(), bits_.empty() ? uint8_t{0} : static_cast<uint8_t>(bits_.back()),
              used_,        mode_,
              lead_,        trail_,
              count_,       t0_,
              last_t_,      last_n_,
              last_dt_,     last_vbits_,
              last_dn_,     factor_,
              epoch_};
}

void ChunkEncoder::restore(const Mark& m) {
  bits_.resize(m.bytes);
  if (!bits_.empty()) bits_.back() = static_cast<char>(m.last_byte);
  used_ = m.used;
  mode_ = m.mode;
  lead_ = m.lead;
  trail_ = m.trail;
  count_ = m.count;
  t0_ = m.t0;
  last_t_ = m.last_t;
  last_n_ = m.last_n;
  last_dt_ = m.last_dt;
  last_vbits_ = m.last_vbits;
  last_dn_ = m.last_dn;
  factor_ = m.factor;
}

bool ChunkEncoder::needs_reencode(double v) const {
  int64_t n;
  return count_ > 0 && mode_ != kModeXor && !scaled(v, mode_ & 0x0f, n);
}

bool ChunkEncoder::load(int64_t t0, std::string_view blob) {
  std::vector<int64_t> ts;
  std::vector<double> vs;
  std::string_view h = blob;
  Header hd;
  if (!parse_header(h, hd) || !decode_chunk(t0, blob, ts, vs)) return false;
  reencode(hd.mode, ts, vs, hd.factor);
  return true;
}

// ------------------------------------------------------------- decoding

bool chunk_info(int64_t t0, std::string_view blob, ChunkInfo& out) {
  Header h;
  if (!parse_header(blob, h)) return false;
  out.count = h.count;
  out.maxt = static_cast<int64_t>(static_cast<uint64_t>(t0) + h.span);
  return true;
}

bool decode_chunk(int64_t t0, std::string_view blob, std::vector<int64_t>& ts,
                  std::vector<double>& vs) {
  Header h;
  if (!parse_header(blob, h)) return false;
  BitReader r(reinterpret_cast<const uint8_t*>(blob.data()), blob.size());
  size_t base = ts.size();
  ts.resize(base + h.count);
  vs.resize(base + h.count);
  int64_t* tp = ts.data() + base;
  double* vp = vs.data() + base;
  uint64_t t = static_cast<uint64_t>(t0), dt = 0;
  if (h.mode == kModeXor) {
    uint64_t vb = 0;
    unsigned lead = 0, trail = 0;
    for (uint32_t i = 0; i < h.count; ++i) {
      if (i > 0) {
        dt += get_ts_dod(r);
        t += dt;
        if (!r.bit()) {
        } else if (!r.bit()) {
          vb ^= r.bits(64 - lead - trail) << trail;
        } else {
          lead = static_cast<unsigned>(r.bits(5));
          unsigned sig = static_cast<unsigned>(r.bits(6));
          if (sig == 0) sig = 64;
          if (lead + sig > 64) {
            ts.resize(base);
            vs.resize(base);
            return false;
          }
          trail = 64 - lead - sig;
          vb ^= r.bits(sig) << trail;
        }
      } else {
        vb = r.bits(64);
      }
      tp[i] = static_cast<int64_t>(t);
      vp[i] = std::bit_cast<double>(vb);
    }
  } else {
    int k = h.mode & 0x0f;
    bool dod = mode_order(h.mode) == 2;
    unsigned table = mode_table(h.mode);
    uint64_t n = 0, dn = 0;
    for (uint32_t i = 0; i < h.count; ++i) {
      if (i > 0) {
        dt += get_ts_dod(r);
        t += dt;
        uint64_t x = get_int(r, table);
        dn = dod ? dn + x : x;
        n += dn * h.factor;
      } else {
        n = get_int(r, table);
      }
      tp[i] = static_cast<int64_t>(t);
      vp[i] = static_cast<double>(static_cast<int64_t>(n)) / kPow10[k];
    }
  }
  if (r.bad() || tp[h.count - 1] != static_cast<int64_t>(static_cast<uint64_t>(t0) + h.span)) {
    ts.resize(base);
    vs.resize(base);
    return false;
  }
  return true;
}

void encode_chunk_best(const int64_t* ts, const double* vs, size_t n, std::string& out) {
  std::vector<int64_t> tv(ts, ts + n);
  std::vector<double> vv(vs, vs + n);
  ChunkEncoder enc;
  std::string cand;
  out.clear();
  auto consider = [&](uint8_t mode, uint64_t factor) {
    enc.reencode(mode, tv, vv, factor);
    enc.serialize(cand);
    if (out.empty() || cand.size() < out.size()) out.swap(cand);
  };
  int k = min_scale_all(vs, n);
  if (k >= 0) {
    // A common factor of all steps (e.g. 4096 for page-sized byte counts).
    uint64_t g = 0;
    int64_t prev = 0;
    for (size_t i = 0; i < n; ++i) {
      int64_t x = 0;
      scaled(vs[i], k, x);
      if (i > 0) g = std::gcd(g, static_cast<uint64_t>(x > prev ? x - prev : prev - x));
      prev = x;
    }
    if (g == 0) g = 1;
    // Estimate each (order, table, factor) from the step sizes alone and
    // encode only the cheapest: closing a chunk stays O(n).
    std::vector<int64_t> ns(n);
    for (size_t i = 0; i < n; ++i) scaled(vs[i], k, ns[i]);
    auto bucket_bits = [](uint64_t u, unsigned table) -> unsigned {
      int64_t s = static_cast<int64_t>(u);
      if (s == 0) return 1;
      const unsigned* wd = kIntWidths[table];
      for (unsigned b = 0; b < 4; ++b)
        if (fits(s, wd[b])) return (b == 3 ? 5 : b + 2) + wd[b];
      return 69;
    };
    uint64_t best_bits = UINT64_MAX;
    uint8_t best_mode = int_mode(k, 2);
    uint64_t best_factor = 1;
    for (uint64_t f : {uint64_t{1}, g}) {
      for (int order = 1; order <= 2; ++order) {
        uint64_t cost[3] = {0, 0, 0};
        uint64_t last = 0;
        for (size_t i = 1; i < n; ++i) {
          uint64_t dn = static_cast<uint64_t>((ns[i] - ns[i - 1]) / static_cast<int64_t>(f));
          uint64_t x = order == 1 ? dn : dn - last;
          last = dn;
          for (unsigned t = 0; t < 3; ++t) cost[t] += bucket_bits(x, t);
        }
        for (unsigned t = 0; t < 3; ++t)
          if (cost[t] < best_bits) {
            best_bits = cost[t];
            best_mode = int_mode(k, order, static_cast<int>(t));
            best_factor = f;
          }
      }
      if (g == 1) break;
    }
    consider(best_mode, best_factor);
    // XOR needs ~14+ bits per changing value; skip trying it when the
    // integer steps average well below that.
    if (n > 1 && best_bits / (n - 1) < 12) return;
  }
  consider(kModeXor, 1);
}

}  // namespace moni::tsdb
