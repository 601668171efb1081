#include "sample_check.hpp"

#include <algorithm>
#include <cstring>

namespace moni::host {
namespace {

// Names are checked 16 bytes at a time (GCC vector extensions: SSE2 on
// x86-64, NEON on arm64, plain words elsewhere): the check runs on every
// sample of every collection (a node cycle has ~300 samples, ~700 names and
// ~27 KB of names, values and HELP texts), where a byte-table loop cost
// ~2.4x as much (bench/host). Values only need "all ASCII?", with a full
// UTF-8 decode when not.
typedef signed char Bytes16 __attribute__((vector_size(16)));
typedef uint64_t Words2 __attribute__((vector_size(16)));

inline uint64_t load8(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, 8);
  return w;
}
inline uint64_t load4(const char* p) {
  uint32_t w;
  std::memcpy(&w, p, 4);
  return w;
}

// The bytes of a string of 1..7 bytes in one word, without reading past it:
// two overlapping 4-byte loads, or bytes 0, n/2 and n-1 (which cover 1..3
// bytes) with the rest taken from `pad`. Order and repeats do not matter
// to per-byte checks.
inline uint64_t load_short(const char* p, size_t n, uint64_t pad) {
  if (n >= 4) return load4(p) | load4(p + n - 4) << 32;
  uint64_t b = uint64_t{static_cast<unsigned char>(p[0])} |
               uint64_t{static_cast<unsigned char>(p[n >> 1])} << 8 |
               uint64_t{static_cast<unsigned char>(p[n - 1])} << 16;
  return (pad & ~uint64_t{0xFFFFFF}) | b;
}

constexpr uint64_t kPadA = 0x6161616161616161ULL;  // "aaaaaaaa": valid in any name

// The bytes of [p, p+n), n >= 1, as vectors of 16 (the last one overlapping
// the one before, or filled with 'a' / repeated bytes): f(vector) for each.
template <class F>
inline void for_each16(const char* p, size_t n, F&& f) {
  Bytes16 v;
  if (n >= 16) {
    for (size_t i = 0; i + 16 <= n; i += 16) {
      std::memcpy(&v, p + i, 16);
      f(v);
    }
    if (n % 16) {
      std::memcpy(&v, p + n - 16, 16);
      f(v);
    }
    return;
  }
  uint64_t lo, hi;
  if (n >= 8) {
    lo = load8(p);
    hi = load8(p + n - 8);
  } else {
    lo = load_short(p, n, kPadA);
    hi = kPadA;
  }
  // Built in registers: two 8-byte stores read back as one 16-byte load
  // would stall on store forwarding.
  f(reinterpret_cast<Bytes16>(Words2{lo, hi}));
}

inline bool all_set(Bytes16 m) {
  Words2 w = reinterpret_cast<Words2>(m);
  return (w[0] & w[1]) == ~uint64_t{0};
}

inline bool name_start(char c, bool colon) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
}

// Bytes >= 0x80 are negative as signed chars and fail every range below.
inline bool valid_name(const char* p, size_t n, bool colon) {
  if (n == 0 || !name_start(p[0], colon)) return false;
  const signed char last_digit = colon ? ':' : '9';
  Bytes16 ok = ~Bytes16{};
  for_each16(p, n, [&](Bytes16 x) {
    Bytes16 y = x | 0x20;  // A-Z -> a-z
    ok &= ((y >= 'a') & (y <= 'z')) | ((x >= '0') & (x <= last_digit)) | (x == '_');
  });
  return all_set(ok);
}

inline bool ascii(const char* p, size_t n) {
  constexpr uint64_t kHigh = 0x8080808080808080ULL;
  if (n < 8) return n == 0 || !(load_short(p, n, 0) & kHigh);
  if (n <= 16) return !((load8(p) | load8(p + n - 8)) & kHigh);
  Bytes16 any = Bytes16{};
  for_each16(p, n, [&](Bytes16 x) { any |= x; });
  return all_set(any >= 0);
}

// Unicode's well-formed byte sequences (Table 3-7), as Go's utf8.Valid.
bool utf8_slow(const unsigned char* p, const unsigned char* e) {
  while (p < e) {
    unsigned c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    auto cont = [&](size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) {
      return p + i < e && p[i] >= lo && p[i] <= hi;
    };
    if (c < 0xC2) return false;  // continuation byte, or overlong 2-byte lead
    if (c < 0xE0) {
      if (!cont(1)) return false;
      p += 2;
    } else if (c < 0xF0) {
      // E0: no overlongs (A0..BF); ED: no surrogates (80..9F).
      if (!cont(1, c == 0xE0 ? 0xA0 : 0x80, c == 0xED ? 0x9F : 0xBF) || !cont(2)) return false;
      p += 3;
    } else if (c < 0xF5) {
      // F0: no overlongs (90..BF); F4: nothing above U+10FFFF (80..8F).
      if (!cont(1, c == 0xF0 ? 0x90 : 0x80, c == 0xF4 ? 0x8F : 0xBF) || !cont(2) || !cont(3))
        return false;
      p += 4;
    } else {
      return false;
    }
  }
  return true;
}

