// TOML rule files: parsed with toml++ and read through the SDK's ConfigReader
// (over a small moni_config_api of our own), so a rule file's errors carry
// file:line:column exactly like the main config's.
#include <iterator>
#include <memory>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

#include "rule_config.hpp"

namespace moni::rules {

namespace {

const toml::node* node_of(const moni_config_node* n) {
  return reinterpret_cast<const toml::node*>(n);
}
const moni_config_node* handle(const toml::node* n) {
  return reinterpret_cast<const moni_config_node*>(n);
}
moni_str str_of(std::string_view s) { return {s.data(), s.size()}; }

uint32_t cfg_type(const moni_config_node* n) {
  if (!n) return MONI_CFG_NONE;
  switch (node_of(n)->type()) {
    case toml::node_type::table:
      return MONI_CFG_TABLE;
    case toml::node_type::array:
      return MONI_CFG_ARRAY;
    case toml::node_type::string:
      return MONI_CFG_STRING;
    case toml::node_type::integer:
      return MONI_CFG_INTEGER;
    case toml::node_type::floating_point:
      return MONI_CFG_FLOAT;
    case toml::node_type::boolean:
      return MONI_CFG_BOOLEAN;
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return MONI_CFG_DATETIME;
    default:
      return MONI_CFG_NONE;
  }
}
const moni_config_node* cfg_get(const moni_config_node* t, moni_str key) {
  auto* tbl = t ? node_of(t)->as_table() : nullptr;
  return tbl ? handle(tbl->get(sv(key))) : nullptr;
}
size_t cfg_size(const moni_config_node* n) {
  if (!n) return 0;
  if (auto* t = node_of(n)->as_table()) return t->size();
  if (auto* a = node_of(n)->as_array()) return a->size();
  return 0;
}
const moni_config_node* cfg_at(const moni_config_node* n, size_t i, moni_str* key) {
  if (!n) return nullptr;
  if (auto* t = node_of(n)->as_table()) {
    if (i >= t->size()) return nullptr;
    auto it = std::next(t->begin(), static_cast<std::ptrdiff_t>(i));
    if (key) *key = str_of(it->first.str());
    return handle(&it->second);
  }
  if (auto* a = node_of(n)->as_array()) return i < a->size() ? handle(a->get(i)) : nullptr;
  return nullptr;
}
moni_str cfg_string(const moni_config_node* n) {
  auto* s = n ? node_of(n)->as_string() : nullptr;
  return s ? str_of(s->get()) : moni_str{"", 0};
}
int64_t cfg_integer(const moni_config_node* n) {
  auto* i = n ? node_of(n)->as_integer() : nullptr;
  return i ? i->get() : 0;
}
double cfg_float(const moni_config_node* n) {
  if (!n) return 0;
  if (auto* f = node_of(n)->as_floating_point()) return f->get();
  if (auto* i = node_of(n)->as_integer()) return static_cast<double>(i->get());
  return 0;
}
int cfg_boolean(const moni_config_node* n) {
  auto* b = n ? node_of(n)->as_boolean() : nullptr;
  return b && b->get() ? 1 : 0;
}
moni_source_pos cfg_position(const moni_config_node* n) {
  moni_source_pos p{{"", 0}, 0, 0};
  if (!n) return p;
  const auto& src = node_of(n)->source();
  if (src.path) p.file = str_of(*src.path);
  p.line = src.begin.line;
  p.column = src.begin.column;
  return p;
}

const moni_config_api kApi = {sizeof(moni_config_api),
                              &cfg_type,
                              &cfg_get,
                              &cfg_size,
                              &cfg_at,
                              &cfg_string,
                              &cfg_integer,
                              &cfg_float,
                              &cfg_boolean,
                              &cfg_position};

}  // namespace

std::vector<GroupSpec> load_toml_rule_file(const std::string& path,
                                           std::vector<std::string>& errors) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    const auto& b = e.source().begin;
    errors.push_back(path + ":" + std::to_string(b.line) + ":" + std::to_string(b.column) +
                     ": rules: " + std::string(e.description()));
    return {};
  }
  ConfigReader r(ConfigView(&kApi, handle(&root)), "rules", false);
  auto groups = read_groups(r, "group");
  try {
    r.finish();
  } catch (const ConfigError& e) {
    std::string all = e.what();
    size_t s = 0;
    while (s <= all.size()) {
      size_t n = all.find('\n', s);
      if (n == std::string::npos) n = all.size();
      if (n > s) errors.push_back(all.substr(s, n - s));
      s = n + 1;
    }
  }
  return groups;
}

}  // namespace moni::rules
