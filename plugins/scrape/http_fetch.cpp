#include "http_fetch.hpp"

#include "tls_client.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <utility>  // before Asio: boost 1.74 awaitable.hpp misses it

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/asio/ssl/context.hpp>

#include <chrono>
#include <limits>
#include <memory>

namespace moni::scrape {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using TlsStream = beast::ssl_stream<beast::tcp_stream>;

// Why a handshake failed, in the operator's terms.
std::string handshake_error(SSL* ssl, beast::error_code ec, const std::string& name) {
  long v = ssl ? SSL_get_verify_result(ssl) : X509_V_OK;
  if (v != X509_V_OK) {
    std::string msg = std::string("TLS handshake: certificate verify failed: ") +
                      X509_verify_cert_error_string(v);
    if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
      msg += " (the target's certificate is not valid for \"" + name +
             "\"; set tls.server_name or fix the certificate's subjectAltName)";
    else if (v == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY ||
             v == X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN || v == X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT ||
             v == X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE)
      msg += " (is tls.ca_file the CA that signed the target's certificate?)";
    return msg;
  }
  std::string msg = "TLS handshake: " + ec.message();
  if (ec.category() == asio::error::get_ssl_category() &&
      ERR_GET_REASON(static_cast<unsigned int>(ec.value())) == SSL_R_WRONG_VERSION_NUMBER)
    msg += " (is the target serving plain HTTP? use scheme = \"http\")";
  else if (ec == asio::ssl::error::stream_truncated || ec == asio::error::eof)
    msg += " (the target closed the connection: is the target serving plain HTTP? does it "
           "require a client certificate, tls.cert_file?)";
  return msg;
}

// One request's state machine: resolve -> connect -> write -> read.
struct Fetch : std::enable_shared_from_this<Fetch> {
  Fetch(asio::io_context& io, const FetchRequest& rq, FetchResult& out,
        std::function<void()> on_done)
      : req(rq), res(out), on_done(std::move(on_done)), resolver(io), stream(io), timer(io) {}

  const FetchRequest& req;
  FetchResult& res;  // not touched after done(): the caller may then hand it on
  std::function<void()> on_done;
  tcp::resolver resolver;
  beast::tcp_stream stream;
  std::unique_ptr<asio::ssl::context> ssl_ctx;
  std::unique_ptr<TlsStream> tls;
  asio::steady_timer timer;
  beast::flat_buffer buf;
  http::request<http::empty_body> hreq;
  std::unique_ptr<http::response_parser<http::string_body>> parser;
  bool timed_out = false;
  bool finished = false;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();

  void start() {
    auto self = shared_from_this();
    timer.expires_after(req.timeout);
    timer.async_wait([self](beast::error_code ec) {
      if (ec || self->finished) return;
      self->timed_out = true;
      beast::error_code ignored;
      self->resolver.cancel();
      self->lowest().socket().close(ignored);
    });
    resolver.async_resolve(req.host, req.port,
                           [self](beast::error_code ec, tcp::resolver::results_type r) {
                             if (ec) return self->fail("resolving " + self->req.host, ec);
                             self->lowest().async_connect(r, [self](beast::error_code ec2,
                                                                 const tcp::endpoint&) {
                               if (ec2) return self->fail("connecting", ec2);
                               if (self->tls) return self->handshake();
                               self->write(self->stream);
                             });
                           });
  }
  beast::tcp_stream& lowest() { return tls ? beast::get_lowest_layer(*tls) : stream; }

