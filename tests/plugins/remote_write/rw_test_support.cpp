#include "rw_test_support.hpp"

#include <signal.h>
#include <snappy.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/streambuf.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <istream>
#include <list>
#include <sstream>

namespace rwtest {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

static int64_t steady_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

uint16_t free_port() {
  asio::io_context ioc;
  tcp::acceptor a(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return a.local_endpoint().port();
}

std::pair<int, std::string> http_get(uint16_t port, const std::string& target) {
  try {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    std::string req = "GET " + target + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    asio::write(s, asio::buffer(req));
    std::string resp;
    boost::system::error_code ec;
    char buf[65536];
    for (;;) {
      size_t n = s.read_some(asio::buffer(buf), ec);
      resp.append(buf, n);
      if (ec) break;
    }
    if (resp.size() < 12) return {0, ""};
    int status = std::stoi(resp.substr(9, 3));
    size_t hdr_end = resp.find("\r\n\r\n");
    return {status, hdr_end == std::string::npos ? "" : resp.substr(hdr_end + 4)};
  } catch (const std::exception&) {
    return {0, ""};
  }
}

bool wait_for(const std::function<bool()>& pred, int64_t timeout_ms) {
  int64_t end = steady_ms() + timeout_ms;
  while (steady_ms() < end) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

std::string url_encode(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

size_t Request::samples() const {
  size_t n = 0;
  for (const auto& ts : write.timeseries()) n += static_cast<size_t>(ts.samples_size());
  return n;
}

// ------------------------------------------------------------ FakeReceiver

struct FakeReceiver::Impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread accept_thread;
  mutable std::mutex mu;
  Policy policy;
  std::vector<Request> requests;
  std::vector<bool> ok;
  std::vector<int64_t> arrivals;
  std::list<std::shared_ptr<tcp::socket>> sockets;
  std::list<std::thread> conns;
  std::atomic<bool> stopping{false};

  void serve(std::shared_ptr<tcp::socket> s) {
    asio::streambuf buf;
    boost::system::error_code ec;
    while (!stopping) {
      size_t n = asio::read_until(*s, buf, "\r\n\r\n", ec);
      if (ec) return;
      std::string head(asio::buffers_begin(buf.data()),
                       asio::buffers_begin(buf.data()) + static_cast<std::ptrdiff_t>(n));
      buf.consume(n);
      Request r;
      std::istringstream in(head);
      std::string line;
      std::getline(in, line);
      {
        std::istringstream rl(line);
        rl >> r.method >> r.target;
      }
      size_t len = 0;
      while (std::getline(in, line) && line != "\r") {
        size_t c = line.find(':');
        if (c == std::string::npos) continue;
        std::string k = line.substr(0, c), v = line.substr(c + 1);
        for (auto& ch : k) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        while (!v.empty() && (v.front() == ' ')) v.erase(0, 1);
        while (!v.empty() && (v.back() == '\r' || v.back() == ' ')) v.pop_back();
        r.headers[k] = v;
        if (k == "content-length") len = std::stoul(v);
      }
      if (buf.size() < len) asio::read(*s, buf, asio::transfer_exactly(len - buf.size()), ec);
      if (ec) return;
      r.raw_body.assign(asio::buffers_begin(buf.data()),
                        asio::buffers_begin(buf.data()) + static_cast<std::ptrdiff_t>(len));
      buf.consume(len);
      std::string plain;
      if (snappy::Uncompress(r.raw_body.data(), r.raw_body.size(), &plain))
        r.decoded = r.write.ParseFromString(plain);

      size_t index;
      Policy p;
      {
        std::lock_guard l(mu);
        index = requests.size();
        requests.push_back(r);
        ok.push_back(false);
        arrivals.push_back(steady_ms());
        p = policy;
      }
      Answer a = p ? p(r, index) : Answer{};
      if (a.delay_ms) {
        int64_t end = steady_ms() + a.delay_ms;
        while (!stopping && steady_ms() < end)
          std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (a.reset) {
        s->set_option(asio::socket_base::linger(true, 0), ec);
        s->close(ec);
        return;
      }
      {
        std::lock_guard l(mu);
        ok[index] = a.status >= 200 && a.status < 300;
      }
      std::string body = a.body            ? *a.body
                         : a.status >= 300 ? "fake receiver says " + std::to_string(a.status) + "\n"
                                           : "";
      std::string resp = "HTTP/1.1 " + std::to_string(a.status) +
                         " X\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
      if (!a.retry_after.empty()) resp += "Retry-After: " + a.retry_after + "\r\n";
      resp += "\r\n" + body;
      asio::write(*s, asio::buffer(resp), ec);
      if (ec) return;
    }
  }
};

FakeReceiver::FakeReceiver() : impl_(std::make_unique<Impl>()) {
  Impl& im = *impl_;
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  im.acceptor.open(ep.protocol());
  im.acceptor.set_option(tcp::acceptor::reuse_address(true));
  im.acceptor.bind(ep);
  im.acceptor.listen();
  port_ = im.acceptor.local_endpoint().port();
  im.accept_thread = std::thread([&im] {
    for (;;) {
      auto s = std::make_shared<tcp::socket>(im.ioc);
      boost::system::error_code ec;
      im.acceptor.accept(*s, ec);
      if (ec || im.stopping) return;
      std::lock_guard l(im.mu);
      im.sockets.push_back(s);
      im.conns.emplace_back([&im, s] { im.serve(s); });
    }
  });
}

FakeReceiver::~FakeReceiver() {
  Impl& im = *impl_;
  im.stopping = true;
  boost::system::error_code ec;
  // Wake the blocking accept with a connection of our own.
  try {
    asio::io_context ioc;
    tcp::socket s(ioc);
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port_), ec);
  } catch (...) {
  }
  im.accept_thread.join();
  im.acceptor.close(ec);
  {
    std::lock_guard l(im.mu);
    for (auto& s : im.sockets) {
      s->shutdown(tcp::socket::shutdown_both, ec);
    }
  }
  for (auto& t : im.conns) t.join();
}

std::string FakeReceiver::url(const std::string& path) const {
  return "http://127.0.0.1:" + std::to_string(port_) + path;
}

void FakeReceiver::set_policy(Policy p) {
  std::lock_guard l(impl_->mu);
  impl_->policy = std::move(p);
}

std::vector<Request> FakeReceiver::requests() const {
  std::lock_guard l(impl_->mu);
  return impl_->requests;
}

std::vector<Request> FakeReceiver::accepted() const {
  std::lock_guard l(impl_->mu);
  std::vector<Request> out;
  for (size_t i = 0; i < impl_->requests.size(); ++i)
    if (impl_->ok[i]) out.push_back(impl_->requests[i]);
  return out;
}

size_t FakeReceiver::accepted_samples() const {
  size_t n = 0;
  for (const auto& r : accepted()) n += r.samples();
  return n;
}

std::vector<int64_t> FakeReceiver::arrivals() const {
  std::lock_guard l(impl_->mu);
  return impl_->arrivals;
}

// -------------------------------------------------------------- Prometheus

bool Prometheus::start(int64_t timeout_ms) {
  std::filesystem::create_directories(dir_);
  std::string cfg = dir_ + "/../prometheus-" + std::to_string(port_) + ".yml";
  {
    std::ofstream f(cfg);
    f << config_;
  }
  std::string log = dir_ + "/../prometheus-" + std::to_string(port_) + ".log";
  pid_ = fork();
  if (pid_ == 0) {
    FILE* out = freopen(log.c_str(), "a", stdout);
    FILE* err = freopen(log.c_str(), "a", stderr);
    (void)out;
    (void)err;
    std::string a1 = "--config.file=" + cfg, a2 = "--storage.tsdb.path=" + dir_,
                a3 = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
    execl("/usr/bin/prometheus", "prometheus", a1.c_str(), a2.c_str(), a3.c_str(),
          "--web.enable-remote-write-receiver", "--log.level=warn", (char*)nullptr);
    _exit(127);
  }
  return wait_for([&] { return http_get(port_, "/-/ready").first == 200; }, timeout_ms);
}

void Prometheus::stop() {
  if (pid_ <= 0) return;
  kill(pid_, SIGTERM);
  int64_t end = steady_ms() + 10000;
  int status;
  while (waitpid(pid_, &status, WNOHANG) == 0) {
    if (steady_ms() > end) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pid_ = -1;
}

std::string Prometheus::write_url() const {
  return "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/write";
}

std::string Prometheus::query(const std::string& expr, int64_t time_ms) const {
  char t[64];
  snprintf(t, sizeof t, "%.3f", static_cast<double>(time_ms) / 1000.0);
  return http_get(port_, "/api/v1/query?query=" + url_encode(expr) + "&time=" + t).second;
}

}  // namespace rwtest
