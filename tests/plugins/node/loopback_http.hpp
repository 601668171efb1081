// Minimal HTTP/1.0 GET over 127.0.0.1 and free-port lookup for tests.
#pragma once

#include <string>

namespace moni::node_test {

/// A TCP port on 127.0.0.1 that was free a moment ago.
int free_loopback_port();

/// GET http://127.0.0.1:<port><path>; returns false when the connection or
/// the response fails. `body` receives the body of a 200 response.
bool http_get(int port, const std::string& path, std::string& body, std::string& error);

}  // namespace moni::node_test
