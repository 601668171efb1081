#include "listen_address.hpp"

#include <arpa/inet.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

namespace moni::grafana {
namespace {

// Socket inodes of the process's open descriptors ("socket:[12345]").
std::set<std::string> socket_inodes(const std::string& procfs) {
  std::set<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(procfs + "/self/fd", ec)) {
    std::error_code lec;
    std::string target = std::filesystem::read_symlink(e.path(), lec).string();
    if (!lec && target.rfind("socket:[", 0) == 0 && target.back() == ']')
      out.insert(target.substr(8, target.size() - 9));
  }
  return out;
}

// A /proc/net/tcp address ("0100007F:2383", or 32 hex digits for v6: the
// address as host-order 32-bit words) as a URL host:port.
std::optional<std::string> decode(const std::string& hexaddr, bool v6) {
  size_t colon = hexaddr.find(':');
  if (colon == std::string::npos) return std::nullopt;
  unsigned port = std::stoul(hexaddr.substr(colon + 1), nullptr, 16);
  std::string a = hexaddr.substr(0, colon);
  char buf[INET6_ADDRSTRLEN] = {};
  if (!v6) {
    if (a.size() != 8) return std::nullopt;
    in_addr in{};
    in.s_addr = static_cast<uint32_t>(std::stoul(a, nullptr, 16));
    if (in.s_addr == 0) return "127.0.0.1:" + std::to_string(port);
    inet_ntop(AF_INET, &in, buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port);
  }
  if (a.size() != 32) return std::nullopt;
  in6_addr in6{};
  for (int w = 0; w < 4; ++w) {
    uint32_t word = static_cast<uint32_t>(std::stoul(a.substr(w * 8, 8), nullptr, 16));
    std::memcpy(&in6.s6_addr[w * 4], &word, 4);
  }
  static const in6_addr any = IN6ADDR_ANY_INIT;
  if (std::memcmp(&in6, &any, sizeof in6) == 0) return "127.0.0.1:" + std::to_string(port);
  if (IN6_IS_ADDR_V4MAPPED(&in6)) {
    inet_ntop(AF_INET, &in6.s6_addr[12], buf, sizeof buf);
    return std::string(buf) + ":" + std::to_string(port);
  }
  inet_ntop(AF_INET6, &in6, buf, sizeof buf);
  return "[" + std::string(buf) + "]:" + std::to_string(port);
}

}  // namespace

std::optional<std::string> url_from_listen_urls(const std::vector<std::string>& urls) {
  if (urls.empty()) return std::nullopt;
  const std::string& u = urls.front();
  size_t scheme = u.find("://");
  if (scheme == std::string::npos) return std::nullopt;
  size_t host = scheme + 3;
  size_t port = u.rfind(':');
  if (port == std::string::npos || port < host) return std::nullopt;
  std::string h = u.substr(host, port - host);
  if (h.empty() || h == "0.0.0.0" || h == "[::]" || h == "*")
    return u.substr(0, host) + "127.0.0.1" + u.substr(port);
  return u;
}

std::optional<std::string> own_listen_url(const std::string& procfs) {
  const auto inodes = socket_inodes(procfs);
  std::set<std::string> found;
  for (bool v6 : {false, true}) {
    std::ifstream f(procfs + "/self/net/" + (v6 ? "tcp6" : "tcp"));
    std::string line;
    std::getline(f, line);  // header
    while (std::getline(f, line)) {
      std::istringstream ss(line);
      std::string sl, local, remote, state, queues, tr, retr, uid, timeout, inode;
      if (!(ss >> sl >> local >> remote >> state >> queues >> tr >> retr >> uid >> timeout >>
            inode))
        continue;
      if (state != "0A" || !inodes.count(inode)) continue;  // 0A: LISTEN
      try {
        if (auto hp = decode(local, v6)) found.insert(*hp);
      } catch (const std::exception&) {
      }
    }
  }
  if (found.size() != 1) return std::nullopt;
  return "http://" + *found.begin();
}

}  // namespace moni::grafana
