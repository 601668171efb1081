// TLS on the host's HTTP server ([host.web.tls]) through the real moni
// binary: certificates made with the openssl CLI at test time, checked with
// curl and a real Prometheus 2.42; plain HTTP on the TLS port, handshake
// timeout, client certificates, basic auth over TLS, config errors, and
// certificate rotation on SIGHUP.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "host_config.hpp"
#include "subprocess.hpp"
#include "tls_certs.hpp"

using namespace moni::test;
namespace tt = moni::testtls;
namespace fs = std::filesystem;

namespace {

const std::string kMoni = MONI_BIN;

struct Curl {
  int exit_code = -1;
  int status = 0;
  std::string body, err;
};

// curl against 127.0.0.1:port over https with extra options.
Curl curl(int port, const std::string& path, std::vector<std::string> opts) {
  std::vector<std::string> argv{"/usr/bin/curl", "-sS", "--max-time", "10", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), opts.begin(), opts.end());
  argv.push_back("https://127.0.0.1:" + std::to_string(port) + path);
  auto r = run(argv);
  Curl c;
  c.exit_code = r.exit_code;
  c.err = r.err;
  size_t nl = r.out.rfind('\n');
  c.status = nl == std::string::npos ? 0 : std::atoi(r.out.c_str() + nl + 1);
  c.body = nl == std::string::npos ? r.out : r.out.substr(0, nl);
  return c;
}

// A config with [host.web.tls] = `tls` (lines of the table body) and
// optional extra [host.web] lines; no pipelines (the host serves /metrics).
std::string config(const TempDir& d, const std::string& tls, const std::string& web = "") {
  return "[host]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"" + d.file("data") + "\"\n" +
         (web.empty() ? "" : "[host.web]\n" + web) + "[host.web.tls]\n" + tls;
}

std::string tls_files(const std::string& cert, const std::string& key) {
  return "cert_file = \"" + cert + "\"\nkey_file = \"" + key + "\"\n";
}

struct Fixture {
  TempDir d;
  tt::Pki pki = tt::make_pki(d.path);
};

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

bool wait_until(const std::function<bool()>& cond, int timeout_ms) {
  auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return cond();
}

}  // namespace

TEST(HostTls, ConfigErrorsNameTheKeyAndOpenSslsReason) {
  Fixture f;
  ASSERT_TRUE(f.pki.ok()) << f.pki.error;
  f.d.write("garbage.key", "this is not a key\n");
  auto parse = [&](const std::string& tls) {
    auto r = moni::host::parse_config_text(config(f.d, tls), f.d.file("c.toml"));
    return r ? std::string() : r.error().message;
  };
  // [host.web.tls] is line 4; its keys start on line 5.
  std::string e = parse(tls_files(f.pki.server_cert, f.d.file("garbage.key")));
  EXPECT_NE(e.find(f.d.file("c.toml") + ":6:12: host.web.tls.key_file: \"" + f.d.file("garbage.key") +
                   "\" is not an unencrypted PEM private key: "),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("DECODER routines: unsupported"), std::string::npos) << e;  // OpenSSL's reason
  e = parse(tls_files(f.d.file("missing.crt"), f.pki.server_key));
  EXPECT_NE(e.find(":5:13: host.web.tls.cert_file: cannot read \"" + f.d.file("missing.crt") +
                   "\": No such file or directory"),
            std::string::npos)
      << e;
  e = parse(tls_files(f.pki.server_cert, f.pki.client_key));
  EXPECT_NE(e.find(":6:12: host.web.tls.key_file: \"" + f.pki.client_key +
                   "\" does not belong to the certificate"),
            std::string::npos)
      << e;
  e = parse(tls_files(f.pki.server_cert, f.pki.server_key) + "client_auth = \"require\"\n");
  EXPECT_NE(e.find(":7:15: host.web.tls.client_auth needs client_ca_file"), std::string::npos) << e;
  e = parse(tls_files(f.pki.server_cert, f.pki.server_key) + "client_ca_file = \"" + f.pki.ca_cert +
            "\"\n");
  EXPECT_NE(e.find(":7:18: host.web.tls.client_ca_file is set but client_auth is \"none\""),
            std::string::npos)
      << e;
  e = parse(tls_files(f.pki.server_cert, f.pki.server_key) +
            "client_auth = \"require\"\nclient_ca_file = \"" + f.d.file("garbage.key") + "\"\n");
  EXPECT_NE(e.find(":8:18: host.web.tls.client_ca_file:"), std::string::npos) << e;
  e = parse(tls_files(f.pki.server_cert, f.pki.server_key) +
            "min_version = \"TLS11\"\nciphers = []\n");
  EXPECT_NE(e.find(":7:15: host.web.tls.min_version must be \"TLS12\" or \"TLS13\""),
            std::string::npos)
      << e;
  EXPECT_NE(e.find(":8:11: unknown option 'host.web.tls.ciphers'"), std::string::npos) << e;
  e = parse("key_file = \"" + f.pki.server_key + "\"\n");
  EXPECT_NE(e.find(":4:1: host.web.tls.cert_file is required"), std::string::npos) << e;
  // Relative paths are relative to the config file.
  EXPECT_EQ(parse(tls_files("server.crt", "server.key")), "");
}

