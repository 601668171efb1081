// moni::text: the Prometheus text exposition format 0.0.4 and OpenMetrics
// 1.0, both directions. Header-only and standard-library-only (public SDK).
//
//   Parser   text body -> samples (sorted labels incl. __name__) + metadata,
//            strict about syntax, with limits; all-or-nothing.
//   Renderer moni_batch (+ metadata) -> text body, grouped by family, with
//            escaping and shortest round-trip float formatting.
//
// Quick use:
//   moni::text::ParseOptions o;
//   o.format = moni::text::format_from_content_type(content_type);
//   o.default_timestamp_ms = now_ms;
//   auto r = moni::text::parse(body, batch, o);   // batch untouched on error
//   if (!r) log(r.error().message);               // "line 7, column 12: ..."
//
//   std::string out;
//   moni::text::render(batch.view(), out, {.format = Format::OpenMetrics});
#pragma once

#include <moni/batch.hpp>
#include <moni/plugin_abi.h>
#include <moni/result.hpp>
#include <moni/sample.hpp>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace moni::text {

/// The two exposition formats.
enum class Format {
  Text,         ///< Prometheus text format 0.0.4 (text/plain; version=0.0.4)
  OpenMetrics,  ///< OpenMetrics 1.0.0 (application/openmetrics-text; version=1.0.0)
};

/// The Content-Type header value that announces `f`.
inline std::string_view content_type(Format f) {
  return f == Format::OpenMetrics ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
                                  : "text/plain; version=0.0.4; charset=utf-8";
}

/// The format of a response body from its Content-Type (OpenMetrics when the
/// media type is application/openmetrics-text, the text format otherwise, as
/// Prometheus decides).
inline Format format_from_content_type(std::string_view ct) {
  size_t semi = ct.find(';');
  std::string_view media = ct.substr(0, semi);
  while (!media.empty() && (media.back() == ' ' || media.back() == '\t')) media.remove_suffix(1);
  while (!media.empty() && (media.front() == ' ' || media.front() == '\t')) media.remove_prefix(1);
  constexpr std::string_view om = "application/openmetrics-text";
  if (media.size() != om.size()) return Format::Text;
  for (size_t i = 0; i < om.size(); ++i) {
    char c = media[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != om[i]) return Format::Text;
  }
  return Format::OpenMetrics;
}

/// The format a scraper's Accept header asks for: OpenMetrics when it lists
/// application/openmetrics-text with a q-value above that of text/plain (or
/// without one), the text format otherwise (including for "*/*" and absent
/// headers, as the Go client does).
inline Format negotiate(std::string_view accept) {
  double best_om = -1, best_text = -1;
  while (!accept.empty()) {
    size_t comma = accept.find(',');
    std::string_view item = accept.substr(0, comma);
    accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
    size_t semi = item.find(';');
    std::string_view media = item.substr(0, semi);
    while (!media.empty() && media.front() == ' ') media.remove_prefix(1);
    while (!media.empty() && media.back() == ' ') media.remove_suffix(1);
    double q = 1.0;
    if (semi != std::string_view::npos) {
      std::string_view params = item.substr(semi + 1);
      size_t qpos = params.find("q=");
      if (qpos != std::string_view::npos) {
        std::string_view qs = params.substr(qpos + 2);
        size_t e = qs.find(';');
        qs = qs.substr(0, e);
        double v = 0;
        auto r = std::from_chars(qs.data(), qs.data() + qs.size(), v);
        if (r.ec == std::errc()) q = v;
      }
    }
    if (format_from_content_type(media) == Format::OpenMetrics) best_om = std::max(best_om, q);
    else if (media == "text/plain" || media == "*/*" || media == "text/*")
      best_text = std::max(best_text, q);
  }
  return best_om > 0 && best_om >= best_text ? Format::OpenMetrics : Format::Text;
}

/// What to do with a second sample of the same series in one body.
enum class Duplicates {
  Allow,      ///< keep both (no check; fastest)
  DropLater,  ///< keep the first, drop later ones, count them in ParseStats (Prometheus's behaviour)
  Error,      ///< fail the whole body
};

/// Parser settings. Limits of 0 mean unlimited.
struct ParseOptions {
  Format format = Format::Text;
  /// Timestamp (ms) of samples that carry none (usually the scrape time).
  int64_t default_timestamp_ms = 0;
  size_t max_body_bytes = 0;
  /// Fails the body when it holds more samples (after duplicate removal).
  size_t max_samples = 0;
  /// Labels per sample, not counting __name__.
  size_t max_labels = 0;
  size_t max_label_name_length = 0;
  /// Applies to label values and metric names.
  size_t max_label_value_length = 0;
  Duplicates duplicates = Duplicates::Allow;
};

/// What a successful parse saw.
struct ParseStats {
  size_t samples = 0;              ///< samples kept
  size_t families = 0;             ///< metadata records (families with TYPE/HELP/UNIT)
  size_t lines = 0;                ///< lines read
  size_t duplicates_dropped = 0;   ///< with Duplicates::DropLater
};

/// One parsed sample; views into the parsed body or the parser's buffers,
/// valid until the next parse() or clear(). Labels are sorted by name, unique,
/// include "__name__", and never have an empty value.
struct ParsedSample {
  std::span<const LabelRef> labels;
  double value = 0;
  int64_t timestamp_ms = 0;
  bool has_timestamp = false;  ///< the body gave one (else default_timestamp_ms)
  std::string_view name() const { return labels.empty() ? std::string_view() : find("__name__"); }
  std::string_view find(std::string_view n) const {
    for (const auto& l : labels)
      if (l.name == n) return l.value;
    return {};
  }
};

/// TYPE/HELP/UNIT of one family as parsed (views, like ParsedSample).
struct ParsedMetadata {
  std::string_view family;
  MetricType type = MetricType::Unknown;
  std::string_view help;
  std::string_view unit;
};

