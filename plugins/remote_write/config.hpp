// remote_write's options, parsed from its instance table.
#pragma once

#include <cstdint>
#include <moni/config.hpp>
#include <string>
#include <utility>
#include <vector>

#include "http_client/http_client.hpp"
#include "relabel.hpp"

namespace moni::remote_write {

using http_client::Headers;
using http_client::parse_url;
using http_client::TlsOptions;
using http_client::Url;

/// One [[endpoints]] entry with instance-level defaults applied.
/// Thread-safety: immutable after parsing.
struct EndpointConfig {
  std::string name;  // metric label and queue directory name
  std::string url_text;
  Url url;
  int64_t remote_timeout_ms = 30000;
  Headers headers;                                                   // user headers
  std::vector<std::pair<std::string, std::string>> external_labels;  // sorted by name
  std::vector<RelabelRule> relabel;
  uint32_t min_shards = 1;
  uint32_t max_shards = 4;
  uint32_t max_samples_per_send = 2000;
  int64_t batch_send_deadline_ms = 5000;
  int64_t min_backoff_ms = 30;
  int64_t max_backoff_ms = 5000;
  int64_t max_retry_after_ms = 300000;
  uint64_t queue_max_size = 1ULL << 30;
  bool send_metadata = true;
  int64_t metadata_send_interval_ms = 60000;
  std::string basic_auth_username, basic_auth_password, basic_auth_password_file;
  std::string bearer_token, bearer_token_file;
  TlsOptions tls;
};

struct Config {
  std::vector<EndpointConfig> endpoints;
};

/// Parses the instance table; throws ConfigError listing every problem.
Config parse_config(const ConfigView& table, const std::string& component);

}  // namespace moni::remote_write