TEST(HostTls, BadKeyFileRefusesToStart) {
  Fixture f;
  ASSERT_TRUE(f.pki.ok()) << f.pki.error;
  f.d.write("garbage.key", "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n");
  f.d.write("c.toml", config(f.d, tls_files(f.pki.server_cert, f.d.file("garbage.key"))));
  auto r = run({kMoni, "run", "--config", f.d.file("c.toml")});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find(f.d.file("c.toml") + ":6:12: host.web.tls.key_file:"), std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("listening on"), std::string::npos) << r.err;
  auto c = run({kMoni, "check-config", f.d.file("c.toml")});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE((c.out + c.err).find(":6:12: host.web.tls.key_file:"), std::string::npos)
      << c.out << c.err;
}

TEST(HostTls, ServesHttpsRejectsPlainHttpAndTimesOutSilentClients) {
  Fixture f;
  ASSERT_TRUE(f.pki.ok()) << f.pki.error;
  f.d.write("c.toml", config(f.d, tls_files(f.pki.server_cert, f.pki.server_key) +
                                      "handshake_timeout = \"1s\"\n"));
  Child moni({kMoni, "run", "--config", f.d.file("c.toml")});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  EXPECT_TRUE(moni.wait_for_log("serving HTTPS: TLS 1.2+, certificate CN=server", 5000))
      << moni.err();

  auto ok = curl(port, "/metrics", {"--cacert", f.pki.ca_cert});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_EQ(ok.status, 200);
  EXPECT_NE(ok.body.find("moni_build_info"), std::string::npos);
  // The name in the certificate is verified: localhost is in it too.
  auto by_name = run({"/usr/bin/curl", "-sS", "--max-time", "10", "--cacert", f.pki.ca_cert,
                      "--resolve", "localhost:" + std::to_string(port) + ":127.0.0.1",
                      "https://localhost:" + std::to_string(port) + "/-/healthy"});
  EXPECT_EQ(by_name.exit_code, 0) << by_name.err;
  EXPECT_EQ(by_name.out, "moni is Healthy.\n");
  // Without the CA, or trusting another CA, the client refuses the server.
  EXPECT_NE(curl(port, "/-/healthy", {}).exit_code, 0);
  EXPECT_NE(curl(port, "/-/healthy", {"--cacert", f.pki.other_ca_cert}).exit_code, 0);
  // TLS 1.1 is refused.
  auto old = curl(port, "/-/healthy", {"--cacert", f.pki.ca_cert, "--tlsv1.1", "--tls-max", "1.1"});
  EXPECT_NE(old.exit_code, 0);

  // Plain HTTP to the TLS port: a clean 400, as Prometheus answers.
  auto plain = http_get(port, "/metrics");
  EXPECT_EQ(plain.status, 400);
  EXPECT_EQ(plain.body, "Client sent an HTTP request to an HTTPS server.\n");

  // A client that connects and says nothing is dropped after handshake_timeout.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  auto t0 = std::chrono::steady_clock::now();
  pollfd p{fd, POLLIN, 0};
  int ready = ::poll(&p, 1, 6000);
  char buf[16];
  ssize_t n = ready == 1 ? ::read(fd, buf, sizeof buf) : -2;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ::close(fd);
  EXPECT_EQ(n, 0) << "the server did not close the silent connection";
  EXPECT_GE(secs, 0.8);
  EXPECT_LT(secs, 4.0);

  // Still serving after all that.
  auto again = curl(port, "/-/healthy", {"--cacert", f.pki.ca_cert});
  EXPECT_EQ(again.status, 200) << again.err;
  moni.signal(SIGTERM);
  EXPECT_EQ(moni.wait(10000), 0) << moni.err();
}

