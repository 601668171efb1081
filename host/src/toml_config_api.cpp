#include "toml_config_api.hpp"

#include <deque>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

namespace moni::host {
namespace {

const toml::node* N(const moni_config_node* n) { return reinterpret_cast<const toml::node*>(n); }
moni_str S(std::string_view s) { return {s.data(), s.size()}; }

uint32_t type_of(const moni_config_node* n) {
  if (!n) return MONI_CFG_NONE;
  switch (N(n)->type()) {
    case toml::node_type::table: return MONI_CFG_TABLE;
    case toml::node_type::array: return MONI_CFG_ARRAY;
    case toml::node_type::string: return MONI_CFG_STRING;
    case toml::node_type::integer: return MONI_CFG_INTEGER;
    case toml::node_type::floating_point: return MONI_CFG_FLOAT;
    case toml::node_type::boolean: return MONI_CFG_BOOLEAN;
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time: return MONI_CFG_DATETIME;
    default: return MONI_CFG_NONE;
  }
}

const moni_config_node* get(const moni_config_node* t, moni_str key) {
  if (!t || !N(t)->is_table()) return nullptr;
  return to_config_node(N(t)->as_table()->get(std::string_view(key.ptr, key.len)));
}

size_t size_of(const moni_config_node* n) {
  if (!n) return 0;
  if (auto* t = N(n)->as_table()) return t->size();
  if (auto* a = N(n)->as_array()) return a->size();
  return 0;
}

const moni_config_node* at(const moni_config_node* n, size_t i, moni_str* key_out) {
  if (!n) return nullptr;
  if (auto* t = N(n)->as_table()) {
    if (i >= t->size()) return nullptr;
    auto it = std::next(t->begin(), static_cast<std::ptrdiff_t>(i));
    if (key_out) *key_out = S(it->first.str());
    return to_config_node(&it->second);
  }
  if (auto* a = N(n)->as_array()) return i < a->size() ? to_config_node(a->get(i)) : nullptr;
  return nullptr;
}

// Dates are rare in plugin configs; their text form is kept for the process
// lifetime so the returned view stays valid.
moni_str date_text(const toml::node* n) {
  static std::mutex mu;
  static std::deque<std::string> texts;
  std::ostringstream os;
  n->visit([&](auto&& v) {
    if constexpr (toml::is_date<decltype(v)> || toml::is_time<decltype(v)> ||
                  toml::is_date_time<decltype(v)>)
      os << v;
  });
  std::lock_guard lock(mu);
  texts.push_back(os.str());
  return S(texts.back());
}

moni_str as_string(const moni_config_node* n) {
  if (!n) return {nullptr, 0};
  if (auto* s = N(n)->as_string()) return S(s->get());
  if (type_of(n) == MONI_CFG_DATETIME) return date_text(N(n));
  return {"", 0};
}
int64_t as_integer(const moni_config_node* n) {
  if (auto* i = n ? N(n)->as_integer() : nullptr) return i->get();
  return 0;
}
double as_float(const moni_config_node* n) {
  if (!n) return 0;
  if (auto* f = N(n)->as_floating_point()) return f->get();
  if (auto* i = N(n)->as_integer()) return static_cast<double>(i->get());
  return 0;
}
int as_boolean(const moni_config_node* n) {
  if (auto* b = n ? N(n)->as_boolean() : nullptr) return b->get() ? 1 : 0;
  return 0;
}
moni_source_pos position(const moni_config_node* n) {
  moni_source_pos p{{"", 0}, 0, 0};
  if (!n) return p;
  const auto& src = N(n)->source();
  if (src.path) p.file = S(*src.path);
  p.line = src.begin.line;
  p.column = src.begin.column;
  return p;
}

const moni_config_api kApi = {sizeof(moni_config_api), &type_of, &get, &size_of, &at,
                              &as_string, &as_integer, &as_float, &as_boolean, &position};

}  // namespace

const moni_config_api* toml_config_api() { return &kApi; }

}  // namespace moni::host
