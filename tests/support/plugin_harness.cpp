#include "plugin_harness.hpp"

#include "toml_config_api.hpp"

#include <dlfcn.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#ifndef MONI_PLUGIN_BUILD_DIR
#error "MONI_PLUGIN_BUILD_DIR must be defined by the build"
#endif

namespace moni::testing {

void OwnedBatch::append(const moni_batch& b) {
  for (size_t i = 0; i < b.sample_count; ++i) {
    const moni_sample& s = b.samples[i];
    OwnedSample o;
    for (uint32_t j = 0; j < s.label_count; ++j)
      o.labels.push_back({std::string(sv(s.labels[j].name)), std::string(sv(s.labels[j].value))});
    o.value = s.value;
    o.timestamp_ms = s.timestamp_ms;
    samples.push_back(std::move(o));
  }
  for (size_t i = 0; i < b.metadata_count; ++i) {
    const moni_metadata& m = b.metadata[i];
    metadata.push_back({std::string(sv(m.family)), static_cast<MetricType>(m.type),
                        std::string(sv(m.help)), std::string(sv(m.unit))});
  }
}

std::vector<OwnedSample> OwnedBatch::find(std::string_view name, std::string_view k,
                                          std::string_view v) const {
  std::vector<OwnedSample> out;
  for (const auto& s : samples)
    if (s.name() == name && (k.empty() || s.label(k) == v)) out.push_back(s);
  return out;
}

const OwnedSample* OwnedBatch::one(std::string_view name, std::string_view k,
                                   std::string_view v) const {
  const OwnedSample* found = nullptr;
  for (const auto& s : samples)
    if (s.name() == name && (k.empty() || s.label(k) == v)) {
      if (found) return nullptr;
      found = &s;
    }
  return found;
}

const Metadata* OwnedBatch::meta(std::string_view family) const {
  for (const auto& m : metadata)
    if (m.family == family) return &m;
  return nullptr;
}

std::string plugin_path(std::string_view name) {
  return std::string(MONI_PLUGIN_BUILD_DIR) + "/moni-" + std::string(name) + ".so";
}

std::string PluginHarness::HttpResult::header(std::string_view name) const {
  for (const auto& [k, v] : headers)
    if (k == name) return v;
  return {};
}

struct PluginHarness::Impl {
  void* dl = nullptr;
  toml::table config;
  std::string instance, data_dir;
  moni_host_api api{};
  mutable std::mutex mu;
  std::vector<std::string> logs;
  struct Route {
    moni_http_handler_fn fn;
    void* user;
  };
  std::map<std::string, Route> routes;
  PluginHarness* self = nullptr;

  struct Response {
    HttpResult r;
  };