TEST(HostTls, Tls13OnlyRefusesTls12) {
  Fixture f;
  ASSERT_TRUE(f.pki.ok()) << f.pki.error;
  f.d.write("c.toml", config(f.d, tls_files(f.pki.server_cert, f.pki.server_key) +
                                      "min_version = \"TLS13\"\n"));
  Child moni({kMoni, "run", "--config", f.d.file("c.toml")});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  EXPECT_EQ(curl(port, "/-/healthy", {"--cacert", f.pki.ca_cert, "--tlsv1.3"}).status, 200);
  EXPECT_NE(curl(port, "/-/healthy", {"--cacert", f.pki.ca_cert, "--tls-max", "1.2"}).exit_code,
            0);
}

TEST(HostTls, ClientCertificatesRequired) {
  Fixture f;
  ASSERT_TRUE(f.pki.ok()) << f.pki.error;
  f.d.write("c.toml", config(f.d, tls_files(f.pki.server_cert, f.pki.server_key) +
                                      "client_auth = \"require\"\nclient_ca_file = \"" +
                                      f.pki.ca_cert + "\"\n"));
  Child moni({kMoni, "run", "--config", f.d.file("c.toml")});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  auto none = curl(port, "/-/healthy", {"--cacert", f.pki.ca_cert});
  EXPECT_NE(none.exit_code, 0);
  EXPECT_NE(none.status, 200);
  auto with = curl(port, "/-/healthy",
                   {"--cacert", f.pki.ca_cert, "--cert", f.pki.client_cert, "--key", f.pki.client_key});
  EXPECT_EQ(with.exit_code, 0) << with.err;
  EXPECT_EQ(with.status, 200);
  // A certificate from another CA is refused: a server certificate signed
  // by the other CA used as a client certificate.
  auto foreign = curl(port, "/-/healthy",
                      {"--cacert", f.pki.ca_cert, "--cert", f.pki.other_server_cert, "--key",
                       f.pki.other_server_key});
  EXPECT_NE(foreign.status, 200);
}

TEST(HostTls, ClientCertificatesRequestedVerifyWhenSent) {
  Fixture f;
  ASSERT_TRUE(f.pki.ok()) << f.pki.error;
  f.d.write("c.toml", config(f.d, tls_files(f.pki.server_cert, f.pki.server_key) +
                                      "client_auth = \"request\"\nclient_ca_file = \"" +
                                      f.pki.ca_cert + "\"\n"));
  Child moni({kMoni, "run", "--config", f.d.file("c.toml")});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  EXPECT_EQ(curl(port, "/-/healthy", {"--cacert", f.pki.ca_cert}).status, 200);
  EXPECT_EQ(curl(port, "/-/healthy",
                 {"--cacert", f.pki.ca_cert, "--cert", f.pki.client_cert, "--key", f.pki.client_key})
                .status,
            200);
  EXPECT_NE(curl(port, "/-/healthy",
                 {"--cacert", f.pki.ca_cert, "--cert", f.pki.other_server_cert, "--key",
                  f.pki.other_server_key})
                .status,
            200);
}