namespace detail {

// Character classes of metric names ([a-zA-Z_:][a-zA-Z0-9_:]*) and label
// names ([a-zA-Z_][a-zA-Z0-9_]*).
enum : uint8_t { kNameStart = 1, kNameCont = 2, kLabelStart = 4, kLabelCont = 8 };
struct CharTable {
  uint8_t t[256] = {};
  constexpr CharTable() {
    for (int c = 0; c < 256; ++c) {
      bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
      bool digit = c >= '0' && c <= '9';
      uint8_t v = 0;
      if (alpha || c == '_' || c == ':') v |= kNameStart | kNameCont;
      if (digit) v |= kNameCont | kLabelCont;
      if (alpha || c == '_') v |= kLabelStart | kLabelCont;
      t[c] = v;
    }
  }
};
inline constexpr CharTable kChars{};
inline bool is(char c, uint8_t cls) { return kChars.t[static_cast<unsigned char>(c)] & cls; }

/// Valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
inline bool valid_utf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* e = p + s.size();
  while (p < e) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int n;
    uint32_t cp;
    if ((c & 0xE0) == 0xC0) n = 1, cp = c & 0x1F;
    else if ((c & 0xF0) == 0xE0) n = 2, cp = c & 0x0F;
    else if ((c & 0xF8) == 0xF0) n = 3, cp = c & 0x07;
    else return false;
    if (e - p <= n) return false;
    for (int i = 1; i <= n; ++i) {
      if ((p[i] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    p += n + 1;
  }
  return true;
}

// Length of the valid UTF-8 sequence that starts at s[i] (1 for ASCII), 0
// when the byte there starts none (stray continuation byte, overlong,
// surrogate, above U+10FFFF, or cut short by the end of `s`).
inline size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n = c < 0xC2 ? 0 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : c < 0xF5 ? 4 : 0;
  if (n == 0 || n > s.size() - i || !valid_utf8(s.substr(i, n))) return 0;
  return n;
}

// Appends `s` to `out` as valid UTF-8 text: bytes that are not part of a
// valid UTF-8 sequence and ASCII control characters (0x00-0x1f, 0x7f) as
// \xNN, each byte once; with `quoted`, '"' and '\\' also get a backslash.
// Copies at most `max_bytes` of `s`, never splitting a multi-byte character,
// and returns how many it consumed.
inline size_t append_escaped(std::string& out, std::string_view s, bool quoted,
                             size_t max_bytes = std::string_view::npos) {
  static constexpr char kHex[] = "0123456789abcdef";
  size_t i = 0;
  while (i < s.size()) {
    size_t n = utf8_sequence_length(s, i);
    size_t take = n ? n : 1;
    if (take > max_bytes - i) break;  // i <= max_bytes always
    auto c = static_cast<unsigned char>(s[i]);
    if (n == 0 || c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else if (quoted && (c == '"' || c == '\\')) {
      out += '\\';
      out += static_cast<char>(c);
    } else {
      out.append(s.data() + i, n);
    }
    i += take;
  }
  return i;
}

// SWAR: does the 8-byte word contain a byte equal to b / a zero byte / a
// byte >= 0x80?
inline uint64_t has_zero(uint64_t x) {
  return (x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL;
}
inline uint64_t has_byte(uint64_t x, unsigned char b) {
  return has_zero(x ^ (0x0101010101010101ULL * b));
}

/// True when [p,e) holds only bytes that need no further look in a label
/// value: no backslash, no NUL, nothing >= 0x80.
inline bool plain_ascii(const char* p, const char* e) {
  while (e - p >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if ((w & 0x8080808080808080ULL) | has_byte(w, '\\') | has_zero(w)) return false;
    p += 8;
  }
  for (; p < e; ++p) {
    unsigned char c = static_cast<unsigned char>(*p);
    if (c >= 0x80 || c == '\\' || c == 0) return false;
  }
  return true;
}

/// Parses a float as Go's strconv.ParseFloat does for exposition values:
/// decimal with optional sign and exponent, or (any case) NaN, Inf,
/// Infinity with optional sign. Returns the end of the token or nullptr.
inline const char* parse_float(const char* p, const char* e, double& out) {
  if (p == e) return nullptr;
  bool plus = false;
  if (*p == '+') {
    plus = true;
    ++p;
    if (p == e || *p == '-' || *p == '+') return nullptr;
  }
  // from_chars accepts "nan(...)"; Go does not.
  auto r = std::from_chars(p, e, out, std::chars_format::general);
  if (r.ec == std::errc::result_out_of_range) {
    // Overflow is an error (Go: ErrRange); underflow rounds to zero.
    std::string tmp(p, r.ptr);
    double v = std::strtod(tmp.c_str(), nullptr);
    if (std::isinf(v)) return nullptr;
    out = v;
  } else if (r.ec != std::errc()) {
    return nullptr;
  }
  const char* q = plus ? p : p + (*p == '-');
  if (r.ptr > q && (*q == 'n' || *q == 'N') && r.ptr[-1] == ')') return nullptr;
  if (std::isnan(out)) out = std::numeric_limits<double>::quiet_NaN();  // never the stale bit pattern
  return r.ptr;
}

}  // namespace detail

/// `s` made safe for a log line, an error string or JSON: every byte that is
/// not part of a valid UTF-8 sequence (Latin-1 text, a stray continuation
/// byte, an overlong form, a surrogate, a truncated character) and every
/// ASCII control character is written as \xNN (so "/mnt/\xff" for the bytes
/// 2f 6d 6e 74 2f ff); valid UTF-8, multi-byte characters included, is
/// copied unchanged, as are quotes and backslashes. The result is always
/// valid UTF-8. The parser's error messages are already escaped this way:
/// do not apply it to them again.
inline std::string escape_for_log(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  detail::append_escaped(out, s, false);
  return out;
}

/// Parses exposition bodies into reusable buffers; keep one per thread (or
/// per scrape target) so steady-state parsing allocates nothing.
/// All-or-nothing: when parse() fails, the parser holds no samples.
/// Thread-safety: none; one thread at a time.
class Parser {
 public:
  /// Parses `body` (which must outlive the results). On error the message
  /// starts with "line N, column M: " and quotes the offending line; bytes
  /// of the body that are not UTF-8 and control characters appear as \xNN,
  /// so the message is valid UTF-8 (safe to log as is).
  Result<ParseStats> parse(std::string_view body, const ParseOptions& opt = {}) {
    clear();
    auto r = run(body, opt);
    if (!r) clear();
    return r;
  }

  size_t size() const { return samples_.size(); }
  bool empty() const { return samples_.empty(); }
  /// The i-th sample in body order.
  ParsedSample sample(size_t i) const {
    const Rec& r = samples_[i];
    return {std::span<const LabelRef>(labels_.data() + r.first, r.count), r.value, r.ts,
            r.has_ts};
  }
  /// Families with TYPE, HELP or UNIT lines, in order of first appearance.
  std::span<const ParsedMetadata> metadata() const { return meta_; }

  /// Appends the parsed metadata and samples to `out`.
  void append_to(Batch& out) const {
    for (const auto& m : meta_) out.describe(m.family, m.type, m.help, m.unit);
    for (const auto& r : samples_)
      out.add_sorted(std::span<const LabelRef>(labels_.data() + r.first, r.count), r.value, r.ts);
  }

  /// Forgets the results, keeps the capacity.
  void clear() {
    labels_.clear();
    samples_.clear();
    meta_.clear();
    meta_index_.clear();
    meta_flags_.clear();
    arena_.clear();
    seen_.clear();
    hashes_.clear();
  }

 private:
  struct Rec {
    uint32_t first, count;
    double value;
    int64_t ts;
    bool has_ts;
  };

  // Hash set of sample indices keyed by their label sets (duplicate check).
  struct SeriesHash {
    const Parser* p;
    size_t operator()(uint32_t i) const { return p->hashes_[i]; }
  };
  struct SeriesEq {
    const Parser* p;
    bool operator()(uint32_t a, uint32_t b) const {
      const Rec& x = p->samples_[a];
      const Rec& y = p->samples_[b];
      if (x.count != y.count) return false;
      for (uint32_t k = 0; k < x.count; ++k) {
        const LabelRef& l = p->labels_[x.first + k];
        const LabelRef& m = p->labels_[y.first + k];
        if (l.name != m.name || l.value != m.value) return false;
      }
      return true;
    }
  };

  static uint64_t hash_labels(const LabelRef* l, uint32_t n) {
    uint64_t h = 1469598103934665603ULL;  // FNV-1a over name \xff value \xfe
    auto mix = [&h](std::string_view s) {
      for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
    };
    for (uint32_t i = 0; i < n; ++i) {
      mix(l[i].name);
      h = (h ^ 0xff) * 1099511628211ULL;
      mix(l[i].value);
      h = (h ^ 0xfe) * 1099511628211ULL;
    }
    return h;
  }

  // Per-parse state.
  struct Cursor {
    const char* body;
    const char* line;  // start of the current line
    const char* eol;   // end of the current line (at '\n' or end)
    size_t line_no;
    bool om;
  };

  // The message quotes the offending line; it is valid UTF-8 whatever the
  // body holds (see escape_for_log), as `what` may quote body bytes too.
  Error fail(const Cursor& c, const char* at, std::string_view what) const {
    size_t col = static_cast<size_t>(at - c.line) + 1;
    std::string msg =
        "line " + std::to_string(c.line_no) + ", column " + std::to_string(col) + ": ";
    detail::append_escaped(msg, what, false);
    msg += ": \"";
    // Quote the line, at most 80 bytes (whole characters), escaped.
    std::string_view l(c.line, static_cast<size_t>(c.eol - c.line));
    if (detail::append_escaped(msg, l, true, 80) < l.size()) msg += "...";
    msg += '"';
    return Error{std::move(msg)};
  }

  static const char* skip_blank(const char* p, const char* e) {
    while (p < e && (*p == ' ' || *p == '\t')) ++p;
    return p;
  }

  Result<ParseStats> run(std::string_view body, const ParseOptions& opt) {
    ParseStats st;
    if (opt.max_body_bytes && body.size() > opt.max_body_bytes)
      return make_error("body of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
                        std::to_string(opt.max_body_bytes) + " bytes");
    if (body.size() >= UINT32_MAX / 2) return make_error("body larger than 2 GiB");
    // Unescaped strings are never longer than their escaped form, so one
    // reservation keeps every view into the arena stable.
    arena_.reserve(body.size());
    // Rebuilt per parse: the hash and equality functors point at this object,
    // which may have been copied or moved since the last parse.
    if (opt.duplicates != Duplicates::Allow)
      seen_ = decltype(seen_)(1024, SeriesHash{this}, SeriesEq{this});

    Cursor c{body.data(), body.data(), body.data(), 0, opt.format == Format::OpenMetrics};
    const char* p = body.data();
    const char* end = p + body.size();
    bool eof_seen = false;
    while (p < end) {
      c.line = p;
      ++c.line_no;
      const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      c.eol = nl ? nl : end;
      if (eof_seen)
        return fail(c, p, "unexpected content after \"# EOF\"");
      if (!nl && !c.om)
        return fail(c, c.eol, "missing newline at the end of the body (truncated?)");
      const char* le = c.eol;
      if (!c.om && le > p && le[-1] == '\r') --le;  // tolerate CRLF in the text format
      auto r = line(c, p, le, opt, eof_seen);
      if (!r) return r.error();
      p = nl ? nl + 1 : end;
    }
    if (c.om && !eof_seen) {
      c.line = end;
      c.eol = end;
      ++c.line_no;
      return fail(c, end, "missing \"# EOF\" at the end of an OpenMetrics body (truncated?)");
    }
    st.lines = c.line_no;
    st.samples = samples_.size();
    st.families = meta_.size();
    st.duplicates_dropped = dropped_;
    dropped_ = 0;
    return st;
  }

  // One line [p, e) without its '\n'.
  Result<void> line(Cursor& c, const char* p, const char* e, const ParseOptions& opt,
                    bool& eof_seen) {
    if (!c.om) p = skip_blank(p, e);
    if (p == e) {
      if (c.om) return fail(c, p, "empty line (not allowed in OpenMetrics)");
      return {};
    }
    if (*p == '#') return comment(c, p, e, eof_seen);
    return sample_line(c, p, e, opt);
  }

  Result<void> comment(Cursor& c, const char* p, const char* e, bool& eof_seen) {
    const char* start = p;
    ++p;  // '#'
    if (c.om) {
      std::string_view rest(p, static_cast<size_t>(e - p));
      if (rest == " EOF") {
        eof_seen = true;
        return {};
      }
      if (rest.size() < 6 || rest[0] != ' ' || rest[5] != ' ')
        return fail(c, start, "expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\"");
      std::string_view kw = rest.substr(1, 4);
      p += 6;
      if (kw == "HELP") return meta_line(c, p, e, 'H');
      if (kw == "TYPE") return meta_line(c, p, e, 'T');
      if (kw == "UNIT") return meta_line(c, p, e, 'U');
      return fail(c, start, "expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\"");
    }
    // Text format: "#" blanks HELP|TYPE blanks ...; anything else is a comment.
    const char* q = skip_blank(p, e);
    if (q == p || e - q < 4) return {};
    std::string_view kw(q, 4);
    char which = kw == "HELP" ? 'H' : kw == "TYPE" ? 'T' : 0;
    if (!which) return {};
    q += 4;
    if (q < e && *q != ' ' && *q != '\t') return {};  // e.g. "# HELPER"
    q = skip_blank(q, e);
    return meta_line(c, q, e, which);
  }

  ParsedMetadata& meta_for(std::string_view family) {
    auto it = meta_index_.find(family);
    if (it != meta_index_.end()) return meta_[it->second];
    meta_index_.emplace(family, static_cast<uint32_t>(meta_.size()));
    meta_.push_back(ParsedMetadata{family, MetricType::Unknown, {}, {}});
    meta_flags_.resize(meta_.size());
    meta_flags_.back() = 0;
    return meta_.back();
  }

  // After "# HELP " / "# TYPE " / "# UNIT ": name, blank(s), rest.
  Result<void> meta_line(Cursor& c, const char* p, const char* e, char which) {
    const char* n0 = p;
    if (p == e || !detail::is(*p, detail::kNameStart)) return fail(c, p, "invalid metric name");
    while (p < e && detail::is(*p, detail::kNameCont)) ++p;
    std::string_view name(n0, static_cast<size_t>(p - n0));
    const char* rest;
    if (p == e) {
      rest = e;
    } else if (*p == ' ' || (!c.om && *p == '\t')) {
      rest = c.om ? p + 1 : skip_blank(p, e);
    } else {
      return fail(c, p, "invalid character after the metric name");
    }
    if (which != 'H' && rest == e) return fail(c, rest, which == 'T' ? "missing metric type" : "missing unit");
    ParsedMetadata& m = meta_for(name);
    uint8_t& flags = meta_flags_[static_cast<size_t>(&m - meta_.data())];
    uint8_t bit = which == 'H' ? 1 : which == 'T' ? 2 : 4;
    if (flags & bit) {
      if (c.om)
        return fail(c, n0, std::string("second ") + (which == 'H' ? "HELP" : which == 'T' ? "TYPE" : "UNIT") +
                               " line for family '" + std::string(name) + "'");
      return {};  // the text format keeps the first, as Prometheus does
    }
    flags |= bit;
    std::string_view text(rest, static_cast<size_t>(e - rest));
    if (which == 'T') {
      if (!c.om)
        while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
      MetricType t;
      if (text == "counter") t = MetricType::Counter;
      else if (text == "gauge") t = MetricType::Gauge;
      else if (text == "histogram") t = MetricType::Histogram;
      else if (text == "summary") t = MetricType::Summary;
      else if (!c.om && text == "untyped") t = MetricType::Unknown;
      else if (c.om && text == "unknown") t = MetricType::Unknown;
      else if (c.om && text == "gaugehistogram") t = MetricType::GaugeHistogram;
      else if (c.om && text == "stateset") t = MetricType::StateSet;
      else if (c.om && text == "info") t = MetricType::Info;
      else return fail(c, rest, "invalid metric type '" + std::string(text) + "'");
      m.type = t;
      return {};
    }
    if (which == 'U') {
      for (char ch : text)
        if (!detail::is(ch, detail::kNameCont)) return fail(c, rest, "invalid unit");
      if (!(name.size() > text.size() + 1 && name.ends_with(text) &&
            name[name.size() - text.size() - 1] == '_'))
        return fail(c, rest, "unit '" + std::string(text) + "' is not a suffix of family '" +
                                 std::string(name) + "'");
      m.unit = text;
      return {};
    }
    // HELP: unescape \\ and \n (and \" in OpenMetrics); other escapes fail.
    if (text.find('\\') == std::string_view::npos) {
      if (!detail::valid_utf8(text)) return fail(c, rest, "invalid UTF-8 in HELP text");
      m.help = text;
      return {};
    }
    size_t at = arena_.size();
    for (const char* q = rest; q < e; ++q) {
      if (*q != '\\') {
        arena_.push_back(*q);
        continue;
      }
      if (q + 1 == e) return fail(c, q, "unterminated escape sequence in HELP text");
      char n = *++q;
      if (n == '\\') arena_.push_back('\\');
      else if (n == 'n') arena_.push_back('\n');
      else if (n == '"') arena_.push_back('"');
      else return fail(c, q - 1, std::string("invalid escape sequence '\\") + n + "' in HELP text");
    }
    std::string_view h(arena_.data() + at, arena_.size() - at);
    if (!detail::valid_utf8(h)) return fail(c, rest, "invalid UTF-8 in HELP text");
    m.help = h;
    return {};
  }

  // Parses {name="value",...} starting after '{'; appends to labels_.
  // Returns the position after '}' or nullptr (error already in `err`).
  const char* label_set(Cursor& c, const char* p, const char* e, const ParseOptions& opt,
                        std::vector<LabelRef>& out, size_t& count, Error& err) {
    bool first = true;
    for (;;) {
      if (!c.om) p = skip_blank(p, e);
      if (p == e) {
        err = fail(c, p, "unterminated label set (missing '}')");
        return nullptr;
      }
      if (*p == '}') {
        if (!first && c.om && p[-1] == ',') {
          err = fail(c, p, "trailing comma in label set");  // OpenMetrics forbids it
          return nullptr;
        }
        return p + 1;
      }
      if (!first) {
        if (*p != ',') {
          err = fail(c, p, "expected ',' or '}' after a label");
          return nullptr;
        }
        ++p;
        if (!c.om) p = skip_blank(p, e);
        if (p < e && *p == '}') {
          if (c.om) {
            err = fail(c, p, "trailing comma in label set");
            return nullptr;
          }
          return p + 1;
        }
      }
      first = false;
      const char* n0 = p;
      if (p == e || !detail::is(*p, detail::kLabelStart)) {
        err = fail(c, p, "invalid label name");
        return nullptr;
      }
      while (p < e && detail::is(*p, detail::kLabelCont)) ++p;
      std::string_view name(n0, static_cast<size_t>(p - n0));
      if (opt.max_label_name_length && name.size() > opt.max_label_name_length) {
        err = fail(c, n0, "label name longer than " + std::to_string(opt.max_label_name_length) +
                              " bytes");
        return nullptr;
      }
      if (!c.om) p = skip_blank(p, e);
      if (p == e || *p != '=') {
        err = fail(c, p, "expected '=' after label name");
        return nullptr;
      }
      ++p;
      if (!c.om) p = skip_blank(p, e);
      if (p == e || *p != '"') {
        err = fail(c, p, "expected '\"' to start the label value");
        return nullptr;
      }
      ++p;
      const char* v0 = p;
      const char* q = static_cast<const char*>(std::memchr(p, '"', static_cast<size_t>(e - p)));
      if (!q) {
        err = fail(c, v0 - 1, "unterminated label value");
        return nullptr;
      }
      std::string_view value;
      if (detail::plain_ascii(v0, q)) {
        value = std::string_view(v0, static_cast<size_t>(q - v0));
        p = q + 1;
      } else {
        // Slow path: escapes, UTF-8 check, NUL check.
        size_t at = arena_.size();
        const char* s = v0;
        for (;; ++s) {
          if (s == e) {
            arena_.resize(at);
            err = fail(c, v0 - 1, "unterminated label value");
            return nullptr;
          }
          char ch = *s;
          if (ch == '"') break;
          if (ch == '\0') {
            arena_.resize(at);
            err = fail(c, s, "NUL byte in label value");
            return nullptr;
          }
          if (ch != '\\') {
            arena_.push_back(ch);
            continue;
          }
          if (s + 1 == e) {
            arena_.resize(at);
            err = fail(c, s, "unterminated escape sequence in label value");
            return nullptr;
          }
          char n = *++s;
          if (n == '\\') arena_.push_back('\\');
          else if (n == '"') arena_.push_back('"');
          else if (n == 'n') arena_.push_back('\n');
          else {
            arena_.resize(at);
            err = fail(c, s - 1,
                       std::string("invalid escape sequence '\\") +
                           (static_cast<unsigned char>(n) >= 0x20 ? std::string(1, n) : std::string("?")) +
                           "' in label value (allowed: \\\\, \\\", \\n)");
            return nullptr;
          }
        }
        value = std::string_view(arena_.data() + at, arena_.size() - at);
        if (!detail::valid_utf8(value)) {
          arena_.resize(at);
          err = fail(c, v0, "invalid UTF-8 in label value");
          return nullptr;
        }
        p = s + 1;
      }
      if (opt.max_label_value_length && value.size() > opt.max_label_value_length) {
        err = fail(c, v0, "label value longer than " + std::to_string(opt.max_label_value_length) +
                              " bytes");
        return nullptr;
      }
      ++count;
      if (opt.max_labels && count > opt.max_labels) {
        err = fail(c, n0, "more than " + std::to_string(opt.max_labels) + " labels");
        return nullptr;
      }
      if (!value.empty()) out.push_back({name, value});
    }
  }

  Result<void> sample_line(Cursor& c, const char* p, const char* e, const ParseOptions& opt) {
    const char* n0 = p;
    if (!detail::is(*p, detail::kNameStart)) return fail(c, p, "invalid metric name");
    ++p;
    while (p < e && detail::is(*p, detail::kNameCont)) ++p;
    std::string_view name(n0, static_cast<size_t>(p - n0));
    if (opt.max_label_value_length && name.size() > opt.max_label_value_length)
      return fail(c, n0, "metric name longer than " + std::to_string(opt.max_label_value_length) +
                             " bytes");
    const uint32_t first = static_cast<uint32_t>(labels_.size());
    labels_.push_back({kMetricNameLabel, name});
    auto undo = [&] { labels_.resize(first); };
    const char* q = c.om ? p : skip_blank(p, e);
    if (q < e && *q == '{') {
      Error err;
      size_t count = 0;
      p = label_set(c, q + 1, e, opt, labels_, count, err);
      if (!p) {
        undo();
        return err;
      }
      q = c.om ? p : skip_blank(p, e);
    }
    // Value.
    if (c.om) {
      if (p == e || *p != ' ') {
        undo();
        return fail(c, p, p == e ? "missing value" : "expected a space before the value");
      }
      ++p;
    } else {
      if (q == p && q < e) {
        undo();
        return fail(c, p, "expected a blank before the value");
      }
      p = q;
    }
    if (p == e) {
      undo();
      return fail(c, p, "missing value");
    }
    double value;
    const char* v0 = p;
    p = detail::parse_float(p, e, value);
    if (!p || (p < e && *p != ' ' && *p != '\t')) {
      undo();
      const char* te = v0;
      while (te < e && *te != ' ' && *te != '\t') ++te;
      return fail(c, v0, "invalid value '" + std::string(v0, std::min<size_t>(static_cast<size_t>(te - v0), 40)) + "'");
    }
    int64_t ts = opt.default_timestamp_ms;
    bool has_ts = false;
    if (p < e) {
      if (c.om) {
        ++p;  // the one space
        if (p < e && *p != '#') {
          const char* t0 = p;
          double secs;
          p = detail::parse_float(p, e, secs);
          if (!p || (p < e && *p != ' ') || !std::isfinite(secs) || std::fabs(secs) > 9.2e15) {
            undo();
            return fail(c, t0, "invalid timestamp (OpenMetrics: seconds)");
          }
          ts = std::llround(secs * 1000.0);
          has_ts = true;
          if (p < e) ++p;
        }
        if (p < e) {
          auto r = exemplar(c, p, e);
          if (!r) {
            undo();
            return r;
          }
        }
      } else {
        p = skip_blank(p, e);
        if (p < e) {
          const char* t0 = p;
          if (*p == '+') ++p;
          auto r = std::from_chars(p, e, ts);
          if (r.ec != std::errc() || (*t0 == '+' && *p == '-')) {
            undo();
            return fail(c, t0, "invalid timestamp (text format: integer milliseconds)");
          }
          has_ts = true;
          p = skip_blank(r.ptr, e);
          if (p < e) {
            undo();
            return fail(c, p, "unexpected content after the timestamp");
          }
        }
      }
    }
    // Sort (usually sorted already, save for __name__), reject duplicates.
    LabelRef* L = labels_.data() + first;
    const uint32_t n = static_cast<uint32_t>(labels_.size() - first);
    // Insertion sort for the usual few labels; a sample with many unsorted
    // ones (hostile or generated) must not cost n^2.
    if (n > 32 && !std::is_sorted(L, L + n, [](const LabelRef& a, const LabelRef& b) {
          return a.name < b.name;
        }))
      std::sort(L, L + n, [](const LabelRef& a, const LabelRef& b) { return a.name < b.name; });
    for (uint32_t i = 1; i < n; ++i) {
      if (L[i - 1].name < L[i].name) continue;
      LabelRef x = L[i];
      uint32_t j = i;
      while (j > 0 && x.name < L[j - 1].name) {
        L[j] = L[j - 1];
        --j;
      }
      L[j] = x;
    }
    for (uint32_t i = 1; i < n; ++i)
      if (L[i - 1].name == L[i].name) {
        std::string dup(L[i].name);
        undo();
        return fail(c, n0, "duplicate label name '" + dup + "'");
      }
    samples_.push_back(Rec{first, n, value, ts, has_ts});
    if (opt.duplicates != Duplicates::Allow) {
      uint32_t idx = static_cast<uint32_t>(samples_.size() - 1);
      hashes_.push_back(hash_labels(L, n));
      if (!seen_.insert(idx).second) {
        samples_.pop_back();
        hashes_.pop_back();
        undo();
        if (opt.duplicates == Duplicates::Error) return fail(c, n0, "duplicate series");
        ++dropped_;
        return {};
      }
    }
    if (opt.max_samples && samples_.size() > opt.max_samples)
      return fail(c, n0, "sample limit of " + std::to_string(opt.max_samples) + " exceeded");
    return {};
  }

  // OpenMetrics exemplar: "# {labels} value [timestamp]"; checked, not kept.
  Result<void> exemplar(Cursor& c, const char* p, const char* e) {
    if (e - p < 3 || p[0] != '#' || p[1] != ' ' || p[2] != '{')
      return fail(c, p, "unexpected content after the value");
    exemplar_labels_.clear();
    Error err;
    size_t count = 0;
    ParseOptions none;
    size_t arena_at = arena_.size();
    const char* q = label_set(c, p + 3, e, none, exemplar_labels_, count, err);
    arena_.resize(arena_at);  // exemplar label values are not kept
    if (!q) return err;
    size_t runes = 0;
    for (const auto& l : exemplar_labels_) runes += l.name.size() + l.value.size();
    if (runes > 128) return fail(c, p, "exemplar labels longer than 128 characters");
    if (q == e || *q != ' ') return fail(c, q, "expected a space before the exemplar value");
    double v;
    const char* r = detail::parse_float(q + 1, e, v);
    if (!r) return fail(c, q + 1, "invalid exemplar value");
    if (r < e) {
      if (*r != ' ') return fail(c, r, "unexpected content after the exemplar value");
      const char* t = detail::parse_float(r + 1, e, v);
      if (!t || t != e || !std::isfinite(v)) return fail(c, r + 1, "invalid exemplar timestamp");
    }
    return {};
  }

  std::vector<LabelRef> labels_;
  std::vector<Rec> samples_;
  std::vector<ParsedMetadata> meta_;
  std::vector<uint8_t> meta_flags_;
  std::unordered_map<std::string_view, uint32_t> meta_index_;
  std::string arena_;
  std::vector<LabelRef> exemplar_labels_;
  std::vector<uint64_t> hashes_;
  std::unordered_set<uint32_t, SeriesHash, SeriesEq> seen_{0, SeriesHash{nullptr}, SeriesEq{nullptr}};
  size_t dropped_ = 0;
};

/// Parses `body` and appends its samples and metadata to `out`. On error
/// `out` is left exactly as it was. Convenience for one-off parses; keep a
/// Parser to reuse its buffers.
inline Result<ParseStats> parse(std::string_view body, Batch& out, const ParseOptions& opt = {}) {
  Parser p;
  auto r = p.parse(body, opt);
  if (r) p.append_to(out);
  return r;
}

// ------------------------------------------------------------------ render

/// Appends `v` as Prometheus writes it: "NaN", "+Inf", "-Inf"; integral
/// values of magnitude below 2^63 as plain integers (1e+06 becomes
/// "1000000"); anything else as the shortest string that parses back to the
/// same double.
inline void append_float(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[32];
  char* end;
  if (v == std::trunc(v) && std::fabs(v) < 9.2e18) {
    end = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v)).ptr;  // -0 prints "0"
  } else {
    end = std::to_chars(buf, buf + sizeof buf, v).ptr;
  }
  out.append(buf, static_cast<size_t>(end - buf));
}

