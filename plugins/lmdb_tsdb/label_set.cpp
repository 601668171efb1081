#include "label_set.hpp"

#include <cstdio>
#include <cstring>

#include "chunk_codec.hpp"

namespace moni::tsdb {

void encode_labels(const moni_label* labels, uint32_t n, std::string& out) {
  for (uint32_t i = 0; i < n; ++i) {
    put_varint(out, labels[i].name.len);
    out.append(labels[i].name.ptr, labels[i].name.len);
    put_varint(out, labels[i].value.len);
    out.append(labels[i].value.ptr, labels[i].value.len);
  }
}

bool decode_labels(std::string_view bytes, std::vector<moni_label>& out) {
  out.clear();
  while (!bytes.empty()) {
    uint64_t n;
    moni_label l{};
    if (!get_varint(bytes, n) || n > bytes.size()) return false;
    l.name = {bytes.data(), static_cast<size_t>(n)};
    bytes.remove_prefix(n);
    if (!get_varint(bytes, n) || n > bytes.size()) return false;
    l.value = {bytes.data(), static_cast<size_t>(n)};
    bytes.remove_prefix(n);
    out.push_back(l);
  }
  return true;
}

uint64_t hash64(std::string_view s) {
  // FNV-1a with a final avalanche; only used to disambiguate long keys.
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

namespace {
inline uint64_t mix(uint64_t h, uint64_t x) {
  h = (h ^ x) * 0x9E3779B97F4A7C15ULL;
  return h ^ (h >> 29);
}
inline uint64_t hash_bytes(uint64_t h, const char* p, size_t n) {
  h = mix(h, n);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = mix(h, w);
  }
  if (n > 0) {
    uint64_t w = 0;
    std::memcpy(&w, p, n);
    h = mix(h, w);
  }
  return h;
}
}  // namespace

uint64_t label_set_hash(const moni_label* labels, uint32_t n) {
  uint64_t h = 0x243F6A8885A308D3ULL;
  for (uint32_t i = 0; i < n; ++i) {
    h = hash_bytes(h, labels[i].name.ptr, labels[i].name.len);
    h = hash_bytes(h, labels[i].value.ptr, labels[i].value.len);
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  return h ^ (h >> 33);
}

bool labels_equal(const moni_label* labels, uint32_t n, std::string_view key) {
  const auto* p = reinterpret_cast<const uint8_t*>(key.data());
  const uint8_t* end = p + key.size();
  for (uint32_t i = 0; i < n; ++i) {
    for (const moni_str* s : {&labels[i].name, &labels[i].value}) {
      // Lengths under 128 are one varint byte (almost every label).
      size_t len;
      if (p < end && *p < 0x80) {
        len = *p++;
      } else {
        std::string_view rest(reinterpret_cast<const char*>(p), static_cast<size_t>(end - p));
        uint64_t l;
        if (!get_varint(rest, l)) return false;
        p = reinterpret_cast<const uint8_t*>(rest.data());
        len = l;
      }
      if (len != s->len || static_cast<size_t>(end - p) < len) return false;
      if (len > 0 && std::memcmp(p, s->ptr, len) != 0) return false;
      p += len;
    }
  }
  return p == end;
}

bool pack_labels(std::string_view key, std::string& out) {
  std::string lens, bytes;
  while (!key.empty()) {
    uint64_t n;
    if (!get_varint(key, n) || n > key.size() || n > 255) return false;
    lens.push_back(static_cast<char>(static_cast<uint8_t>(n)));
    bytes.append(key.substr(0, n));
    key.remove_prefix(n);
  }
  if (lens.size() % 2 != 0 || lens.size() / 2 > 255) return false;
  out.push_back(static_cast<char>(static_cast<uint8_t>(lens.size() / 2)));
  out += lens;
  out += bytes;
  return true;
}

void posting_key(std::string_view name, std::string_view value, std::string& out) {
  out.assign(name);
  out.push_back('\0');
  if (name.size() + 1 + value.size() < kPostingKeyTruncated) {
    out.append(value);
    return;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash64(value)));
  out.append(value.substr(0, kPostingKeyTruncated - out.size() - 16));
  out.append(hex, 16);
}

bool split_posting_key(std::string_view key, std::string_view& name, std::string_view& value,
                       bool& truncated) {
  size_t z = key.find('\0');
  if (z == std::string_view::npos) return false;
  name = key.substr(0, z);
  value = key.substr(z + 1);
  truncated = key.size() == kPostingKeyTruncated;
  if (truncated) value = value.substr(0, value.size() - 16);
  return true;
}

}  // namespace moni::tsdb
