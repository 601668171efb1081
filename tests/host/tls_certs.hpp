// Throwaway PKI for TLS tests, made with the openssl CLI at test time: a CA,
// a server certificate for 127.0.0.1/localhost, a client certificate, and a
// second, unrelated CA with its own server certificate (for "wrong CA").
#pragma once

#include <string>

namespace moni::testtls {

struct Pki {
  std::string dir;
  std::string ca_cert, ca_key;
  std::string server_cert, server_key;  // signed by ca; SAN DNS:localhost, IP:127.0.0.1
  std::string client_cert, client_key;  // signed by ca; clientAuth
  std::string other_ca_cert;            // unrelated CA
  std::string other_server_cert, other_server_key;  // signed by other CA, same SANs
  std::string error;                    // set when generation failed (with openssl's output)
  bool ok() const { return error.empty(); }
};

/// Generates everything into `dir` (which must exist); EC P-256 keys, valid 2 days.
Pki make_pki(const std::string& dir);

/// "user" with password "s3cret" as bcrypt (cost 4) for basic_auth_users.
inline constexpr const char* kUser = "moni";
inline constexpr const char* kPassword = "s3cret";
inline constexpr const char* kPasswordHash =
    "$2b$04$SrClCd1hUbF/pAEVhuQyGOlXm0CLpqqYwgXAGkvB8Z45cHhxJC97a";

}  // namespace moni::testtls
