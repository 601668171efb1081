#include "basic_auth.hpp"

#include <crypt.h>  // struct crypt_data only: crypt_r comes from dlopen
#include <dlfcn.h>

#include <cstring>
#include <memory>
#include <optional>

namespace moni::host {
namespace {

std::optional<std::string> base64_decode(std::string_view in) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  std::string out;
  int bits = 0, acc = 0;
  for (char c : in) {
    if (c == '=') break;
    int v = val(c);
    if (v < 0) return std::nullopt;
    acc = (acc << 6) | v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  unsigned char d = 0;
  for (size_t i = 0; i < a.size(); ++i) d |= static_cast<unsigned char>(a[i] ^ b[i]);
  return d == 0;
}

using CryptR = char* (*)(const char*, const char*, crypt_data*);

// libcrypt (libxcrypt) is opened the first time a config has users: a host
// without [host.web] users does not map it. Kept open for the process's life.
CryptR crypt_r_fn(std::string* error) {
  static std::once_flag once;
  static CryptR fn = nullptr;
  static std::string why;
  std::call_once(once, [] {
    void* h = ::dlopen("libcrypt.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h) fn = reinterpret_cast<CryptR>(::dlsym(h, "crypt_r"));
    if (!fn) {
      const char* e = ::dlerror();
      why = std::string("cannot load libcrypt.so.1 (libcrypt1) to verify password hashes: ") +
            (e ? e : "no crypt_r");
    }
  });
  if (!fn && error) *error = why;
  return fn;
}

}  // namespace

std::string BasicAuth::load_crypt() {
  std::string err;
  crypt_r_fn(&err);
  return err;
}

std::string BasicAuth::validate_hash(std::string_view h) {
  if (h.starts_with("$2a$") || h.starts_with("$2b$") || h.starts_with("$2y$") ||
      h.starts_with("$5$") || h.starts_with("$6$") || h.starts_with("$y$"))
    return {};
  return "must be a password hash (bcrypt: `htpasswd -nBC 10 USER`, or mkpasswd's "
         "sha-512/yescrypt), not a plain password";
}

bool BasicAuth::check(std::string_view authorization) const {
  if (!authorization.starts_with("Basic ")) return false;
  auto decoded = base64_decode(authorization.substr(6));
  if (!decoded) return false;
  size_t colon = decoded->find(':');
  if (colon == std::string::npos) return false;
  std::string user = decoded->substr(0, colon), password = decoded->substr(colon + 1);
  auto it = users_.find(user);
  if (it == users_.end()) return false;
  {
    std::lock_guard lock(mu_);
    if (verified_.count(*decoded)) return true;
  }
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  CryptR crypt = crypt_r_fn(nullptr);
  if (!crypt) return false;  // refused: the config load reported why
  const char* out = crypt(password.c_str(), it->second.c_str(), data.get());
  if (!out || out[0] == '*' || !constant_time_equal(out, it->second)) return false;
  std::lock_guard lock(mu_);
  if (verified_.size() > 256) verified_.clear();
  verified_.insert(*decoded);
  return true;
}

}  // namespace moni::host
