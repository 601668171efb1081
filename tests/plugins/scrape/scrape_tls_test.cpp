// scrape over HTTPS: a real prometheus-node-exporter 1.5 with a web config
// (TLS, basic auth, client certificates), certificates made with the
// openssl CLI at test time; verification failures (wrong CA, wrong name,
// plain HTTP target) give up 0 and an error naming the cause; bearer tokens.
#include <http_peer.hpp>
#include <plugin_harness.hpp>
#include <tls_certs.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <mutex>

using moni::testing::OwnedBatch;
using moni::testing::PluginHarness;
namespace peer = moni::testpeer;
namespace tt = moni::testtls;

namespace {

std::unique_ptr<PluginHarness> load(const std::string& toml) {
  auto h = PluginHarness::load(moni::testing::plugin_path("scrape"), toml, "agents");
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
  if (!h.ok()) return nullptr;
  EXPECT_TRUE((*h)->start().ok());
  return std::move(*h);
}

std::string create_error(const std::string& toml) {
  auto h = PluginHarness::load(moni::testing::plugin_path("scrape"), toml, "agents");
  return h.ok() ? std::string() : h.error().message;
}

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double up(const OwnedBatch& b) {
  auto* s = b.one("up");
  return s ? s->value : -1;
}

std::string logs(const PluginHarness& h) {
  std::string all;
  for (const auto& l : h.logs()) all += l + "\n";
  return all;
}

// One node_exporter with a web config; PKI shared by all tests.
struct NodeExporter {
  std::unique_ptr<peer::Process> proc;
  uint16_t port = 0;
};

class ScrapeTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = peer::temp_dir("moni-scrape-tls-");
    pki_ = tt::make_pki(dir_);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }
  void SetUp() override { ASSERT_TRUE(pki_.ok()) << pki_.error; }

  // Starts node_exporter serving HTTPS with `extra` web config lines.
  static NodeExporter start_exporter(const std::string& name, const std::string& tls_extra,
                                     const std::string& top_extra = "") {
    NodeExporter ne;
    ne.port = peer::free_port();
    std::string cfg = dir_ + "/" + name + ".yml";
    std::ofstream(cfg) << "tls_server_config:\n  cert_file: " << pki_.server_cert
                       << "\n  key_file: " << pki_.server_key << "\n"
                       << tls_extra << top_extra;
    ne.proc = std::make_unique<peer::Process>(
        std::vector<std::string>{"/usr/bin/prometheus-node-exporter",
                                 "--web.listen-address=127.0.0.1:" + std::to_string(ne.port),
                                 "--web.config.file=" + cfg, "--collector.disable-defaults",
                                 "--collector.loadavg", "--collector.meminfo",
                                 "--collector.uname"},
        dir_ + "/" + name + ".log");
    // Plain HTTP gets Go's 400 once the TLS listener is up.
    peer::wait_until([&] { return peer::http_get(ne.port, "/").status == 400; },
                     std::chrono::seconds(10));
    return ne;
  }

  static std::string job(uint16_t port, const std::string& tls, const std::string& extra = "") {
    return "interval = \"5s\"\njob = \"node\"\nscheme = \"https\"\ntargets = [\"127.0.0.1:" +
           std::to_string(port) + "\"]\ntls = { " + tls + " }\n" + extra;
  }
  static std::string ca(const std::string& file) { return "ca_file = \"" + file + "\""; }

  static std::string dir_;
  static tt::Pki pki_;
};
std::string ScrapeTls::dir_;
tt::Pki ScrapeTls::pki_;

const std::string kBasicAuthUsers =
    std::string("basic_auth_users:\n  ") + tt::kUser + ": " + tt::kPasswordHash + "\n";

}  // namespace

