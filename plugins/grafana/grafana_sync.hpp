// One synchronisation with Grafana's HTTP API: the Prometheus data source
// pointing at moni, the dashboards' folder, and the dashboards themselves.
// Idempotent: what Grafana already has as wanted is left alone.
#pragma once

#include <functional>
#include <moni/result.hpp>
#include <string>

#include "http_client/http_client.hpp"

namespace moni::grafana {

using http_client::Headers;
using http_client::HttpClient;
using http_client::HttpReply;

struct SyncOptions {
  std::string base_path;  // Grafana served under a sub-path ("/grafana"); "" at the root
  std::string token;      // sent as "Authorization: Bearer <token>"; empty: no header
  std::string datasource_name;
  std::string datasource_uid;   // used when the data source is created
  std::string datasource_url;   // moni's URL as Grafana reaches it
  std::string scrape_interval;  // the data source's timeInterval ("15s")
  std::string folder;           // title; empty: Grafana's General folder
  std::string dashboards_dir;   // *.json, uploaded in name order
  std::string message;          // version message of uploaded dashboards
};

struct SyncReport {
  bool datasource_created = false, datasource_updated = false, folder_created = false;
  size_t dashboards_uploaded = 0, dashboards_unchanged = 0;
  std::string datasource_uid;  // what the dashboards were pointed at
};

/// Runs one sync through `client`; `log` gets one line per change. Fails at
/// the first API error with the call, status and Grafana's message.
/// Thread-safety: none (one sync at a time per client).
Result<SyncReport> sync(HttpClient& client, const SyncOptions& opts,
                        const std::function<void(const std::string&)>& log);

}  // namespace moni::grafana
