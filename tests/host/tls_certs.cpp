#include "tls_certs.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace moni::testtls {
namespace {

bool sh(const std::string& dir, const std::string& cmd, std::string& error) {
  std::string full = "cd '" + dir + "' && " + cmd + " >>openssl.log 2>&1";
  if (std::system(full.c_str()) == 0) return true;
  std::ifstream f(dir + "/openssl.log");
  std::stringstream ss;
  ss << f.rdbuf();
  error = "failed: " + cmd + "\n" + ss.str();
  return false;
}

const char* kNewKey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

bool make_ca(const std::string& dir, const std::string& name, std::string& error) {
  return sh(dir,
            std::string("openssl req -x509 ") + kNewKey + " -keyout " + name + ".key -out " + name +
                ".crt -days 2 -subj /CN=" + name +
                " -addext basicConstraints=critical,CA:TRUE"
                " -addext keyUsage=critical,keyCertSign,cRLSign",
            error);
}

bool make_leaf(const std::string& dir, const std::string& ca, const std::string& name,
               const std::string& ext, std::string& error) {
  std::ofstream(dir + "/" + name + ".ext") << ext << "\n";
  return sh(dir,
            std::string("openssl req -new ") + kNewKey + " -keyout " + name + ".key -out " + name +
                ".csr -subj /CN=" + name,
            error) &&
         sh(dir,
            "openssl x509 -req -in " + name + ".csr -CA " + ca + ".crt -CAkey " + ca +
                ".key -CAcreateserial -days 2 -out " + name + ".crt -extfile " + name + ".ext",
            error);
}

}  // namespace

Pki make_pki(const std::string& dir) {
  Pki p;
  p.dir = dir;
  const std::string server_ext =
      "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
      "keyUsage=critical,digitalSignature";
  bool ok = make_ca(dir, "ca", p.error) && make_ca(dir, "other-ca", p.error) &&
            make_leaf(dir, "ca", "server", server_ext, p.error) &&
            make_leaf(dir, "ca", "client",
                      "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature", p.error) &&
            make_leaf(dir, "other-ca", "other-server", server_ext, p.error);
  if (!ok) return p;
  p.ca_cert = dir + "/ca.crt";
  p.ca_key = dir + "/ca.key";
  p.server_cert = dir + "/server.crt";
  p.server_key = dir + "/server.key";
  p.client_cert = dir + "/client.crt";
  p.client_key = dir + "/client.key";
  p.other_ca_cert = dir + "/other-ca.crt";
  p.other_server_cert = dir + "/other-server.crt";
  p.other_server_key = dir + "/other-server.key";
  return p;
}

}  // namespace moni::testtls
