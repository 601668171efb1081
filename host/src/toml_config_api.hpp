// The ABI's moni_config_api implemented over toml++ nodes, so that plugins
// read their own TOML tables (with source positions) without linking toml++.
#pragma once

#include <moni/plugin_abi.h>

namespace toml {
inline namespace v3 {
class node;
}
}  // namespace toml

namespace moni::host {

/// The process-wide config API table. Thread-safety: read-only functions.
const moni_config_api* toml_config_api();

/// The ABI handle of a toml++ node (NULL-safe). The node must outlive its use.
inline const moni_config_node* to_config_node(const toml::node* n) {
  return reinterpret_cast<const moni_config_node*>(n);
}

}  // namespace moni::host