inline bool utf8(const char* p, size_t n) {
  return ascii(p, n) || utf8_slow(reinterpret_cast<const unsigned char*>(p),
                                  reinterpret_cast<const unsigned char*>(p) + n);
}

// "__name__" as one little- or big-endian word, whichever this machine loads.
const uint64_t kNameLabelWord = load8("__name__");

inline bool is_name_label(const moni_str& n) {
  return n.len == 8 && load8(n.ptr) == kNameLabelWord;
}

// Byte order of label names, as the ABI sorts them; the first bytes decide
// nearly every pair of a sample.
inline bool name_before(const moni_str& a, const moni_str& b) {
  if (a.ptr[0] != b.ptr[0])
    return static_cast<unsigned char>(a.ptr[0]) < static_cast<unsigned char>(b.ptr[0]);
  int c = std::memcmp(a.ptr, b.ptr, std::min(a.len, b.len));
  return c < 0 || (c == 0 && a.len < b.len);
}

// DropReason, or labels not sorted by name (or a name twice): sorted, or
// dropped if a name repeats, on the slow path.
enum class Verdict : uint8_t { Ok, InvalidUtf8, InvalidName, Unsorted };

inline Verdict check(const moni_sample& s) {
  bool named = false, sorted = true;
  for (uint32_t i = 0; i < s.label_count; ++i) {
    const moni_str& n = s.labels[i].name;
    const moni_str& v = s.labels[i].value;
    if (is_name_label(n)) {
      if (named || !valid_name(v.ptr, v.len, true)) return Verdict::InvalidName;
      named = true;
    } else {
      if (!valid_name(n.ptr, n.len, false)) return Verdict::InvalidName;
      if (!utf8(v.ptr, v.len)) return Verdict::InvalidUtf8;
    }
    // Names are not empty here (valid_name).
    if (i > 0 && !name_before(s.labels[i - 1].name, n)) sorted = false;
  }
  if (!named) return Verdict::InvalidName;
  return sorted ? Verdict::Ok : Verdict::Unsorted;
}

inline bool valid_unit(const moni_str& u) {
  for (size_t i = 0; i < u.len; ++i)
    if (!name_start(u.ptr[i], true) && !(u.ptr[i] >= '0' && u.ptr[i] <= '9')) return false;
  return true;
}

inline bool valid_metadata(const moni_metadata& m) {
  return valid_name(m.family.ptr, m.family.len, true) && utf8(m.help.ptr, m.help.len) &&
         valid_unit(m.unit);
}

std::string_view sv_of(const moni_str& s) { return {s.ptr, s.len}; }

// "metric \"name\"" for a log line.
std::string describe_metric(const moni_sample& s) {
  std::string_view metric;
  for (uint32_t i = 0; i < s.label_count; ++i)
    if (is_name_label(s.labels[i].name)) metric = sv_of(s.labels[i].value);
  return metric.empty() ? std::string("a sample without a metric name")
                        : "metric " + quote_for_log(metric);
}

std::string describe_sorted(const moni_sample& s) {
  std::string names;
  for (uint32_t i = 0; i < s.label_count && i < 8; ++i)
    names += (i ? "," : "") + std::string(sv_of(s.labels[i].name));
  return describe_metric(s) + ": labels not sorted by name (" + quote_for_log(names) + "), sorted";
}

// The log line's description of what is wrong with `s`.
std::string describe(const moni_sample& s, DropReason r) {
  std::string of = describe_metric(s);
  bool named = false;
  for (uint32_t i = 0; i < s.label_count; ++i) {
    const moni_label& l = s.labels[i];
    if (is_name_label(l.name)) {
      if (named) return of + ": more than one __name__ label";
      named = true;
      if (!valid_metric_name(sv_of(l.value)))
        return "invalid metric name " + quote_for_log(sv_of(l.value)) +
               " (must match [a-zA-Z_:][a-zA-Z0-9_:]*)";
      continue;
    }
    if (!valid_label_name(sv_of(l.name)))
      return of + ": invalid label name " + quote_for_log(sv_of(l.name)) +
             " (must match [a-zA-Z_][a-zA-Z0-9_]*)";
    if (r == DropReason::InvalidUtf8 && !valid_utf8(sv_of(l.value)))
      return of + ": label " + quote_for_log(sv_of(l.name)) +
             " has a value that is not valid UTF-8: " + quote_for_log(sv_of(l.value));
  }
  return of + ": no __name__ label";
}

}  // namespace