/// Appends a millisecond timestamp: as is for the text format, as seconds
/// with up to three decimals for OpenMetrics.
inline void append_timestamp(std::string& out, int64_t ms, Format f) {
  char buf[32];
  if (f == Format::Text) {
    out.append(buf, static_cast<size_t>(std::to_chars(buf, buf + sizeof buf, ms).ptr - buf));
    return;
  }
  uint64_t a = ms < 0 ? 0 - static_cast<uint64_t>(ms) : static_cast<uint64_t>(ms);
  if (ms < 0) out += '-';
  out.append(buf, static_cast<size_t>(std::to_chars(buf, buf + sizeof buf, a / 1000).ptr - buf));
  unsigned frac = static_cast<unsigned>(a % 1000);
  if (frac) {
    char f3[4] = {'.', static_cast<char>('0' + frac / 100), static_cast<char>('0' + frac / 10 % 10),
                  static_cast<char>('0' + frac % 10)};
    size_t n = 4;
    while (f3[n - 1] == '0') --n;
    out.append(f3, n);
  }
}

/// Appends a label value with \\, \" and \n escaped.
inline void append_label_value(std::string& out, std::string_view v) {
  size_t i = 0;
  for (size_t k = 0; k < v.size(); ++k) {
    char ch = v[k];
    if (ch != '\\' && ch != '"' && ch != '\n') continue;
    out.append(v.data() + i, k - i);
    out += '\\';
    out += ch == '\n' ? 'n' : ch;
    i = k + 1;
  }
  out.append(v.data() + i, v.size() - i);
}