TEST_F(ScrapeTls, RealNodeExporterOverHttpsWithBasicAuth) {
  auto ne = start_exporter("auth", "", kBasicAuthUsers);
  std::ofstream(dir_ + "/password") << tt::kPassword << "\n";
  auto h = load(job(ne.port, ca(pki_.ca_cert),
                    "basic_auth = { username = \"" + std::string(tt::kUser) +
                        "\", password_file = \"" + dir_ + "/password\" }\n"));
  ASSERT_TRUE(h);
  auto b = h->collect(now_ms());
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ(up(*b), 1) << logs(*h);
  ASSERT_NE(b->one("node_load1"), nullptr);
  EXPECT_EQ(b->one("node_load1")->label("job"), "node");
  EXPECT_GT(b->one("scrape_samples_scraped")->value, 20);
  // The same over a name in the certificate (SNI + name check).
  auto named = load(job(ne.port, ca(pki_.ca_cert) + ", server_name = \"localhost\"",
                        "basic_auth = { username = \"" + std::string(tt::kUser) +
                            "\", password = \"" + tt::kPassword + "\" }\n"));
  ASSERT_TRUE(named);
  auto nb = named->collect(now_ms());
  ASSERT_TRUE(nb.ok());
  EXPECT_EQ(up(*nb), 1) << logs(*named);
  // A wrong password: TLS works, the exporter says 401.
  auto wrong = load(job(ne.port, ca(pki_.ca_cert),
                        "basic_auth = { username = \"" + std::string(tt::kUser) +
                            "\", password = \"nope\" }\n"));
  ASSERT_TRUE(wrong);
  auto wb = wrong->collect(now_ms());
  ASSERT_TRUE(wb.ok());
  EXPECT_EQ(up(*wb), 0);
  EXPECT_NE(logs(*wrong).find("server returned HTTP status 401"), std::string::npos)
      << logs(*wrong);
}

TEST_F(ScrapeTls, VerificationFailuresNameTheCause) {
  auto ne = start_exporter("plain_tls", "");
  auto scrape = [&](const std::string& tls, double want_up, const std::string& want_log) {
    SCOPED_TRACE(tls);
    auto h = load(job(ne.port, tls));
    ASSERT_TRUE(h);
    auto b = h->collect(now_ms());
    ASSERT_TRUE(b.ok());
    EXPECT_EQ(up(*b), want_up) << logs(*h);
    if (!want_log.empty()) {
      EXPECT_NE(logs(*h).find(want_log), std::string::npos) << logs(*h);
    }
    if (want_up == 0) {
      EXPECT_EQ(b->one("node_load1"), nullptr);
    }
  };
  scrape(ca(pki_.ca_cert), 1, "");
  scrape(ca(pki_.other_ca_cert), 0,
         "scrape of https://127.0.0.1:" + std::to_string(ne.port) +
             "/metrics failed: TLS handshake: certificate verify failed: unable to get local "
             "issuer certificate (is tls.ca_file the CA that signed the target's certificate?)");
  scrape(ca(pki_.ca_cert) + ", server_name = \"wrong.example\"", 0,
         "certificate verify failed: hostname mismatch (the target's certificate is not valid for "
         "\"wrong.example\"");
  // Verification off: any CA, any name.
  scrape(ca(pki_.other_ca_cert) + ", insecure_skip_verify = true", 1, "");
  // No ca_file: the system store does not know the test CA.
  scrape("", 0, "certificate verify failed");
}

TEST_F(ScrapeTls, ClientCertificateForExportersThatRequireOne) {
  auto ne = start_exporter("mtls", "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: " +
                                       pki_.ca_cert + "\n");
  auto without = load(job(ne.port, ca(pki_.ca_cert)));
  ASSERT_TRUE(without);
  auto b = without->collect(now_ms());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(up(*b), 0);
  EXPECT_NE(logs(*without).find("failed: "), std::string::npos) << logs(*without);
  auto with = load(job(ne.port, ca(pki_.ca_cert) + ", cert_file = \"" + pki_.client_cert +
                                    "\", key_file = \"" + pki_.client_key + "\""));
  ASSERT_TRUE(with);
  b = with->collect(now_ms());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(up(*b), 1) << logs(*with);
}

