// moni's own HTTP address, for the data source URL Grafana should use when
// the config names none: the host's listen URL (ABI 1.2's listen_urls) or,
// on an older host, a guess from the process's listening TCP sockets
// (/proc/self/fd and /proc/self/net/tcp{,6}).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace moni::grafana {

/// The first of the host's listen URLs ("scheme://host:port", as
/// Context::listen_urls() gives them) with a wildcard host (0.0.0.0, [::],
/// none) replaced by 127.0.0.1; nullopt when there is none.
std::optional<std::string> url_from_listen_urls(const std::vector<std::string>& urls);

/// "http://<ip>:<port>" of this process's only listening TCP socket (a
/// wildcard address becomes the loopback one), or nullopt when there is
/// none or several. `procfs` is "/proc" outside tests.
std::optional<std::string> own_listen_url(const std::string& procfs = "/proc");

}  // namespace moni::grafana