/// Appends HELP text: \\ and \n escaped (and \" for OpenMetrics).
inline void append_help(std::string& out, std::string_view v, Format f) {
  for (char ch : v) {
    if (ch == '\\') out += "\\\\";
    else if (ch == '\n') out += "\\n";
    else if (ch == '"' && f == Format::OpenMetrics) out += "\\\"";
    else out += ch;
  }
}

/// True for a valid metric name ([a-zA-Z_:][a-zA-Z0-9_:]*).
inline bool valid_metric_name(std::string_view s) {
  if (s.empty() || !detail::is(s[0], detail::kNameStart)) return false;
  for (char ch : s)
    if (!detail::is(ch, detail::kNameCont)) return false;
  return true;
}
/// True for a valid label name ([a-zA-Z_][a-zA-Z0-9_]*).
inline bool valid_label_name(std::string_view s) {
  if (s.empty() || !detail::is(s[0], detail::kLabelStart)) return false;
  for (char ch : s)
    if (!detail::is(ch, detail::kLabelCont)) return false;
  return true;
}

/// A growable byte buffer for Renderer::render that, unlike std::string,
/// does not zero-fill when it grows: the renderer sizes its output to an
/// upper bound (typically 2-3x the text), and with a std::string every byte
/// of that bound is written (a memset per render) and stays resident. Here
/// only the bytes rendered are touched. Move-only.
class RenderBuffer {
 public:
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  char* data() { return data_.get(); }
  const char* data() const { return data_.get(); }
  std::string_view view() const { return {data_.get(), size_}; }
  void clear() { size_ = 0; }
  /// Sets the size; bytes past the old size are left uninitialized.
  void resize(size_t n) {
    if (n > cap_) {
      size_t cap = std::max(n, cap_ + cap_ / 2);
      std::unique_ptr<char[]> d(new char[cap]);  // default-initialized: untouched
      if (size_) std::memcpy(d.get(), data_.get(), size_);
      data_ = std::move(d);
      cap_ = cap;
    }
    size_ = n;
  }
  void swap(RenderBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(cap_, o.cap_);
  }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_ = 0, cap_ = 0;
};