TEST_F(ScrapeTls, HttpsToAPlainHttpTarget) {
  peer::Server plain([](const peer::Request&) {
    peer::Response r;
    r.status = 200;
    r.body = "x 1\n";
    return r;
  });
  auto h = load(job(plain.port(), ca(pki_.ca_cert)));
  ASSERT_TRUE(h);
  auto b = h->collect(now_ms());
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(up(*b), 0);
  EXPECT_NE(logs(*h).find("is the target serving plain HTTP?"), std::string::npos) << logs(*h);
}

TEST_F(ScrapeTls, ConfigErrors) {
  std::string e = create_error(job(1, ca(dir_ + "/missing.crt")));
  EXPECT_NE(e.find("tls.ca_file: cannot read \"" + dir_ + "/missing.crt\": No such file"),
            std::string::npos)
      << e;
  e = create_error(job(1, ca(pki_.server_key)));
  EXPECT_NE(e.find("tls.ca_file: \"" + pki_.server_key + "\" is not a PEM CA bundle"),
            std::string::npos)
      << e;
  e = create_error(job(1, "cert_file = \"" + pki_.client_cert + "\""));
  EXPECT_NE(e.find("tls.cert_file and tls.key_file must be set together"), std::string::npos) << e;
  e = create_error(job(1, "cert_file = \"" + pki_.client_cert + "\", key_file = \"" +
                              pki_.server_key + "\""));
  EXPECT_NE(e.find("tls.key_file: \"" + pki_.server_key + "\" does not belong to the certificate"),
            std::string::npos)
      << e;
  e = create_error(job(1, "verify = false"));
  EXPECT_NE(e.find("verify"), std::string::npos) << e;
  e = create_error(job(1, "", "bearer_token = \"a\"\nbasic_auth = { username = \"u\" }\n"));
  EXPECT_NE(e.find("set basic_auth or a bearer token, not both"), std::string::npos) << e;
  e = create_error(job(1, "", "bearer_token = \"a\"\nbearer_token_file = \"/x\"\n"));
  EXPECT_NE(e.find("set bearer_token or bearer_token_file, not both"), std::string::npos) << e;
  e = create_error("targets = [\"127.0.0.1:1\"]\nscheme = \"ftp\"\n");
  EXPECT_NE(e.find("scheme"), std::string::npos) << e;
}

TEST(ScrapeAuth, BearerTokenAndTokenFile) {
  std::mutex mu;
  std::string last_auth;
  peer::Server target([&](const peer::Request& r) {
    std::lock_guard lock(mu);
    last_auth = r.headers.count("authorization") ? r.headers.at("authorization") : "";
    peer::Response out;
    out.status = 200;
    out.body = "x 1\n";
    return out;
  });
  std::string addr = "127.0.0.1:" + std::to_string(target.port());
  auto h = load("targets = [\"" + addr + "\"]\nbearer_token = \"abc\"\n");
  ASSERT_TRUE(h);
  ASSERT_TRUE(h->collect(now_ms()).ok());
  EXPECT_EQ(last_auth, "Bearer abc");
  std::string dir = peer::temp_dir("moni-scrape-bearer-");
  std::ofstream(dir + "/token") << "from-file\n";
  auto f = load("interval = \"1s\"\ntargets = [\"" + addr + "\"]\nbearer_token_file = \"" + dir + "/token\"\n");
  ASSERT_TRUE(f);
  ASSERT_TRUE(f->collect(now_ms()).ok());
  EXPECT_EQ(last_auth, "Bearer from-file");
  // Re-read every scrape: a rotated token needs no reload.
  std::ofstream(dir + "/token") << "rotated\n";
  ASSERT_TRUE(f->collect(now_ms() + 2000).ok());
  EXPECT_EQ(last_auth, "Bearer rotated");
  std::filesystem::remove_all(dir);
}
