// One HTTP/1.1 connection over Beast, shared by the host's plain HTTP server
// (http_server.cpp) and the TLS module (tls/tls_server.cpp). Each of the two
// compiles its own copy; only HttpHandler's plain types cross between them.
// Include in as few .cpp files as possible: Beast is slow to compile.
#pragma once

#include <algorithm>
#include <array>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <chrono>
#include <memory>
#include <moni/http.hpp>
#include <optional>
#include <string>
#include <vector>

#include "http_handler.hpp"

namespace moni::host::http_session {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

// The request in the ABI's plain form, the host's handler, and the Beast
// response. Runs on a worker, or on the network thread for fast routes.
inline std::shared_ptr<Response> respond(const HttpHandler& h, const Request& req,
                                         const std::string& remote) {
  std::string target(req.target());
  size_t q = target.find('?');
  std::string raw_path = target.substr(0, q);
  std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  std::string path = url_decode(raw_path, false).value_or(raw_path);
  std::string method(req.method_string());
  std::vector<std::string> hstore;
  hstore.reserve(std::distance(req.begin(), req.end()) * 2);
  std::vector<moni_label> headers;
  for (const auto& f : req) {
    std::string n(f.name_string());
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    hstore.push_back(std::move(n));
    hstore.emplace_back(f.value());
  }
  headers.reserve(hstore.size() / 2);
  for (size_t i = 0; i < hstore.size(); i += 2)
    headers.push_back({ms(hstore[i]), ms(hstore[i + 1])});
  moni_http_request mreq{ms(method),     ms(target),     ms(path),       ms(query),
                         headers.data(), headers.size(), ms(req.body()), ms(remote)};
  HttpResponseData data;
  h.handle(mreq, data);
  auto res = std::make_shared<Response>();
  res->version(req.version());
  res->keep_alive(req.keep_alive());
  res->result(static_cast<unsigned>(data.status));
  bool has_type = false;
  for (auto& [k, v] : data.headers) {
    has_type = has_type || beast::iequals(k, "content-type");
    res->set(k, v);
  }
  if (!has_type) res->set(http::field::content_type, "text/plain; charset=utf-8");
  size_t body_size = data.body.size();
  if (req.method() != http::verb::head) res->body() = std::move(data.body);
  res->prepare_payload();
  if (req.method() == http::verb::head) res->content_length(body_size);
  return res;
}

/// A connection: (TLS handshake), then read a request, answer it, repeat
/// while keep-alive. `Traits` supplies what differs between plain TCP and
/// TLS: kTls, handshake(stream, buffer, ms, done), close(stream, keep),
/// expire(stream, duration) (the deadline of the I/O from now on: the
/// connection is closed when it passes) and, for plain TCP,
/// shutdown_send(stream, ec).
/// Thread-safety: all I/O on the stream's executor; the handler may run on
/// a worker in between, when no I/O is pending.
template <class Stream, class Traits>
class Session : public std::enable_shared_from_this<Session<Stream, Traits>> {
 public:
  Session(Stream s, std::shared_ptr<const HttpHandler> h, std::shared_ptr<const void> keep,
          beast::flat_buffer buf, std::string remote, int64_t handshake_ms)
      : stream_(std::move(s)),
        handler_(std::move(h)),
        keep_(std::move(keep)),
        buffer_(std::move(buf)),
        remote_(std::move(remote)),
        handshake_ms_(handshake_ms) {}
  void start() {
    if constexpr (Traits::kTls)
      handshake();
    else
      read();
  }

 private:
  template <class Rep, class Period>
  void expires_after(std::chrono::duration<Rep, Period> d) {
    Traits::expire(stream_, d);
  }

  void handshake() {
    // Bounded, so a client that connects and sends nothing (or trickles)
    // cannot hold a connection.
    expires_after(std::chrono::milliseconds(handshake_ms_));
    Traits::handshake(stream_, buffer_,
                      [self = this->shared_from_this()](beast::error_code ec, size_t used) {
                        if (ec) {
                          self->handler_->log_debug("TLS handshake with " + self->remote_ +
                                                    " failed: " + ec.message());
                          return;  // the socket closes with the session
                        }
                        self->buffer_.consume(used);
                        self->read();
                      });
  }