/// Renderer settings.
struct RenderOptions {
  Format format = Format::Text;
  /// Write each sample's timestamp (federation does; /metrics usually not,
  /// so that the scraper stamps samples and tracks staleness itself).
  bool timestamps = false;
  /// Leave out staleness markers (a stale series is absent, not NaN).
  bool skip_stale = true;
  /// Non-zero: the caller's promise that a batch rendered with the same
  /// key by the same Renderer has the same samples in the same order, with
  /// label text (and metadata) at the same addresses and unchanged, only
  /// values and timestamps differing. The renderer then reuses its family
  /// grouping and size bound instead of rebuilding them. 0: no such promise.
  uint64_t layout_key = 0;
};

/// What render() wrote.
struct RenderStats {
  size_t samples = 0;   ///< sample lines written
  size_t families = 0;  ///< families (groups) written
  size_t skipped = 0;   ///< samples left out: invalid names, stale markers
};

namespace detail {

/// Open-addressing map from string views to small integers, reused across
/// renders (no allocation once grown). Keys must outlive their use.
class FlatIndex {
 public:
  void reset(size_t expected) {
    size_t cap = 16;
    while (cap < expected * 2) cap <<= 1;
    if (slots_.size() < cap) slots_.resize(cap);
    for (auto& sl : slots_) sl.used = false;
    mask_ = slots_.size() - 1;
    count_ = 0;
  }
  /// The value of `k`, inserting `v` when absent; second: inserted.
  std::pair<uint32_t, bool> try_emplace(std::string_view k, uint32_t v) {
    if ((count_ + 1) * 2 > slots_.size()) grow();
    size_t h = std::hash<std::string_view>()(k);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      Slot& sl = slots_[i];
      if (!sl.used) {
        sl = Slot{k.data(), k.size(), h, v, true};
        ++count_;
        return {v, true};
      }
      if (sl.hash == h && sl.len == k.size() && std::memcmp(sl.ptr, k.data(), k.size()) == 0)
        return {sl.value, false};
    }
  }
  /// The value of `k`, or UINT32_MAX.
  uint32_t find(std::string_view k) const {
    if (!count_) return UINT32_MAX;
    size_t h = std::hash<std::string_view>()(k);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& sl = slots_[i];
      if (!sl.used) return UINT32_MAX;
      if (sl.hash == h && sl.len == k.size() && std::memcmp(sl.ptr, k.data(), k.size()) == 0)
        return sl.value;
    }
  }

 private:
  struct Slot {
    const char* ptr = nullptr;
    size_t len = 0;
    size_t hash = 0;
    uint32_t value = 0;
    bool used = false;
  };
  void grow() {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.resize(old.empty() ? 16 : old.size() * 2);
    mask_ = slots_.size() - 1;
    for (const Slot& o : old) {
      if (!o.used) continue;
      size_t i = o.hash & mask_;
      while (slots_[i].used) i = (i + 1) & mask_;
      slots_[i] = o;
    }
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
};

