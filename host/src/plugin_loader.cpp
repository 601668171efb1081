#include "plugin_loader.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <boost/dll/shared_library.hpp>
#include <cstddef>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <moni/sample.hpp>

#include "log.hpp"

namespace moni::host {
namespace fs = std::filesystem;

#ifndef MONI_PLUGIN_REL_DIR
#error "MONI_PLUGIN_REL_DIR must be defined by the build"
#endif

std::string_view kind_name(uint32_t kind) {
  switch (kind) {
    case MONI_KIND_COLLECTOR:
      return "collector";
    case MONI_KIND_PROCESSOR:
      return "processor";
    case MONI_KIND_STORAGE:
      return "storage";
    case MONI_KIND_OUTPUT:
      return "output";
    default:
      return "unknown";
  }
}

namespace {

// What a plugin sees while its entry point runs: no instance yet.
void loader_log(void*, uint32_t level, moni_str m) {
  log(static_cast<Level>(std::min<uint32_t>(level, 3)), "plugin loader", sv(m));
}
int loader_route(void*, moni_str, moni_http_handler_fn, void*, moni_error* err) {
  if (err) std::snprintf(err->message, sizeof err->message, "routes are registered in start()");
  return MONI_ERR;
}
void loader_status(moni_http_response*, uint32_t) {}
void loader_header(moni_http_response*, moni_str, moni_str) {}
void loader_body(moni_http_response*, moni_str) {}
const moni_storage_reader* loader_storage(void*, moni_str) { return nullptr; }
int64_t loader_now(void*) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}
int loader_collect_now(void*, int64_t, moni_error* err) {
  std::snprintf(err->message, sizeof err->message, "collect_now is not available while loading");
  return MONI_ERR;
}
int loader_listen_urls(void*, moni_str_fn, void*) { return 0; }
const moni_host_api kLoaderApi = {.struct_size = sizeof(moni_host_api),
                                  .abi_major = MONI_ABI_MAJOR,
                                  .abi_minor = MONI_ABI_MINOR,
                                  .ctx = nullptr,
                                  .instance_name = {"", 0},
                                  .data_dir = {"", 0},
                                  .config = nullptr,
                                  .log = &loader_log,
                                  .http_route = &loader_route,
                                  .http_status = &loader_status,
                                  .http_header = &loader_header,
                                  .http_body = &loader_body,
                                  .storage = &loader_storage,
                                  .now_ms = &loader_now,
                                  .http_route_fallback = &loader_route,
                                  .collect_now = &loader_collect_now,
                                  .listen_urls = &loader_listen_urls};

// A root-run host must not load code that anyone but the owner can replace.
Result<void> check_permissions(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return make_error(path + ": cannot stat: " + std::strerror(errno));
  char mode[8];
  if (st.st_mode & (S_IWGRP | S_IWOTH)) {
    std::snprintf(mode, sizeof mode, "%04o", st.st_mode & 07777);
    return make_error(path + ": refused: the file is writable by group/other (mode " + mode +
                      "); fix with chmod go-w");
  }
  std::error_code ec;
  fs::path dir = fs::canonical(path, ec).parent_path();
  if (ec) return make_error(path + ": cannot resolve: " + ec.message());
  struct stat dst {};
  if (::stat(dir.c_str(), &dst) != 0)
    return make_error(path + ": cannot stat its directory: " + std::strerror(errno));
  if (dst.st_mode & (S_IWGRP | S_IWOTH)) {
    std::snprintf(mode, sizeof mode, "%04o", dst.st_mode & 07777);
    return make_error(path + ": refused: its directory " + dir.string() +
                      " is writable by group/other (mode " + mode + "); fix with chmod go-w");
  }
  return {};
}

Result<void> check_elf(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  if (!f.read(magic, 4) || std::memcmp(magic,
                                       "\x7f"
                                       "ELF",
                                       4) != 0)
    return make_error(path + ": refused: not a shared object (no ELF header)");
  return {};
}

bool is_plugin_file(const fs::path& p) {
  std::string n = p.filename().string();
  return n.starts_with("moni-") && n.ends_with(".so") && n.size() > 8;
}

}  // namespace

