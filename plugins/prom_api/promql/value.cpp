#include "value.hpp"

#include <moni/text_format.hpp>

#include <algorithm>

namespace moni::promql {

std::string_view get_label(const Labels& ls, std::string_view name) {
  for (const auto& l : ls)
    if (l.name == name) return l.value;
  return {};
}

bool has_label(const Labels& ls, std::string_view name) {
  for (const auto& l : ls)
    if (l.name == name) return true;
  return false;
}

Labels drop_metric_name(const Labels& ls) {
  Labels out;
  out.reserve(ls.size());
  for (const auto& l : ls)
    if (l.name != kMetricNameLabel) out.push_back(l);
  return out;
}

void set_label(Labels& ls, std::string_view name, std::string_view value) {
  auto it = std::lower_bound(ls.begin(), ls.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  bool found = it != ls.end() && it->name == name;
  if (value.empty()) {
    if (found) ls.erase(it);
    return;
  }
  if (found)
    it->value = std::string(value);
  else
    ls.insert(it, Label{std::string(name), std::string(value)});
}

std::string labels_key(const Labels& ls) {
  std::string k;
  for (const auto& l : ls) {
    k += l.name;
    k.push_back('\xff');
    k += l.value;
    k.push_back('\xff');
  }
  return k;
}

std::string labels_string(const Labels& ls) {
  std::string s = "{";
  for (size_t i = 0; i < ls.size(); ++i) {
    if (i) s += ", ";
    s += ls[i].name + "=\"" + ls[i].value + "\"";
  }
  return s + "}";
}

bool valid_label_name(std::string_view s) { return moni::text::valid_label_name(s); }

}  // namespace moni::promql