// Raw writers for the renderer's output buffer (sized beforehand).
inline char* put(char* p, std::string_view s) {
  std::memcpy(p, s.data(), s.size());
  return p + s.size();
}

inline bool needs_label_escape(const char* p, const char* e) {
  for (; p + 8 <= e; p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    if (has_byte(w, '\\') | has_byte(w, '"') | has_byte(w, '\n')) return true;
  }
  for (; p < e; ++p)
    if (*p == '\\' || *p == '"' || *p == '\n') return true;
  return false;
}

// At most 2 * v.size() bytes.
inline char* put_label_value(char* p, std::string_view v) {
  if (!needs_label_escape(v.data(), v.data() + v.size())) return put(p, v);
  for (char ch : v) {
    if (ch == '\\' || ch == '"' || ch == '\n') {
      *p++ = '\\';
      *p++ = ch == '\n' ? 'n' : ch;
    } else {
      *p++ = ch;
    }
  }
  return p;
}

// At most 2 * v.size() bytes.
inline char* put_help(char* p, std::string_view v, Format f) {
  if (!needs_label_escape(v.data(), v.data() + v.size())) return put(p, v);  // a superset
  for (char ch : v) {
    if (ch == '\\' || ch == '\n' || (ch == '"' && f == Format::OpenMetrics)) {
      *p++ = '\\';
      *p++ = ch == '\n' ? 'n' : ch;
    } else {
      *p++ = ch;
    }
  }
  return p;
}

// At most 32 bytes; the same text as append_float().
inline char* put_float(char* p, double v) {
  if (std::isnan(v)) return put(p, "NaN");
  if (std::isinf(v)) return put(p, v > 0 ? "+Inf" : "-Inf");
  if (v == std::trunc(v) && std::fabs(v) < 9.2e18)
    return std::to_chars(p, p + 32, static_cast<int64_t>(v)).ptr;
  return std::to_chars(p, p + 32, v).ptr;
}

}  // namespace detail