Result<std::shared_ptr<LoadedPlugin>> load_plugin(const std::string& path) {
  if (auto r = check_permissions(path); !r) return r.error();
  if (auto r = check_elf(path); !r) return r.error();
  auto lp = std::make_shared<LoadedPlugin>();
  lp->path = path;
  try {
    // RTLD_LOCAL: plugins do not see each other's symbols.
    namespace lm = boost::dll::load_mode;
    lp->library = std::make_shared<boost::dll::shared_library>(boost::dll::fs::path(path),
                                                               lm::rtld_now | lm::rtld_local);
  } catch (const std::exception& e) {
    // Boost.DLL appends dlerror()'s text; that part is what the user needs.
    std::string why = e.what();
    if (auto k = why.find("dlerror system message: "); k != std::string::npos)
      why = why.substr(k + 24, why.rfind(')') > k ? why.rfind(')') - k - 24 : std::string::npos);
    return make_error(path + ": refused: cannot load: " + why);
  }
  if (!lp->library->has(MONI_PLUGIN_ENTRY_SYMBOL))
    return make_error(path + ": refused: no '" MONI_PLUGIN_ENTRY_SYMBOL
                             "' symbol (not a moni plugin, or built without MONI_EXPORT_PLUGIN)");
  auto entry = lp->library->get<const moni_plugin_descriptor*(const moni_host_api*)>(
      MONI_PLUGIN_ENTRY_SYMBOL);
  const moni_plugin_descriptor* d = entry(&kLoaderApi);
  if (!d) return make_error(path + ": refused: " MONI_PLUGIN_ENTRY_SYMBOL " returned NULL");
  // struct_size and the version are the first fields of every ABI version:
  // read them before anything else.
  uint32_t size = d->struct_size;
  if (size < offsetof(moni_plugin_descriptor, name))
    return make_error(path + ": refused: descriptor struct_size " + std::to_string(size) +
                      " is too small");
  if (d->abi_major != MONI_ABI_MAJOR)
    return make_error(path + ": refused: plugin ABI " + std::to_string(d->abi_major) + "." +
                      std::to_string(d->abi_minor) + " is incompatible with this host's ABI " +
                      std::to_string(MONI_ABI_MAJOR) + "." + std::to_string(MONI_ABI_MINOR) +
                      " (major versions differ); rebuild the plugin against this moni SDK");
  constexpr size_t kV1Size = offsetof(moni_plugin_descriptor, command) + sizeof(d->command);
  if (size < kV1Size)
    return make_error(path + ": refused: descriptor struct_size " + std::to_string(size) +
                      " is smaller than ABI " + std::to_string(MONI_ABI_MAJOR) + ".0 requires (" +
                      std::to_string(kV1Size) + ")");
  // Newer minors append fields this host does not know; copy only ours.
  std::memcpy(&lp->desc, d, std::min<size_t>(size, sizeof(moni_plugin_descriptor)));
  const auto& desc = lp->desc;
  lp->name = std::string(sv(desc.name));
  lp->version = std::string(sv(desc.version));
  lp->description = std::string(sv(desc.description));
  lp->sample_config = std::string(sv(desc.sample_config));
  lp->kind = desc.kind;
  if (lp->name.empty()) return make_error(path + ": refused: the plugin has an empty name");
  if (kind_name(desc.kind) == "unknown")
    return make_error(path + ": refused: unknown plugin kind " + std::to_string(desc.kind));
  const char* missing = nullptr;
  if (!desc.create)
    missing = "create";
  else if (!desc.destroy)
    missing = "destroy";
  else if (desc.kind == MONI_KIND_COLLECTOR && !desc.collect)
    missing = "collect";
  else if (desc.kind == MONI_KIND_PROCESSOR && !desc.process)
    missing = "process";
  else if ((desc.kind == MONI_KIND_STORAGE || desc.kind == MONI_KIND_OUTPUT) && !desc.write)
    missing = "write";
  if (missing)
    return make_error(path + ": refused: the descriptor of " + std::string(kind_name(desc.kind)) +
                      " '" + lp->name + "' has no " + missing + " function");
  return lp;
}

std::string builtin_plugin_dir() {
  std::error_code ec;
  fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return {};
  return (exe.parent_path() / MONI_PLUGIN_REL_DIR).lexically_normal().string();
}

void PluginRegistry::scan(const std::vector<std::string>& dirs, const PluginRegistry* previous) {
  std::lock_guard lock(mu_);
  dirs_ = dirs;
  if (previous) {
    std::lock_guard prev_lock(previous->mu_);
    for (const auto& [path, p] : previous->kept_) kept_.emplace(path, p);
    for (const auto& f : previous->files_)
      if (f.plugin) kept_.emplace(f.path, f.plugin);
  }
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      log_debug("plugins", "no plugin directory " + dir);
      continue;
    }
    std::vector<fs::path> paths;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (is_plugin_file(e.path())) paths.push_back(e.path());
    std::sort(paths.begin(), paths.end());
    for (const auto& p : paths) {
      std::string path = p.lexically_normal().string();
      bool seen = false;
      for (const auto& f : files_) seen = seen || f.path == path;
      if (seen) continue;  // the same directory listed twice
      std::string name = p.filename().string();
      File f;
      f.path = path;
      f.stem = name.substr(5, name.size() - 8);
      files_.push_back(std::move(f));
    }
  }
}

