#include "notifier_config.hpp"

#include "http_client/http_client.hpp"

namespace moni::rules {

namespace {

void check_url(ConfigReader& r, std::string_view key, const ConfigView& node,
               const std::string& url) {
  if (auto u = http_client::parse_url(url); !u)
    r.error(node, std::string(key) + ": " + u.error().message);
}

}  // namespace

NotifierOptions parse_notifier_options(ConfigReader& cfg) {
  NotifierOptions out;
  ConfigView list = cfg.table_view().get("alertmanagers");
  std::vector<std::string> urls = cfg.strings("alertmanagers", {});
  for (size_t i = 0; i < urls.size(); ++i) {
    check_url(cfg, "alertmanagers[" + std::to_string(i) + "]", list.at(i), urls[i]);
    AlertmanagerOptions am;
    am.url = urls[i];
    out.alertmanagers.push_back(std::move(am));
  }
  for (auto& t : cfg.tables("alertmanager")) {
    AlertmanagerOptions am;
    am.url = t.required_string("url");
    if (!am.url.empty()) check_url(t, "url", t.table_view().get("url"), am.url);
    am.timeout_ms = t.duration_ms("timeout", am.timeout_ms);
    if (am.timeout_ms <= 0) t.error(t.table_view().get("timeout"), "timeout must be > 0");
    am.path_prefix = t.string("path_prefix", am.path_prefix);
    am.username = t.string("username", "");
    am.password = t.string("password", "");
    am.password_file = t.string("password_file", "");
    if (!am.password.empty() && !am.password_file.empty())
      t.error(t.table_view().get("password_file"),
              "password_file: set either password or password_file, not both");
    if (am.username.empty() && (!am.password.empty() || !am.password_file.empty()))
      t.error(t.table_view(), "username: required with a password (basic auth)");
    am.ca_file = t.string("tls_ca_file", "");
    am.cert_file = t.string("tls_cert_file", "");
    am.key_file = t.string("tls_key_file", "");
    am.server_name = t.string("tls_server_name", "");
    am.insecure_skip_verify = t.boolean("tls_insecure_skip_verify", false);
    out.alertmanagers.push_back(std::move(am));
  }
  out.queue_capacity = static_cast<size_t>(cfg.integer(
      "notification_queue_capacity", static_cast<int64_t>(out.queue_capacity), 1, 10'000'000));
  out.external_url = cfg.string("external_url", "");
  if (!out.external_url.empty())
    check_url(cfg, "external_url", cfg.table_view().get("external_url"), out.external_url);
  while (!out.external_url.empty() && out.external_url.back() == '/') out.external_url.pop_back();
  return out;
}

}  // namespace moni::rules
