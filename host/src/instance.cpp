#include "instance.hpp"

#include <chrono>
#include <moni/sample.hpp>

#include "log.hpp"
#include "route_table.hpp"
#include "toml_config_api.hpp"

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

namespace moni::host {
namespace {
std::string message_of(const moni_error& e, std::string_view fallback) {
  std::string m(e.message, strnlen(e.message, sizeof e.message));
  return m.empty() ? std::string(fallback) : m;
}
}  // namespace

Instance::Instance(InstanceConfig config, std::shared_ptr<const toml::table> doc,
                   std::shared_ptr<LoadedPlugin> plugin, std::string data_dir,
                   HostServices* services)
    : config_(std::move(config)),
      doc_(std::move(doc)),
      plugin_(std::move(plugin)),
      data_dir_(std::move(data_dir)),
      services_(services),
      concurrent_write_((flags() & MONI_PLUGIN_CONCURRENT_WRITE) != 0),
      concurrent_process_((flags() & MONI_PLUGIN_CONCURRENT_PROCESS) != 0) {
  api_ = moni_host_api{.struct_size = sizeof(moni_host_api),
                      .abi_major = MONI_ABI_MAJOR,
                      .abi_minor = MONI_ABI_MINOR,
                      .ctx = this,
                      .instance_name = ms(config_.name),
                      .data_dir = ms(data_dir_),
                      .config = toml_config_api(),
                      .log = &api_log,
                      .http_route = &api_route,
                      .http_status = &api_status,
                      .http_header = &api_header,
                      .http_body = &api_body,
                      .storage = &api_storage,
                      .now_ms = &api_now,
                      .http_route_fallback = &api_route_fallback,
                      .collect_now = &api_collect_now,
                      .listen_urls = &api_listen_urls};
}

Instance::~Instance() {
  if (!inst_) return;
  if (started_) stop();
  std::lock_guard lock(call_mu_);
  plugin_->desc.destroy(inst_);
  inst_ = nullptr;
}

std::string Instance::label() const {
  return config_.plugin == config_.name ? config_.name : config_.name + " (" + config_.plugin + ")";
}

Result<void> Instance::create() {
  if (!plugin_) return {};  // built-in
  moni_error err{};
  inst_ = plugin_->desc.create(&api_, to_config_node(config_.table), &err);
  if (!inst_)
    return make_error(
        message_of(err, config_.where + ": " + label() + ": create() failed without a message"));
  return {};
}

Result<void> Instance::start() {
  if (!inst_) {
    started_ = true;
    return {};
  }
  moni_error err{};
  std::lock_guard lock(call_mu_);
  if (plugin_->desc.start && plugin_->desc.start(inst_, &err) != MONI_OK)
    return make_error(label() + ": start failed: " + message_of(err, "no message"));
  started_ = true;
  return {};
}

Result<void> Instance::collect(int64_t now_ms, moni_emit_fn emit, void* emit_ctx) {
  if (!inst_ || !plugin_->desc.collect) return make_error("not a collector");
  std::lock_guard lock(call_mu_);
  moni_error err{};
  if (plugin_->desc.collect(inst_, now_ms, emit, emit_ctx, &err) != MONI_OK)
    return make_error(message_of(err, "collect failed without a message"));
  return {};
}

Result<void> Instance::process(const moni_batch& in, moni_emit_fn emit, void* emit_ctx) {
  if (!inst_ || !plugin_->desc.process) return make_error("not a processor");
  moni_error err{};
  int rc;
  if (concurrent_process_) {
    std::shared_lock lock(call_mu_);
    rc = plugin_->desc.process(inst_, &in, emit, emit_ctx, &err);
  } else {
    std::lock_guard lock(call_mu_);
    rc = plugin_->desc.process(inst_, &in, emit, emit_ctx, &err);
  }
  if (rc != MONI_OK) return make_error(message_of(err, "process failed without a message"));
  return {};
}

Result<void> Instance::write(const moni_batch& batch) {
  if (!inst_ || !plugin_->desc.write) return make_error("not a sink");
  moni_error err{};
  int rc;
  if (concurrent_write_) {
    std::shared_lock lock(call_mu_);
    rc = plugin_->desc.write(inst_, &batch, &err);
  } else {
    std::lock_guard lock(call_mu_);
    rc = plugin_->desc.write(inst_, &batch, &err);
  }
  if (rc != MONI_OK) return make_error(message_of(err, "write failed without a message"));
  return {};
}

Result<void> Instance::flush() {
  if (!inst_ || !plugin_->desc.flush || !started_) return {};
  std::lock_guard lock(call_mu_);
  moni_error err{};
  if (plugin_->desc.flush(inst_, &err) != MONI_OK)
    return make_error(message_of(err, "flush failed without a message"));
  return {};
}

void Instance::stop() {
  if (!started_.exchange(false)) return;
  std::unique_lock handlers(handler_mu_);  // no handler of ours is running past this
  std::lock_guard lock(call_mu_);
  if (inst_ && plugin_->desc.stop) plugin_->desc.stop(inst_);
}

void Instance::self_metrics(moni_emit_fn emit, void* emit_ctx) {
  if (inst_ && started_ && plugin_->desc.self_metrics)
    (void)plugin_->desc.self_metrics(inst_, emit, emit_ctx);
}

const moni_storage_reader* Instance::reader() {
  if (!inst_ || !started_ || !plugin_->desc.reader) return nullptr;
  const moni_storage_reader* r = plugin_->desc.reader(inst_);
  if (!r || r->struct_size < sizeof(moni_storage_reader)) return nullptr;
  return r;
}

Result<void> Instance::command(std::string_view name, const std::vector<std::string>& args,
                               bool with_context) {
  if (!inst_) return make_error(label() + ": has no offline commands");
  if (!plugin_->desc.command)
    return make_error(label() + ": plugin '" + plugin_->name + "' has no offline commands");
  std::vector<moni_str> a;
  for (const auto& s : args) a.push_back(ms(s));
  moni_error err{};
  if (plugin_->desc.command(inst_, ms(name), a.data(), a.size(), &err) != MONI_OK)
    return make_error((with_context ? label() + ": " + std::string(name) + ": " : std::string()) +
                      message_of(err, "failed without a message"));
  return {};
}

void Instance::run_handler(moni_http_handler_fn fn, void* user, const moni_http_request& req,
                           moni_http_response* resp, unsigned& status) {
  std::shared_lock lock(handler_mu_);
  if (!started_) {
    status = 503;
    return;
  }
  fn(user, &req, resp);
}

void Instance::api_log(void* ctx, uint32_t level, moni_str message) {
  log(static_cast<Level>(std::min<uint32_t>(level, 3)), of(ctx)->label(), sv(message));
}

int Instance::api_route(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                        moni_error* err) {
  return add_route(ctx, path, fn, user, false, err);
}

int Instance::api_route_fallback(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                                 moni_error* err) {
  return add_route(ctx, path, fn, user, true, err);
}

int Instance::api_collect_now(void* ctx, int64_t timeout_ms, moni_error* err) {
  Instance* self = of(ctx);
  auto r = self->services_ ? self->services_->collect_now(*self, timeout_ms)
                           : Result<void>(make_error("collect_now is not available here"));
  if (!r) {
    std::snprintf(err->message, sizeof err->message, "%s", r.error().message.c_str());
    return MONI_ERR;
  }
  return MONI_OK;
}

int Instance::api_listen_urls(void* ctx, moni_str_fn fn, void* user) {
  Instance* self = of(ctx);
  if (!self->services_) return 0;
  auto urls = self->services_->listen_urls();
  for (const auto& u : urls) fn(user, ms(u));
  return static_cast<int>(urls.size());
}

int Instance::add_route(void* ctx, moni_str path, moni_http_handler_fn fn, void* user,
                        bool fallback, moni_error* err) {
  Instance* self = of(ctx);
  std::string p(sv(path));
  if (p.empty() || p[0] != '/' || !fn) {
    std::snprintf(err->message, sizeof err->message, "invalid route '%s'", p.c_str());
    return MONI_ERR;
  }
  auto r = self->services_ ? self->services_->add_route(*self, p, fn, user, fallback)
                           : Result<void>(make_error("HTTP routes are not available here"));
  if (!r) {
    std::snprintf(err->message, sizeof err->message, "%s", r.error().message.c_str());
    return MONI_ERR;
  }
  return MONI_OK;
}

void Instance::api_status(moni_http_response* r, uint32_t status) {
  reinterpret_cast<HttpResponseData*>(r)->status = status;
}
void Instance::api_header(moni_http_response* r, moni_str name, moni_str value) {
  reinterpret_cast<HttpResponseData*>(r)->headers.emplace_back(std::string(sv(name)),
                                                               std::string(sv(value)));
}
void Instance::api_body(moni_http_response* r, moni_str chunk) {
  reinterpret_cast<HttpResponseData*>(r)->body.append(chunk.ptr, chunk.len);
}

const moni_storage_reader* Instance::api_storage(void* ctx, moni_str name) {
  Instance* self = of(ctx);
  self->uses_storage_ = true;
  const moni_storage_reader* r = self->services_ ? self->services_->storage(*self, sv(name)) : nullptr;
  if (r) self->reads_storage_ = true;
  return r;
}

int64_t Instance::api_now(void*) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace moni::host
