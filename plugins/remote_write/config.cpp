#include "config.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace moni::remote_write {

namespace {

// Reads a table of string values (external_labels, headers).
std::map<std::string, std::string> string_table(ConfigReader& r, std::string_view key) {
  std::map<std::string, std::string> out;
  if (!r.has(key)) return out;
  ConfigReader t = r.table(key);
  ConfigView v = t.table_view();
  for (size_t i = 0; i < v.size(); ++i) {
    std::string_view k;
    v.at(i, &k);
    if (auto s = t.optional_string(k)) out[std::string(k)] = *s;
  }
  return out;
}

std::string default_name(const Url& u) {
  std::string s = u.host + "_" + u.port;
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  return s;
}

}  // namespace

Config parse_config(const ConfigView& table, const std::string& component) {
  ConfigReader r(table, component);
  Config cfg;
  EndpointConfig defaults;
  // Instance-level values are defaults that each endpoint may override.
  auto instance_ext = string_table(r, "external_labels");
  defaults.queue_max_size = r.bytes("queue_max_size", defaults.queue_max_size);

  auto eps = r.tables("endpoints");
  if (eps.empty() && !r.has("endpoints"))
    r.error(ConfigView(), "missing required option 'endpoints' (one or more [[" +
                              std::string("outputs.<name>.endpoints]] tables with a url)"));
  std::set<std::string> names;
  for (auto& e : eps) {
    EndpointConfig ep = defaults;
    ep.url_text = e.required_string("url");
    if (!ep.url_text.empty()) {
      auto u = parse_url(ep.url_text);
      if (!u)
        e.error(e.raw("url"), u.error().message);
      else
        ep.url = *u;
    }
    ep.name = e.string("name", ep.url.host.empty() ? "" : default_name(ep.url));
    for (char c : ep.name)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
        e.error(e.raw("name"), "name \"" + ep.name +
                                   "\" may only contain letters, digits, '-', '_' and '.' (it "
                                   "names the queue directory)");
        break;
      }
    if (!ep.name.empty() && !names.insert(ep.name).second)
      e.error(e.raw("name"), "endpoint name \"" + ep.name +
                                 "\" is used twice; give each endpoint a distinct name");
    ep.remote_timeout_ms = e.duration_ms("remote_timeout", ep.remote_timeout_ms);
    for (auto& [k, v] : string_table(e, "headers")) ep.headers.emplace_back(k, v);
    auto ext = instance_ext;
    for (auto& [k, v] : string_table(e, "external_labels")) ext[k] = v;
    ep.external_labels.assign(ext.begin(), ext.end());
    for (auto& rr : e.tables("write_relabel_configs")) ep.relabel.push_back(parse_relabel_rule(rr));
    ep.min_shards = static_cast<uint32_t>(e.integer("min_shards", ep.min_shards, 1, 1000));
    ep.max_shards = static_cast<uint32_t>(e.integer("max_shards", ep.max_shards, 1, 1000));
    if (ep.min_shards > ep.max_shards)
      e.error(e.raw("min_shards"), "min_shards (" + std::to_string(ep.min_shards) +
                                       ") must be <= max_shards (" + std::to_string(ep.max_shards) +
                                       ")");
    ep.max_samples_per_send = static_cast<uint32_t>(
        e.integer("max_samples_per_send", ep.max_samples_per_send, 1, 1000000));
    ep.batch_send_deadline_ms = e.duration_ms("batch_send_deadline", ep.batch_send_deadline_ms);
    ep.min_backoff_ms = e.duration_ms("min_backoff", ep.min_backoff_ms);
    ep.max_backoff_ms = e.duration_ms("max_backoff", ep.max_backoff_ms);
    if (ep.min_backoff_ms <= 0) e.error(e.raw("min_backoff"), "min_backoff must be > 0");
    if (ep.max_backoff_ms < ep.min_backoff_ms)
      e.error(e.raw("max_backoff"), "max_backoff must be >= min_backoff");
    ep.max_retry_after_ms = e.duration_ms("max_retry_after", ep.max_retry_after_ms);
    ep.queue_max_size = e.bytes("queue_max_size", ep.queue_max_size);
    if (ep.queue_max_size < (1u << 16))
      e.error(e.raw("queue_max_size"), "queue_max_size must be at least 64KiB (got " +
                                           std::to_string(ep.queue_max_size) + " bytes)");
    ep.send_metadata = e.boolean("send_metadata", ep.send_metadata);
    ep.metadata_send_interval_ms =
        e.duration_ms("metadata_send_interval", ep.metadata_send_interval_ms);
    if (e.has("basic_auth")) {
      ConfigReader b = e.table("basic_auth");
      ep.basic_auth_username = b.required_string("username");
      ep.basic_auth_password = b.string("password", "");
      ep.basic_auth_password_file = b.string("password_file", "");
      if (!ep.basic_auth_password.empty() && !ep.basic_auth_password_file.empty())
        b.error(b.raw("password_file"),
                "set only one of basic_auth.password and basic_auth.password_file");
    }
    ep.bearer_token = e.string("bearer_token", "");
    ep.bearer_token_file = e.string("bearer_token_file", "");
    if (!ep.bearer_token.empty() && !ep.bearer_token_file.empty())
      e.error(e.raw("bearer_token_file"), "set only one of bearer_token and bearer_token_file");
    if ((!ep.bearer_token.empty() || !ep.bearer_token_file.empty()) && e.has("basic_auth"))
      e.error(e.raw("basic_auth"), "set only one of basic_auth and bearer_token(_file)");
    if (e.has("tls")) {
      ConfigReader t = e.table("tls");
      ep.tls.ca_file = t.string("ca_file", "");
      ep.tls.cert_file = t.string("cert_file", "");
      ep.tls.key_file = t.string("key_file", "");
      ep.tls.server_name = t.string("server_name", "");
      ep.tls.insecure_skip_verify = t.boolean("insecure_skip_verify", false);
      if (ep.tls.cert_file.empty() != ep.tls.key_file.empty())
        t.error(t.raw(ep.tls.cert_file.empty() ? "key_file" : "cert_file"),
                "tls.cert_file and tls.key_file must be set together");
    }
    cfg.endpoints.push_back(std::move(ep));
  }
  r.finish();
  return cfg;
}

}  // namespace moni::remote_write