// Certificates are re-read on SIGHUP; a broken key on reload keeps the
// running certificate and names the key.
TEST(HostTls, ReloadRotatesCertificatesAndKeepsThemOnError) {
  Fixture f;
  ASSERT_TRUE(f.pki.ok()) << f.pki.error;
  fs::copy_file(f.pki.server_cert, f.d.file("live.crt"));
  fs::copy_file(f.pki.server_key, f.d.file("live.key"));
  f.d.write("c.toml", config(f.d, tls_files("live.crt", "live.key")));
  Child moni({kMoni, "run", "--config", f.d.file("c.toml")});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  EXPECT_EQ(curl(port, "/-/healthy", {"--cacert", f.pki.ca_cert}).status, 200);

  fs::copy_file(f.pki.other_server_cert, f.d.file("live.crt"), fs::copy_options::overwrite_existing);
  fs::copy_file(f.pki.other_server_key, f.d.file("live.key"), fs::copy_options::overwrite_existing);
  moni.signal(SIGHUP);
  ASSERT_TRUE(moni.wait_for_log("configuration reloaded", 10000)) << moni.err();
  EXPECT_TRUE(wait_until(
      [&] { return curl(port, "/-/healthy", {"--cacert", f.pki.other_ca_cert}).status == 200; },
      5000));
  EXPECT_NE(curl(port, "/-/healthy", {"--cacert", f.pki.ca_cert}).exit_code, 0);

  f.d.write("live.key", "broken\n");
  moni.signal(SIGHUP);
  ASSERT_TRUE(moni.wait_for_log("reload failed", 10000)) << moni.err();
  EXPECT_NE(moni.err().find(f.d.file("c.toml") + ":6:12: host.web.tls.key_file:"),
            std::string::npos)
      << moni.err();
  EXPECT_EQ(curl(port, "/-/healthy", {"--cacert", f.pki.other_ca_cert}).status, 200);
}

// A real Prometheus 2.42 scrapes moni over HTTPS with tls_config and basic
// auth; curl checks basic auth over TLS too.
TEST(HostTls, RealPrometheusScrapesOverHttpsWithBasicAuth) {
  Fixture f;
  ASSERT_TRUE(f.pki.ok()) << f.pki.error;
  f.d.write("c.toml", config(f.d, tls_files(f.pki.server_cert, f.pki.server_key),
                             "basic_auth_users = { " + std::string(tt::kUser) + " = \"" +
                                 tt::kPasswordHash + "\" }\n"));
  Child moni({kMoni, "run", "--config", f.d.file("c.toml")});
  int port = moni.port();
  ASSERT_GT(port, 0) << moni.err();
  std::string creds = std::string(tt::kUser) + ":" + tt::kPassword;
  EXPECT_EQ(curl(port, "/metrics", {"--cacert", f.pki.ca_cert}).status, 401);
  EXPECT_EQ(curl(port, "/metrics", {"--cacert", f.pki.ca_cert, "-u", std::string(tt::kUser) + ":no"})
                .status,
            401);
  EXPECT_EQ(curl(port, "/metrics", {"--cacert", f.pki.ca_cert, "-u", creds}).status, 200);

  int prom_port = free_port();
  std::ofstream(f.d.file("prometheus.yml"))
      << "global:\n  scrape_interval: 1s\n  scrape_timeout: 900ms\nscrape_configs:\n"
      << "  - job_name: moni\n    scheme: https\n    tls_config:\n      ca_file: " << f.pki.ca_cert
      << "\n    basic_auth:\n      username: " << tt::kUser << "\n      password: " << tt::kPassword
      << "\n    static_configs:\n      - targets: ['127.0.0.1:" << port << "']\n"
      << "  - job_name: moni_wrong_ca\n    scheme: https\n    tls_config:\n      ca_file: "
      << f.pki.other_ca_cert << "\n    basic_auth:\n      username: " << tt::kUser
      << "\n      password: " << tt::kPassword << "\n    static_configs:\n      - targets: ['127.0.0.1:" << port
      << "']\n";
  Child prom({"/usr/bin/prometheus", "--config.file=" + f.d.file("prometheus.yml"),
              "--storage.tsdb.path=" + f.d.file("tsdb"),
              "--web.listen-address=127.0.0.1:" + std::to_string(prom_port)});
  auto value_of = [&](const std::string& q) -> std::string {
    std::string enc;
    for (unsigned char c : q) {
      char b[4];
      snprintf(b, sizeof b, "%%%02X", c);
      enc += std::isalnum(c) ? std::string(1, static_cast<char>(c)) : std::string(b);
    }
    auto r = http_get(prom_port, "/api/v1/query?query=" + enc);
    // One sample: ..."value":[<ts>,"<v>"]...
    size_t at = r.body.find("\"value\":[");
    if (r.status != 200 || at == std::string::npos) return "";
    size_t q1 = r.body.find('"', r.body.find(',', at) + 1);
    size_t q2 = r.body.find('"', q1 + 1);
    return r.body.substr(q1 + 1, q2 - q1 - 1);
  };
  bool up = wait_until([&] { return value_of("up{job=\"moni\"}") == "1"; }, 30000);
  EXPECT_TRUE(up) << "moni:\n" << moni.err() << "\nprometheus:\n" << prom.err();
  EXPECT_EQ(value_of("moni_build_info{job=\"moni\"}"), "1");
  // Prometheus trusting another CA cannot scrape moni.
  EXPECT_TRUE(wait_until([&] { return value_of("up{job=\"moni_wrong_ca\"}") == "0"; }, 10000));
}