std::string_view drop_reason_name(DropReason r) {
  switch (r) {
    case DropReason::InvalidUtf8:
      return "invalid_utf8";
    case DropReason::InvalidName:
      return "invalid_name";
    default:
      return "none";
  }
}

bool valid_metric_name(std::string_view s) { return valid_name(s.data(), s.size(), true); }
bool valid_label_name(std::string_view s) { return valid_name(s.data(), s.size(), false); }
bool valid_utf8(std::string_view s) { return utf8(s.data(), s.size()); }
DropReason check_sample(const moni_sample& s) {
  switch (check(s)) {
    case Verdict::InvalidUtf8:
      return DropReason::InvalidUtf8;
    case Verdict::InvalidName:
      return DropReason::InvalidName;
    default:
      return DropReason::None;  // unsorted labels are sorted, not dropped
  }
}

const moni_batch& BatchCheck::check(const moni_batch& in) {
  std::memset(dropped, 0, sizeof dropped);
  metadata_fixed = 0;
  samples_sorted = 0;
  example.clear();
  for (size_t i = 0; i < in.sample_count; ++i)
    if (moni::host::check(in.samples[i]) != Verdict::Ok) return slow(in, i);
  for (size_t i = 0; i < in.metadata_count; ++i)
    if (!valid_metadata(in.metadata[i])) return slow(in, in.sample_count);
  return in;
}

const moni_batch& BatchCheck::slow(const moni_batch& in, size_t first_bad) {
  samples_.assign(in.samples, in.samples + first_bad);
  labels_.clear();
  std::vector<std::pair<size_t, size_t>> sorted_at;  // (sample, first label in labels_)
  for (size_t i = first_bad; i < in.sample_count; ++i) {
    const moni_sample& s = in.samples[i];
    Verdict v = moni::host::check(s);
    if (v == Verdict::Ok) {
      samples_.push_back(s);
      continue;
    }
    if (v == Verdict::Unsorted) {
      size_t at = labels_.size();
      labels_.insert(labels_.end(), s.labels, s.labels + s.label_count);
      auto first = labels_.begin() + static_cast<std::ptrdiff_t>(at);
      std::sort(first, labels_.end(), [](const moni_label& a, const moni_label& b) {
        return name_before(a.name, b.name);
      });
      auto dup = std::adjacent_find(
          first, labels_.end(),
          [](const moni_label& a, const moni_label& b) { return sv_of(a.name) == sv_of(b.name); });
      if (dup == labels_.end()) {
        sorted_at.emplace_back(samples_.size(), at);
        samples_.push_back(s);
        ++samples_sorted;
        if (example.empty()) example = describe_sorted(s);
        continue;
      }
      if (example.empty())
        example = describe_metric(s) + ": label name " + quote_for_log(sv_of(dup->name)) + " twice";
      labels_.resize(at);
      ++dropped[static_cast<size_t>(DropReason::InvalidName)];
      continue;
    }
    DropReason r = v == Verdict::InvalidUtf8 ? DropReason::InvalidUtf8 : DropReason::InvalidName;
    ++dropped[static_cast<size_t>(r)];
    if (example.empty()) example = describe(s, r);
  }
  for (const auto& [k, at] : sorted_at) samples_[k].labels = labels_.data() + at;
  metadata_.clear();
  for (size_t i = 0; i < in.metadata_count; ++i) {
    moni_metadata m = in.metadata[i];
    std::string why;
    if (!valid_metric_name(sv_of(m.family))) {
      why = "metadata of invalid family name " + quote_for_log(sv_of(m.family)) + " left out";
    } else {
      if (!valid_utf8(sv_of(m.help))) {
        why = "HELP of " + quote_for_log(sv_of(m.family)) +
              " is not valid UTF-8: " + quote_for_log(sv_of(m.help)) + " (left out)";
        m.help = {};
      }
      if (!valid_unit(m.unit)) {
        if (why.empty())
          why = "UNIT of " + quote_for_log(sv_of(m.family)) +
                " is no name: " + quote_for_log(sv_of(m.unit)) + " (left out)";
        m.unit = {};
      }
      metadata_.push_back(m);
    }
    if (!why.empty()) {
      ++metadata_fixed;
      if (example.empty()) example = why;
    }
  }
  bool all_samples = samples_.size() == in.sample_count && sorted_at.empty();
  out_ = {all_samples ? in.samples : samples_.data(), samples_.size(), metadata_.data(),
          metadata_.size()};
  return out_;
}

std::string quote_for_log(std::string_view s, size_t max) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size() && i < max; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20 || c >= 0x7F) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  out += s.size() > max ? "\"..." : "\"";
  return out;
}

}  // namespace moni::host
