// HTTP basic authentication for the host's server ([host.web]
// basic_auth_users), with password hashes as Prometheus's web config takes
// them: bcrypt ("$2y$..."), or sha-crypt ("$5$", "$6$") and yescrypt ("$y$").
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

namespace moni::host {

/// Thread-safety: check() may be called from any thread.
class BasicAuth {
 public:
  explicit BasicAuth(std::map<std::string, std::string> users) : users_(std::move(users)) {}
  /// True when the Authorization header names a user whose password matches.
  bool check(std::string_view authorization) const;
  /// An empty string when `hash` is a supported hash, else why not.
  static std::string validate_hash(std::string_view hash);
  /// Loads libcrypt (once, on first call: hosts without users never map
  /// it); an empty string when it is there, else why not.
  static std::string load_crypt();

 private:
  std::map<std::string, std::string> users_;
  // Verified "user:password" pairs: bcrypt is slow on purpose, a scraper
  // sends the same credentials every few seconds.
  mutable std::mutex mu_;
  mutable std::set<std::string> verified_;
};

}  // namespace moni::host
