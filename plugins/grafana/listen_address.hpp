// moni's own HTTP address, for the data source URL Grafana should use when
// the config names none. The plugin ABI does not pass the host's listen
// address, so it is read from the process's listening TCP sockets
// (/proc/self/fd and /proc/self/net/tcp{,6}).
#pragma once

#include <optional>
#include <string>

namespace moni::grafana {

/// "http://<ip>:<port>" of this process's only listening TCP socket (a
/// wildcard address becomes the loopback one), or nullopt when there is
/// none or several. `procfs` is "/proc" outside tests.
std::optional<std::string> own_listen_url(const std::string& procfs = "/proc");

}  // namespace moni::grafana