  void read() {
    parser_.emplace();
    parser_->body_limit(64u << 20);
    expires_after(std::chrono::seconds(120));
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       if (ec) return self->fail(ec);
                       self->dispatch();
                     });
  }

  // A request that cannot be parsed gets its status before the connection
  // closes, as mature servers answer (Go's net/http: 400, 431); a client
  // that went away or timed out gets nothing.
  void fail(beast::error_code ec) {
    unsigned status = error_status(ec);
    if (status == 0) return close();
    handler_->log_debug("bad request from " + remote_ + ": " + ec.message() + "; answered " +
                        std::to_string(status));
    auto res = std::make_shared<Response>(static_cast<http::status>(status), 11);
    res->set(http::field::content_type, "text/plain; charset=utf-8");
    res->set(http::field::connection, "close");
    res->body() = std::to_string(status) + " " + std::string(http::obsolete_reason(res->result())) +
                  "\n";
    res->keep_alive(false);
    res->prepare_payload();
    expires_after(std::chrono::seconds(5));
    http::async_write(stream_, *res, [self = this->shared_from_this(), res](beast::error_code e, size_t) {
      if (e) return self->close();
      self->linger();
    });
  }

  /// The status answering a read error, 0 for none (the peer closed or
  /// timed out, or the error is not the request's).
  static unsigned error_status(beast::error_code ec) {
    if (ec.category() != http::make_error_code(http::error::end_of_stream).category()) return 0;
    switch (static_cast<http::error>(ec.value())) {
      case http::error::end_of_stream:
      case http::error::partial_message: return 0;
      case http::error::header_limit:
      case http::error::buffer_overflow: return 431;
      case http::error::body_limit: return 413;
      default: return 400;
    }
  }

  // After an error answer: the client may still be sending the rest of its
  // request; closing with unread bytes would reset the connection and could
  // destroy the answer before the client reads it. So half-close, then read
  // and discard for a bounded time and size (as Go's closeWriteAndWait).
  void linger() {
    if constexpr (Traits::kTls) {
      return close();
    } else {
      beast::error_code ec;
      Traits::shutdown_send(stream_, ec);
      if (ec) return;
      expires_after(std::chrono::milliseconds(500));
      discard(0);
    }
  }
  void discard(size_t total) {
    if (total > (1u << 20)) return;  // the session and its socket end here
    auto buf = std::make_shared<std::array<char, 4096>>();
    stream_.async_read_some(net::buffer(*buf), [self = this->shared_from_this(), buf, total](
                                                    beast::error_code ec, size_t n) {
      if (!ec) self->discard(total + n);
    });
  }

  void dispatch() {
    auto req = std::make_shared<Request>(parser_->release());
    std::string_view target(req->target().data(), req->target().size());
    if (handler_->runs_inline && handler_->runs_inline(target.substr(0, target.find('?')))) {
      // A route that has always answered fast: no hop to a worker and back.
      return write(respond(*handler_, *req, remote_));
    }
    // Handlers may block (storage queries): never on the network thread.
    handler_->workers([self = this->shared_from_this(), req] {
      auto res = respond(*self->handler_, *req, self->remote_);
      net::post(self->stream_.get_executor(), [self, res] { self->write(res); });
    });
  }

  void write(std::shared_ptr<Response> res) {
    http::async_write(stream_, *res,
                      [self = this->shared_from_this(), res](beast::error_code ec, size_t) {
                        if (ec || !res->keep_alive()) return self->close();
                        self->read();
                      });
  }

  void close() { Traits::close(stream_, this->shared_from_this()); }

  Stream stream_;
  std::shared_ptr<const HttpHandler> handler_;
  std::shared_ptr<const void> keep_;  // outlives the stream (the TLS context)
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::string remote_;
  int64_t handshake_ms_;
};

}  // namespace moni::host::http_session
