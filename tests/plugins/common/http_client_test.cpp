// moni_http_client without a peer: URLs, basic auth, and a server that
// accepts connections but never answers (the request's deadline and abort()
// end the request; the cancelled operations finish before the client goes).
#include "http_client/http_client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

namespace {

using namespace moni::http_client;
using Clock = std::chrono::steady_clock;

TEST(HttpClientUrl, ParsesAndRejects) {
  auto u = parse_url("https://[::1]:9443/api/v1/write?x=1");
  ASSERT_TRUE(u) << u.error().message;
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "9443");
  EXPECT_EQ(u->target, "/api/v1/write?x=1");
  u = parse_url("http://grafana.example");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(u->target, "/");
  for (auto [url, why] : std::initializer_list<std::pair<const char*, const char*>>{
           {"ftp://x", "must start with http:// or https://"},
           {"http://", "has no host"},
           {"http://:80/", "has no host"},
           {"http://u:p@h/", "must not contain credentials"},
           {"http://h:8o/", "bad port"},
           {"http://[::1/", "bad IPv6 host"}}) {
    auto r = parse_url(url);
    ASSERT_FALSE(r) << url;
    EXPECT_NE(r.error().message.find(why), std::string::npos) << r.error().message;
    EXPECT_NE(r.error().message.find(std::string("\"") + url + "\""), std::string::npos);
  }
}

TEST(HttpClientAuth, BasicAuthIsBase64OfUserColonPassword) {
  EXPECT_EQ(basic_auth("Aladdin", "open sesame"), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  EXPECT_EQ(basic_auth("a", "b"), "Basic YTpi");
  EXPECT_EQ(basic_auth("ab", "c"), "Basic YWI6Yw==");
}

TEST(HttpClientTls, MissingCaFileIsNamed) {
  auto u = parse_url("https://127.0.0.1:1/");
  ASSERT_TRUE(u);
  TlsOptions tls;
  tls.ca_file = "/nonexistent/ca.pem";
  auto c = HttpClient::create(*u, tls, {});
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message.find("TLS setup for 127.0.0.1"), std::string::npos)
      << c.error().message;
  EXPECT_NE(c.error().message.find("/nonexistent/ca.pem"), std::string::npos);
}

// A listening socket nobody accepts on: connections complete (backlog), no
// answer ever comes.
struct SilentServer {
  int fd = -1;
  int port = 0;
  SilentServer() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd, 16) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
      port = ntohs(a.sin_port);
  }
  ~SilentServer() { ::close(fd); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port) + "/x"; }
};

TEST(HttpClientDeadline, OneDeadlinePerRequest) {
  SilentServer s;
  ASSERT_NE(s.port, 0);
  ClientOptions o;
  o.timeout_ms = 300;
  auto c = HttpClient::create(*parse_url(s.url()), {}, o);
  ASSERT_TRUE(c) << c.error().message;
  for (int i = 0; i < 2; ++i) {  // the second request starts over on a new connection
    auto t0 = Clock::now();
    HttpReply r = (*c)->post("body", {{"Content-Type", "text/plain"}});
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
    EXPECT_EQ(r.status, 0u);
    EXPECT_FALSE(r.error.empty());
    EXPECT_GE(ms, 250);
    EXPECT_LT(ms, 5000);
  }
}

TEST(HttpClientAbort, EndsTheRequestUnderWayAndLaterOnes) {
  SilentServer s;
  ASSERT_NE(s.port, 0);
  ClientOptions o;
  o.timeout_ms = 30'000;
  auto c = HttpClient::create(*parse_url(s.url()), {}, o);
  ASSERT_TRUE(c) << c.error().message;
  HttpClient& client = **c;
  auto t0 = Clock::now();
  std::thread aborter([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    client.abort();
  });
  HttpReply r = client.request("GET", "/y", {}, {});
  aborter.join();
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t0).count();
  EXPECT_EQ(r.status, 0u);
  EXPECT_LT(ms, 10'000) << "abort() did not end the request";
  r = client.post("again", {});
  EXPECT_EQ(r.status, 0u);
  EXPECT_FALSE(r.error.empty());
}

}  // namespace