bool PluginRegistry::load(File& f) {
  std::shared_ptr<LoadedPlugin> lp;
  if (auto it = kept_.find(f.path); it != kept_.end()) {
    lp = it->second;
  } else {
    auto r = load_plugin(f.path);
    if (!r) {
      f.state = File::kRefused;
      failures_.push_back(r.error().message);
      return false;
    }
    lp = std::move(r.value());
    log_debug("plugins", "loaded " + lp->name + " " + lp->version + " (" +
                             std::string(kind_name(lp->kind)) + ") from " + f.path);
  }
  f.declared = lp->name;
  if (auto it = by_name_.find(lp->name); it != by_name_.end()) {
    f.state = File::kRefused;
    failures_.push_back(f.path + ": refused: duplicate plugin name '" + lp->name +
                        "' (already loaded from " + it->second->path + ")");
    return false;
  }
  f.state = File::kLoaded;
  f.plugin = lp;
  by_name_.emplace(lp->name, std::move(lp));
  return true;
}

std::shared_ptr<LoadedPlugin> PluginRegistry::find(std::string_view name) {
  std::lock_guard lock(mu_);
  return find_locked(name);
}

std::shared_ptr<LoadedPlugin> PluginRegistry::find_locked(std::string_view name) {
  if (auto it = by_name_.find(name); it != by_name_.end()) return it->second;
  // Loads `f` and keeps it when it declares `name`; a file declaring
  // another name is unloaded again (it would map code nothing uses), and
  // loaded again if that other name is asked for.
  auto try_file = [&](File& f) {
    if (!load(f)) return false;
    if (f.declared == name) return true;
    by_name_.erase(f.declared);
    f.plugin.reset();
    f.state = File::kProbed;
    return false;
  };
  // The conventional file first, in directory order; then a file seen
  // declaring it before; then, unless its own file was refused (that is the
  // answer: no need to load every other plugin), the files not loaded yet.
  bool own_file_refused = false;
  for (auto& f : files_) {
    if (f.stem != name) continue;
    if (f.state == File::kListed && try_file(f)) return f.plugin;
    own_file_refused = own_file_refused || f.state == File::kRefused;
  }
  for (auto& f : files_)
    if (f.state == File::kProbed && f.declared == name && try_file(f)) return f.plugin;
  if (own_file_refused) return nullptr;
  for (auto& f : files_)
    if (f.state == File::kListed && try_file(f)) return f.plugin;
  return nullptr;
}

void PluginRegistry::load_all() {
  std::lock_guard lock(mu_);
  for (auto& f : files_)
    if (f.state == File::kListed || f.state == File::kProbed) load(f);
}

std::vector<std::shared_ptr<LoadedPlugin>> PluginRegistry::plugins() const {
  std::lock_guard lock(mu_);
  std::vector<std::shared_ptr<LoadedPlugin>> out;
  for (const auto& f : files_)
    if (f.plugin) out.push_back(f.plugin);
  return out;
}

std::vector<std::string> PluginRegistry::failures() const {
  std::lock_guard lock(mu_);
  return failures_;
}

size_t PluginRegistry::files() const {
  std::lock_guard lock(mu_);
  return files_.size();
}

std::vector<std::string> PluginRegistry::available() const {
  std::lock_guard lock(mu_);
  std::vector<std::string> names;
  for (const auto& f : files_)
    if (f.state != File::kRefused) names.push_back(f.declared.empty() ? f.stem : f.declared);
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

std::string PluginRegistry::explain_missing(std::string_view name) const {
  std::string file = "moni-" + std::string(name) + ".so";
  std::string others;
  {
    std::lock_guard lock(mu_);
    for (const auto& fail : failures_)
      if (fail.find("/" + file + ":") != std::string::npos) return fail;
    for (const auto& f : files_)
      if (f.stem == name && !f.declared.empty() && f.declared != name)
        others += "; " + f.path + " declares plugin '" + f.declared + "'";
  }
  std::string list;
  for (const auto& d : dirs_) list += (list.empty() ? "" : ", ") + d;
  std::string names;
  for (const auto& n : available()) names += (names.empty() ? "" : ", ") + n;
  return "no plugin named '" + std::string(name) + "' (no loadable " + file + " in " +
         (list.empty() ? std::string("any plugin directory") : list) +
         ", and no other plugin file declares it" + others +
         "); available: " + (names.empty() ? std::string("none") : names);
}

}  // namespace moni::host