  static Impl* of(void* ctx) { return static_cast<Impl*>(ctx); }
  static void log(void* ctx, uint32_t level, moni_str msg) {
    std::lock_guard l(of(ctx)->mu);
    of(ctx)->logs.push_back(std::to_string(level) + " " + std::string(sv(msg)));
  }
  static int route(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                   moni_error* err) {
    std::lock_guard l(of(ctx)->mu);
    auto [it, inserted] = of(ctx)->routes.emplace(std::string(sv(path)), Route{fn, user});
    if (!inserted) {
      snprintf(err->message, sizeof err->message, "route %s already registered",
               it->first.c_str());
      return MONI_ERR;
    }
    return MONI_OK;
  }
  static void status(moni_http_response* r, uint32_t code) {
    reinterpret_cast<Response*>(r)->r.status = code;
  }
  static void header(moni_http_response* r, moni_str n, moni_str v) {
    reinterpret_cast<Response*>(r)->r.headers.emplace_back(std::string(sv(n)), std::string(sv(v)));
  }
  static void body(moni_http_response* r, moni_str chunk) {
    reinterpret_cast<Response*>(r)->r.body.append(chunk.ptr, chunk.len);
  }
  static int route_fallback(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                            moni_error*) {
    std::lock_guard l(of(ctx)->mu);
    of(ctx)->routes.emplace(std::string(sv(path)), Route{fn, user});  // an existing one stays
    return MONI_OK;
  }
  static int collect_now(void* ctx, int64_t timeout_ms, moni_error* err) {
    auto& fn = of(ctx)->self->collect_now_;
    auto r = fn ? fn(timeout_ms) : Result<void>(make_error("harness: collect_now not set"));
    if (r) return MONI_OK;
    snprintf(err->message, sizeof err->message, "%s", r.error().message.c_str());
    return MONI_ERR;
  }
  static const moni_storage_reader* storage(void* ctx, moni_str) { return of(ctx)->self->storage_; }
  static int listen_urls(void* ctx, moni_str_fn fn, void* user) {
    const auto& urls = of(ctx)->self->listen_urls_;
    for (const auto& u : urls) fn(user, ms(u));
    return static_cast<int>(urls.size());
  }
  static int64_t now(void* ctx) {
    if (of(ctx)->self->now_ms_) return of(ctx)->self->now_ms_;
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
};

namespace {
int append_to(void* ctx, const moni_batch* b) {
  static_cast<OwnedBatch*>(ctx)->append(*b);
  return MONI_OK;
}
// What a collection emits; emit may be called from several threads at once.
struct Collected {
  std::mutex mu;
  std::vector<OwnedBatch> batches;
  std::set<std::thread::id> threads;
};
int append_collected(void* ctx, const moni_batch* b) {
  auto* c = static_cast<Collected*>(ctx);
  OwnedBatch one;
  one.append(*b);
  std::lock_guard lock(c->mu);
  c->batches.push_back(std::move(one));
  c->threads.insert(std::this_thread::get_id());
  return MONI_OK;
}
}  // namespace

void PluginHarness::set_host_abi_minor(uint16_t minor) { impl_->api.abi_minor = minor; }

Result<std::unique_ptr<PluginHarness>> PluginHarness::load(const std::string& so_path,
                                                           const std::string& toml_body,
                                                           const std::string& instance,
                                                           const std::string& data_dir) {
  std::unique_ptr<PluginHarness> h(new PluginHarness());
  h->impl_ = std::make_unique<Impl>();
  Impl& im = *h->impl_;
  im.self = h.get();
  im.instance = instance;
  im.data_dir = data_dir.empty() ? std::filesystem::temp_directory_path().string() : data_dir;
  try {
    im.config = toml::parse(toml_body, std::string_view("test.toml"));
  } catch (const toml::parse_error& e) {
    return make_error(std::string("harness: bad TOML: ") + std::string(e.description()));
  }
  im.dl = dlopen(so_path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!im.dl) return make_error(std::string("harness: dlopen: ") + dlerror());
  auto entry = reinterpret_cast<moni_plugin_entry_fn>(dlsym(im.dl, MONI_PLUGIN_ENTRY_SYMBOL));
  if (!entry) return make_error("harness: no entry symbol in " + so_path);
  im.api = moni_host_api{.struct_size = sizeof(moni_host_api),
                         .abi_major = MONI_ABI_MAJOR,
                         .abi_minor = MONI_ABI_MINOR,
                         .ctx = &im,
                         .instance_name = ms(im.instance),
                         .data_dir = ms(im.data_dir),
                         .config = moni::host::toml_config_api(),
                         .log = &Impl::log,
                         .http_route = &Impl::route,
                         .http_status = &Impl::status,
                         .http_header = &Impl::header,
                         .http_body = &Impl::body,
                         .storage = &Impl::storage,
                         .now_ms = &Impl::now,
                         .http_route_fallback = &Impl::route_fallback,
                         .collect_now = &Impl::collect_now,
                         .listen_urls = &Impl::listen_urls};
  h->desc_ = entry(&im.api);
  if (!h->desc_) return make_error("harness: entry returned null");
  moni_error err{};
  h->inst_ = h->desc_->create(&im.api, moni::host::to_config_node(&im.config), &err);
  if (!h->inst_) return make_error(err.message);
  return h;
}

PluginHarness::~PluginHarness() {
  if (inst_) {
    if (started_) desc_->stop(inst_);
    desc_->destroy(inst_);
  }
  if (impl_ && impl_->dl) dlclose(impl_->dl);
}

Result<void> PluginHarness::start() {
  moni_error err{};
  if (desc_->start(inst_, &err) != MONI_OK) return make_error(err.message);
  started_ = true;
  return {};
}

Result<OwnedBatch> PluginHarness::collect(int64_t now_ms) {
  auto r = collect_batches(now_ms);
  if (!r) return r.error();
  OwnedBatch out;
  for (auto& b : *r) {
    for (auto& s : b.samples) out.samples.push_back(std::move(s));
    for (auto& m : b.metadata) out.metadata.push_back(std::move(m));
  }
  return out;
}

Result<std::vector<OwnedBatch>> PluginHarness::collect_batches(int64_t now_ms) {
  Collected out;
  moni_error err{};
  if (!desc_->collect) return make_error("not a collector");
  int rc = desc_->collect(inst_, now_ms, &append_collected, &out, &err);
  std::lock_guard lock(out.mu);  // every emit has returned
  last_emit_threads_ = out.threads.size();
  if (rc != MONI_OK) return make_error(err.message);
  return std::move(out.batches);
}

Result<OwnedBatch> PluginHarness::process(Batch& in) {
  OwnedBatch out;
  moni_error err{};
  if (!desc_->process) return make_error("not a processor");
  if (desc_->process(inst_, &in.view(), &append_to, &out, &err) != MONI_OK)
    return make_error(err.message);
  return out;
}

Result<void> PluginHarness::write(Batch& in) {
  moni_error err{};
  if (!desc_->write) return make_error("not a sink");
  if (desc_->write(inst_, &in.view(), &err) != MONI_OK) return make_error(err.message);
  return {};
}

Result<void> PluginHarness::flush() {
  moni_error err{};
  if (desc_->flush && desc_->flush(inst_, &err) != MONI_OK) return make_error(err.message);
  return {};
}

void PluginHarness::stop() {
  if (started_) desc_->stop(inst_);
  started_ = false;
}

OwnedBatch PluginHarness::self_metrics() {
  OwnedBatch out;
  if (desc_->self_metrics) (void)desc_->self_metrics(inst_, &append_to, &out);
  return out;
}

PluginHarness::HttpResult PluginHarness::http(
    const std::string& method, const std::string& target, const std::string& body,
    std::vector<std::pair<std::string, std::string>> headers) {
  std::string path = target.substr(0, target.find('?'));
  std::string query = target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
  Impl::Route route{nullptr, nullptr};
  {
    std::lock_guard l(impl_->mu);
    for (const auto& [p, r] : impl_->routes)
      if (p == path || (!p.empty() && p.back() == '/' && path.starts_with(p))) route = r;
  }
  Impl::Response resp;
  resp.r.status = 200;
  if (!route.fn) {
    resp.r.status = 404;
    return resp.r;
  }
  std::vector<moni_label> hdrs;
  for (auto& [k, v] : headers) hdrs.push_back({ms(k), ms(v)});
  moni_http_request req{ms(method), ms(target), ms(path), ms(query), hdrs.data(), hdrs.size(),
                        ms(body), ms("127.0.0.1:1")};
  route.fn(route.user, &req, reinterpret_cast<moni_http_response*>(&resp));
  return resp.r;
}

std::vector<std::string> PluginHarness::routes() const {
  std::lock_guard l(impl_->mu);
  std::vector<std::string> out;
  for (const auto& [p, r] : impl_->routes) out.push_back(p);
  return out;
}

const moni_storage_reader* PluginHarness::reader() {
  return desc_->reader ? desc_->reader(inst_) : nullptr;
}

std::vector<std::string> PluginHarness::logs() const {
  std::lock_guard l(impl_->mu);
  return impl_->logs;
}

}  // namespace moni::testing