/// Renders batches as exposition text, grouping samples of a family
/// together (families in order of first appearance, samples in batch order
/// within a family) under their HELP/TYPE(/UNIT) lines.
///
/// A sample belongs to family F when metadata names F and the sample's name
/// is F, or F plus a suffix its type allows (_total/_created for counters,
/// _bucket/_count/_sum/_created for histograms, _count/_sum/_created for
/// summaries, _bucket/_gcount/_gsum for gauge histograms, _info for info).
/// Samples without metadata form untyped families without HELP/TYPE.
///
/// Text 0.0.4: the TYPE line names the sample name for counters ("foo_total"
/// from an OpenMetrics family "foo"); info and stateset become gauge,
/// gauge histograms untyped; _created series are their own untyped family.
/// OpenMetrics: counter families drop "_total" from the family name; a
/// counter whose samples lack "_total" is typed unknown so that series names
/// stay the same in both formats; UNIT is written when the family name ends
/// in "_<unit>"; the body ends with "# EOF".
/// Thread-safety: none; reuse one per thread to keep its buffers.
class Renderer {
 public:
  /// Appends the text of `batch` to `out` (a std::string or a RenderBuffer).
  template <class Out>
  RenderStats render(const moni_batch& batch, Out& out, const RenderOptions& opt = {},
                     std::span<const moni_metadata> extra_metadata = {}) {
    RenderStats st;
    const Format f = opt.format;
    if (opt.layout_key != 0 && opt.layout_key == cached_key_ && f == cached_format_ &&
        opt.skip_stale == cached_skip_stale_ && batch.sample_count == cached_samples_ &&
        extra_metadata.empty())
      return write_cached(batch, out, opt, cached_stats_, cached_bound_);
    cached_key_ = 0;
    metas_.clear();
    meta_.reset(batch.metadata_count + extra_metadata.size());
    for (size_t i = 0; i < batch.metadata_count; ++i) add_meta(batch.metadata[i]);
    for (const auto& m : extra_metadata) add_meta(m);

    // Assign every sample a group (family), remembering first-appearance order.
    groups_.clear();
    group_index_.reset(metas_.size() + 16);
    sample_group_.assign(batch.sample_count, UINT32_MAX);
    std::string_view prev_name;
    uint32_t prev_group = UINT32_MAX;
    for (size_t i = 0; i < batch.sample_count; ++i) {
      const moni_sample& s = batch.samples[i];
      if (opt.skip_stale && is_stale_nan(s.value)) {
        ++st.skipped;
        continue;
      }
      std::string_view name = find_label(s.labels, s.label_count, kMetricNameLabel);
      if (!labels_valid(s)) {
        ++st.skipped;
        continue;
      }
      if (prev_group != UINT32_MAX && name == prev_name) {
        sample_group_[i] = prev_group;
        ++groups_[prev_group].count;
        continue;
      }
      if (!valid_metric_name(name)) {
        ++st.skipped;
        continue;
      }
      Group g = classify(name, f);
      auto [gi, inserted] = group_index_.try_emplace(g.key, static_cast<uint32_t>(groups_.size()));
      if (inserted) groups_.push_back(g);
      prev_name = name;
      prev_group = gi;
      sample_group_[i] = prev_group;
      ++groups_[prev_group].count;
    }
    // Counting sort of sample indices by group.
    uint32_t acc = 0;
    for (auto& g : groups_) {
      g.start = acc;
      acc += g.count;
      g.count = 0;
    }
    order_.resize(acc);
    for (size_t i = 0; i < batch.sample_count; ++i) {
      uint32_t gi = sample_group_[i];
      if (gi == UINT32_MAX) continue;
      Group& g = groups_[gi];
      order_[g.start + g.count++] = static_cast<uint32_t>(i);
    }

    size_t bound = 16;
    for (const Group& g : groups_) {
      bound += header_bound(g);
      for (uint32_t k = 0; k < g.count; ++k) bound += sample_bound(batch.samples[order_[g.start + k]]);
    }
    if (opt.layout_key != 0 && extra_metadata.empty()) {
      cached_key_ = opt.layout_key;
      cached_format_ = f;
      cached_skip_stale_ = opt.skip_stale;
      cached_samples_ = batch.sample_count;
      cached_stats_ = st;
      cached_bound_ = bound;
      build_template(batch, f, bound);
      return write_cached(batch, out, opt, st, bound);
    }
    return write_all(batch, out, opt, st, bound);
  }

 private:
  // One growth of `out` to an upper bound, raw writes, one trim: no
  // per-piece capacity checks.
  template <class Out>
  RenderStats write_all(const moni_batch& batch, Out& out, const RenderOptions& opt,
                        RenderStats st, size_t bound) {
    const Format f = opt.format;
    const size_t base = out.size();
    out.resize(base + bound);
    char* p = out.data() + base;
    for (const Group& g : groups_) {
      p = write_header(p, g, f);
      for (uint32_t k = 0; k < g.count; ++k) {
        const moni_sample& s = batch.samples[order_[g.start + k]];
        // Only a reused grouping can meet a marker here (its value changed).
        if (opt.skip_stale && is_stale_nan(s.value)) {
          ++st.skipped;
          continue;
        }
        p = write_sample(p, s, opt);
        ++st.samples;
      }
      ++st.families;
    }
    if (f == Format::OpenMetrics) p = detail::put(p, "# EOF\n");
    out.resize(static_cast<size_t>(p - out.data()));
    return st;
  }

  // With a layout_key, the text that stays the same between renders of
  // the layout (each family's HELP/TYPE lines, each sample's name and
  // labels up to the value) is written once into tmpl_; a render then
  // copies those pieces and formats only values (and timestamps).
  // tmpl_ends_: the end offset of each piece, a family's header followed by
  // its samples' prefixes, in output order.
  void build_template(const moni_batch& batch, Format f, size_t bound) {
    tmpl_.resize(bound);
    tmpl_ends_.clear();
    char* const base = tmpl_.data();
    char* p = base;
    for (const Group& g : groups_) {
      p = write_header(p, g, f);
      tmpl_ends_.push_back(static_cast<uint32_t>(p - base));
      for (uint32_t k = 0; k < g.count; ++k) {
        p = write_prefix(p, batch.samples[order_[g.start + k]]);
        tmpl_ends_.push_back(static_cast<uint32_t>(p - base));
      }
    }
    tmpl_.resize(static_cast<size_t>(p - base));
  }

  // write_all() for a layout whose template is built: the same text.
  template <class Out>
  RenderStats write_cached(const moni_batch& batch, Out& out, const RenderOptions& opt,
                           RenderStats st, size_t bound) {
    const size_t base = out.size();
    out.resize(base + bound);
    char* p = out.data() + base;
    const char* t = tmpl_.data();
    uint32_t pos = 0;
    size_t e = 0;
    for (const Group& g : groups_) {
      uint32_t end = tmpl_ends_[e++];
      std::memcpy(p, t + pos, end - pos);
      p += end - pos;
      pos = end;
      for (uint32_t k = 0; k < g.count; ++k) {
        const moni_sample& s = batch.samples[order_[g.start + k]];
        end = tmpl_ends_[e++];
        // Only a reused grouping can meet a marker here (its value changed).
        if (opt.skip_stale && is_stale_nan(s.value)) {
          ++st.skipped;
          pos = end;
          continue;
        }
        std::memcpy(p, t + pos, end - pos);
        p += end - pos;
        pos = end;
        p = write_value(p, s, opt);
        ++st.samples;
      }
      ++st.families;
    }
    if (opt.format == Format::OpenMetrics) p = detail::put(p, "# EOF\n");
    out.resize(static_cast<size_t>(p - out.data()));
    return st;
  }

  struct Group {
    std::string_view key;        // family name as written in the format
    const moni_metadata* meta;   // nullptr: untyped, no HELP/TYPE
    std::string_view type_word;  // TYPE keyword
    uint32_t start = 0, count = 0;
  };

  void add_meta(const moni_metadata& m) {
    if (meta_.try_emplace(sv(m.family), static_cast<uint32_t>(metas_.size())).second)
      metas_.push_back(&m);
  }

  const moni_metadata* meta_find(std::string_view family) const {
    uint32_t i = meta_.find(family);
    return i == UINT32_MAX ? nullptr : metas_[i];
  }

  const moni_metadata* meta_of(std::string_view family, MetricType want1,
                               MetricType want2 = MetricType::Unknown) const {
    const moni_metadata* m = meta_find(family);
    if (!m) return nullptr;
    auto t = static_cast<MetricType>(m->type);
    if (t == want1 || (want2 != MetricType::Unknown && t == want2)) return m;
    return nullptr;
  }