  // Called before start(): the TLS stream, SNI and the name to verify.
  bool setup_tls(asio::io_context& io) {
    SSL_CTX* native = req.tls->native();
    SSL_CTX_up_ref(native);  // asio's context takes ownership of one reference
    ssl_ctx = std::make_unique<asio::ssl::context>(native);
    tls = std::make_unique<TlsStream>(io, *ssl_ctx);
    SSL* ssl = tls->native_handle();
    const auto& o = req.tls->options();
    const std::string& name = o.server_name.empty() ? req.host : o.server_name;
    beast::error_code ec;
    (void)asio::ip::make_address(name, ec);
    bool is_ip = !ec;
    // No SNI for an IP address (RFC 6066); the certificate must then carry an IP SAN.
    if (!is_ip && SSL_set_tlsext_host_name(ssl, name.c_str()) != 1) return false;
    if (!o.insecure_skip_verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) != 1
                : X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size()) != 1)
        return false;
    }
    return true;
  }

  void handshake() {
    auto self = shared_from_this();
    tls->async_handshake(asio::ssl::stream_base::client, [self](beast::error_code ec) {
      if (ec) {
        if (self->timed_out) return self->fail("TLS handshake", ec);
        const auto& o = self->req.tls->options();
        return self->fail_msg(handshake_error(self->tls->native_handle(), ec,
                                              o.server_name.empty() ? self->req.host : o.server_name));
      }
      self->write(*self->tls);
    });
  }

  template <class Stream>
  void write(Stream& s) {
    auto self = shared_from_this();
    hreq = {http::verb::get, req.target, 11};
    hreq.set(http::field::host, req.host + ":" + req.port);
    for (const auto& [k, v] : req.headers) hreq.set(k, v);
    http::async_write(s, hreq, [self, &s](beast::error_code ec, size_t) {
      if (ec) return self->fail("sending the request", ec);
      self->read(s);
    });
  }
  template <class Stream>
  void read(Stream& s) {
    auto self = shared_from_this();
    parser = std::make_unique<http::response_parser<http::string_body>>();
    parser->body_limit(req.body_limit ? req.body_limit : std::numeric_limits<uint64_t>::max());
    parser->header_limit(64 * 1024);
    http::async_read(s, buf, *parser, [self](beast::error_code ec, size_t) {
      if (ec == http::error::body_limit)
        return self->fail_msg("body larger than body_size_limit (" +
                              std::to_string(self->req.body_limit) + " bytes)");
      if (ec) return self->fail("reading the response", ec);
      auto& m = self->parser->get();
      self->res.ok = true;
      self->res.status = m.result_int();
      self->res.content_type = std::string(m[http::field::content_type]);
      self->res.content_encoding = std::string(m[http::field::content_encoding]);
      self->res.body = std::move(m.body());
      self->done();
    });
  }
  void fail(const std::string& what, beast::error_code ec) {
    if (timed_out)
      fail_msg("timeout after " + std::to_string(req.timeout.count()) + "ms (" + what + ")");
    else
      fail_msg(what + ": " + ec.message());
  }
  void fail_msg(std::string msg) {
    res.ok = false;
    res.error = std::move(msg);
    done();
  }
  void done() {
    finished = true;
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    timer.cancel();
    // No TLS close_notify: the response is complete, and waiting for the
    // peer's reply would only delay the cycle.
    beast::error_code ignored;
    lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    lowest().socket().close(ignored);
    if (on_done) on_done();
  }
};

}  // namespace

std::vector<FetchResult> fetch_all(const std::vector<FetchRequest>& requests) {
  std::vector<FetchResult> out;
  fetch_each(requests, out, {});
  return out;
}

void fetch_each(const std::vector<FetchRequest>& requests, std::vector<FetchResult>& out,
                const std::function<void(size_t)>& on_done) {
  out.assign(requests.size(), FetchResult{});
  std::vector<char> reported(requests.size(), 0);
  auto report = [&](size_t i) {
    reported[i] = 1;
    if (on_done) on_done(i);
  };
  try {
    asio::io_context io;
    for (size_t i = 0; i < requests.size(); ++i) {
      if (!requests[i].setup_error.empty()) {
        out[i].error = requests[i].setup_error;
        report(i);
        continue;
      }
      auto f = std::make_shared<Fetch>(io, requests[i], out[i], [&report, i] { report(i); });
      if (requests[i].tls && !f->setup_tls(io)) {
        out[i].error = "TLS setup for " + requests[i].host + ": " + openssl_errors();
        report(i);
        continue;
      }
      f->start();
    }
    io.run();
  } catch (const std::exception& e) {
    // Only the requests not reported yet: the others may be in use elsewhere.
    for (size_t i = 0; i < out.size(); ++i)
      if (!reported[i] && !out[i].ok && out[i].error.empty())
        out[i].error = std::string("http client: ") + e.what();
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (!reported[i]) report(i);
}

}  // namespace moni::scrape