namespace {
bool maps_tls_module(int pid) {
  std::string maps = read_file("/proc/" + std::to_string(pid) + "/maps");
  return maps.find("/moni-host-tls.so") != std::string::npos;
}
}  // namespace

// OpenSSL is in the TLS module, loaded only for [host.web.tls]: the moni
// binary does not link libssl/libcrypto (~1.7 MiB resident), a host without
// TLS does not map the module, one with TLS does. (Plugins may still link
// OpenSSL themselves: scrape does, for https targets.) A missing module is
// a config error naming the file.
TEST(HostTls, OpenSslIsLoadedOnlyWhenTlsIsConfigured) {
  Fixture f;
  ASSERT_TRUE(f.pki.ok()) << f.pki.error;
  auto ldd = run({"/usr/bin/ldd", kMoni});
  ASSERT_EQ(ldd.exit_code, 0) << ldd.err;
  EXPECT_EQ(ldd.out.find("libssl"), std::string::npos) << ldd.out;
  EXPECT_EQ(ldd.out.find("libcrypto"), std::string::npos) << ldd.out;
  f.d.write("plain.toml", "[host]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"" + f.d.file("data") +
                              "\"\n");
  {
    Child moni({kMoni, "run", "--config", f.d.file("plain.toml")});
    int port = moni.port();
    ASSERT_GT(port, 0) << moni.err();
    EXPECT_EQ(http_get(port, "/-/healthy").status, 200);
    EXPECT_FALSE(maps_tls_module(moni.pid()));
    moni.signal(SIGTERM);
    EXPECT_EQ(moni.wait(10000), 0) << moni.err();
  }
  f.d.write("tls.toml", config(f.d, tls_files(f.pki.server_cert, f.pki.server_key)));
  {
    Child moni({kMoni, "run", "--config", f.d.file("tls.toml")});
    int port = moni.port();
    ASSERT_GT(port, 0) << moni.err();
    EXPECT_EQ(curl(port, "/-/healthy", {"--cacert", f.pki.ca_cert}).status, 200);
    EXPECT_TRUE(maps_tls_module(moni.pid()));
    moni.signal(SIGTERM);
    EXPECT_EQ(moni.wait(10000), 0) << moni.err();
  }
  auto c = run({kMoni, "check-config", f.d.file("tls.toml")},
               {{"MONI_HOST_TLS_MODULE", f.d.file("no-such-module.so")}});
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_NE((c.out + c.err).find("TLS support is not available: cannot load " +
                                 f.d.file("no-such-module.so")),
            std::string::npos)
      << c.out << c.err;
}