  static bool strip(std::string_view name, std::string_view suffix, std::string_view& base) {
    if (name.size() <= suffix.size() || !name.ends_with(suffix)) return false;
    base = name.substr(0, name.size() - suffix.size());
    return true;
  }

  static std::string_view text_type(MetricType t) {
    switch (t) {
      case MetricType::Counter: return "counter";
      case MetricType::Gauge:
      case MetricType::Info:
      case MetricType::StateSet: return "gauge";
      case MetricType::Histogram: return "histogram";
      case MetricType::Summary: return "summary";
      default: return "untyped";
    }
  }

  // Which family a sample name belongs to, and how its header is written.
  Group classify(std::string_view name, Format f) const {
    Group g{name, nullptr, {}, 0, 0};
    std::string_view base;
    if (const moni_metadata* m = meta_find(name)) {
      auto t = static_cast<MetricType>(m->type);
      g.meta = m;
      if (f == Format::Text) {
        g.type_word = text_type(t);
        return g;
      }
      if (t == MetricType::Counter) {
        if (strip(name, "_total", base)) {
          g.key = base;  // "foo_total" family metadata -> OpenMetrics family "foo"
          g.type_word = "counter";
        } else {
          g.type_word = "unknown";
        }
        return g;
      }
      g.type_word = type_name(t);
      return g;
    }
    if (strip(name, "_total", base)) {
      if (auto* m = meta_of(base, MetricType::Counter)) {
        g.meta = m;
        if (f == Format::Text) {
          g.type_word = "counter";  // key stays the sample name
        } else {
          g.key = base;
          g.type_word = "counter";
        }
        return g;
      }
    }
    if (f == Format::OpenMetrics) {
      if (strip(name, "_created", base)) {
        if (const moni_metadata* m = meta_find(base)) {
          auto t = static_cast<MetricType>(m->type);
          if (t == MetricType::Counter || t == MetricType::Histogram || t == MetricType::Summary) {
            g.key = base;
            g.meta = m;
            g.type_word = type_name(t);
            return g;
          }
        }
      }
      if (strip(name, "_gcount", base) || strip(name, "_gsum", base) ||
          strip(name, "_bucket", base)) {
        if (auto* m = meta_of(base, MetricType::GaugeHistogram)) {
          g.key = base;
          g.meta = m;
          g.type_word = "gaugehistogram";
          return g;
        }
      }
      if (strip(name, "_info", base)) {
        if (auto* m = meta_of(base, MetricType::Info)) {
          g.key = base;
          g.meta = m;
          g.type_word = "info";
          return g;
        }
      }
    }
    if (strip(name, "_bucket", base)) {
      if (auto* m = meta_of(base, MetricType::Histogram)) {
        g.key = base;
        g.meta = m;
        g.type_word = "histogram";
        return g;
      }
    }
    if (strip(name, "_count", base) || strip(name, "_sum", base)) {
      if (auto* m = meta_of(base, MetricType::Histogram, MetricType::Summary)) {
        g.key = base;
        g.meta = m;
        g.type_word = f == Format::Text ? text_type(static_cast<MetricType>(m->type))
                                        : type_name(static_cast<MetricType>(m->type));
        return g;
      }
    }
    return g;  // untyped, no metadata
  }

  bool labels_valid(const moni_sample& s) const {
    for (uint32_t i = 0; i < s.label_count; ++i) {
      std::string_view n = sv(s.labels[i].name);
      if (n == kMetricNameLabel) continue;
      if (!valid_label_name(n)) return false;
    }
    return true;
  }

  static size_t header_bound(const Group& g) {
    if (!g.meta) return g.key.size() + 32;
    return 3 * g.key.size() + 2 * g.meta->help.len + g.meta->unit.len + 64;
  }

  static size_t sample_bound(const moni_sample& s) {
    size_t n = 2 + 1 + 32 + 1 + 32 + 1;  // braces, space, value, space, timestamp, newline
    for (uint32_t i = 0; i < s.label_count; ++i)
      n += s.labels[i].name.len + 2 * s.labels[i].value.len + 4;
    return n;
  }

  static char* write_header(char* p, const Group& g, Format f) {
    using detail::put;
    if (!g.meta) {
      if (f == Format::OpenMetrics) {
        p = put(p, "# TYPE ");
        p = put(p, g.key);
        p = put(p, " unknown\n");
      }
      return p;
    }
    p = put(p, "# HELP ");
    p = put(p, g.key);
    *p++ = ' ';
    p = detail::put_help(p, sv(g.meta->help), f);
    p = put(p, "\n# TYPE ");
    p = put(p, g.key);
    *p++ = ' ';
    p = put(p, g.type_word);
    *p++ = '\n';
    std::string_view unit = sv(g.meta->unit);
    if (f == Format::OpenMetrics && !unit.empty() && valid_unit_suffix(g.key, unit)) {
      p = put(p, "# UNIT ");
      p = put(p, g.key);
      *p++ = ' ';
      p = put(p, unit);
      *p++ = '\n';
    }
    return p;
  }

  static bool valid_unit_suffix(std::string_view family, std::string_view unit) {
    for (char ch : unit)
      if (!detail::is(ch, detail::kNameCont)) return false;
    return family.size() > unit.size() + 1 && family.ends_with(unit) &&
           family[family.size() - unit.size() - 1] == '_';
  }

  static char* write_sample(char* p, const moni_sample& s, const RenderOptions& opt) {
    return write_value(write_prefix(p, s), s, opt);
  }

  // A sample line up to its value: name, labels, the space.
  static char* write_prefix(char* p, const moni_sample& s) {
    using detail::put;
    p = put(p, find_label(s.labels, s.label_count, kMetricNameLabel));
    char sep = '{';
    for (uint32_t i = 0; i < s.label_count; ++i) {
      std::string_view n = sv(s.labels[i].name);
      if (n == kMetricNameLabel) continue;
      *p++ = sep;
      sep = ',';
      p = put(p, n);
      *p++ = '=';
      *p++ = '"';
      p = detail::put_label_value(p, sv(s.labels[i].value));
      *p++ = '"';
    }
    if (sep == ',') *p++ = '}';
    *p++ = ' ';
    return p;
  }

  // The rest of a sample line: value, timestamp, newline.
  static char* write_value(char* p, const moni_sample& s, const RenderOptions& opt) {
    using detail::put;
    p = detail::put_float(p, s.value);
    if (opt.timestamps) {
      *p++ = ' ';
      std::string ts;
      append_timestamp(ts, s.timestamp_ms, opt.format);
      p = put(p, ts);
    }
    *p++ = '\n';
    return p;
  }

  detail::FlatIndex meta_;
  std::vector<const moni_metadata*> metas_;
  std::vector<Group> groups_;
  detail::FlatIndex group_index_;
  std::vector<uint32_t> sample_group_;
  std::vector<uint32_t> order_;
  // What the grouping above was built for (RenderOptions::layout_key).
  uint64_t cached_key_ = 0;
  Format cached_format_ = Format::Text;
  bool cached_skip_stale_ = true;
  size_t cached_samples_ = 0;
  RenderStats cached_stats_;  // skipped count of that render
  size_t cached_bound_ = 0;
  RenderBuffer tmpl_;  // see build_template(); not zero-filled to the bound
  std::vector<uint32_t> tmpl_ends_;
};

/// Renders `batch` (plus `extra_metadata`) into `out` (appending).
inline RenderStats render(const moni_batch& batch, std::string& out, const RenderOptions& opt = {},
                          std::span<const moni_metadata> extra_metadata = {}) {
  Renderer r;
  return r.render(batch, out, opt, extra_metadata);
}

}  // namespace moni::text
