// Loads the host's TLS module (moni-host-tls.so) on first use: only a
// config with [host.web.tls] maps OpenSSL into the process.
#include <dlfcn.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>

#include "tls_server_context.hpp"

namespace moni::host {
namespace {

// Next to the plugin directory, found from the executable like the plugins
// (MONI_HOST_TLS_MODULE overrides it, for tests of a missing module).
std::string module_path() {
  if (const char* p = std::getenv("MONI_HOST_TLS_MODULE"); p && *p) return p;
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return MONI_HOST_TLS_FILE;
  return (exe.parent_path() / MONI_HOST_TLS_REL_PATH).lexically_normal().string();
}

// Never unloaded: contexts, connections and their threads come from it.
const TlsModuleApi* module_api(std::string& err) {
  static std::mutex mu;
  static const TlsModuleApi* api = nullptr;
  std::lock_guard lock(mu);
  if (api) return api;
  std::string path = module_path();
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* why = ::dlerror();
    err = "TLS support is not available: cannot load " + path + ": " + (why ? why : "unknown") +
          " (it is part of moni's package; is the installation complete?)";
    return nullptr;
  }
  using Entry = const TlsModuleApi* (*)();
  auto entry = reinterpret_cast<Entry>(::dlsym(h, "moni_host_tls_module"));
  const TlsModuleApi* a = entry ? entry() : nullptr;
  if (!a || std::string(a->build_id) != MONI_HOST_TLS_BUILD_ID) {
    err = "TLS support is not available: " + path + " is not the TLS module of this moni (" +
          (a ? std::string("built for ") + a->build_id : std::string("no entry point")) +
          ", this moni is " MONI_HOST_TLS_BUILD_ID ")";
    ::dlclose(h);
    return nullptr;
  }
  api = a;
  return api;
}

}  // namespace

std::shared_ptr<const TlsServerContext> TlsServerContext::load(const TlsServerOptions& opts,
                                                               Error& err) {
  std::string why;
  const TlsModuleApi* api = module_api(why);
  if (!api) {
    err = {"cert_file", why};
    return nullptr;
  }
  return api->load(opts, err);
}

std::unique_ptr<TlsConnections> TlsConnections::create(std::string& err) {
  const TlsModuleApi* api = module_api(err);
  return api ? api->connections() : nullptr;
}

}  // namespace moni::host
