#include "exposition_text.hpp"

#include <charconv>
#include <cmath>
#include <map>
#include <moni/sample.hpp>
#include <set>
#include <string_view>
#include <vector>

namespace moni::host {
namespace {

std::string_view text_type(uint32_t t) {
  switch (t) {
    case MONI_METRIC_COUNTER:
      return "counter";
    case MONI_METRIC_GAUGE:
    case MONI_METRIC_INFO:
    case MONI_METRIC_STATESET:
      return "gauge";
    case MONI_METRIC_HISTOGRAM:
      return "histogram";
    case MONI_METRIC_SUMMARY:
      return "summary";
    default:
      return "untyped";
  }
}

void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void append_escaped(std::string& out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (quote && c == '"')
      out += "\\\"";
    else
      out += c;
  }
}

}  // namespace

std::string render_prometheus_text(const moni_batch& batch) {
  std::map<std::string_view, const moni_metadata*> meta;
  for (size_t i = 0; i < batch.metadata_count; ++i)
    meta.emplace(sv(batch.metadata[i].family), &batch.metadata[i]);

  // Family of each sample: its own name, or the base of a histogram or
  // summary series (_bucket, _sum, _count).
  auto family_of = [&](std::string_view name) -> std::string_view {
    if (meta.count(name)) return name;
    for (std::string_view suf : {"_bucket", "_sum", "_count"}) {
      if (name.size() > suf.size() && name.ends_with(suf)) {
        std::string_view base = name.substr(0, name.size() - suf.size());
        auto it = meta.find(base);
        if (it != meta.end() &&
            (it->second->type == MONI_METRIC_HISTOGRAM || it->second->type == MONI_METRIC_SUMMARY))
          return base;
      }
    }
    return name;
  };
  std::vector<std::string_view> order;
  std::map<std::string_view, std::vector<const moni_sample*>> groups;
  for (size_t i = 0; i < batch.sample_count; ++i) {
    const moni_sample& s = batch.samples[i];
    std::string_view fam = family_of(find_label(s.labels, s.label_count, kMetricNameLabel));
    if (fam.empty()) continue;
    auto& g = groups[fam];
    if (g.empty()) order.push_back(fam);
    g.push_back(&s);
  }
  std::string out;
  for (std::string_view fam : order) {
    auto it = meta.find(fam);
    if (it != meta.end() && it->second->help.len) {
      out.append("# HELP ").append(fam).append(" ");
      append_escaped(out, sv(it->second->help), false);
      out += '\n';
    }
    out.append("# TYPE ").append(fam).append(" ");
    out.append(text_type(it == meta.end() ? uint32_t{MONI_METRIC_UNKNOWN} : it->second->type))
        .append("\n");
    std::set<std::string> seen;
    for (const moni_sample* s : groups[fam]) {
      std::string line(find_label(s->labels, s->label_count, kMetricNameLabel));
      bool first = true;
      for (uint32_t j = 0; j < s->label_count; ++j) {
        std::string_view n = sv(s->labels[j].name);
        if (n == kMetricNameLabel) continue;
        line += first ? '{' : ',';
        first = false;
        line.append(n).append("=\"");
        append_escaped(line, sv(s->labels[j].value), true);
        line += '"';
      }
      if (!first) line += '}';
      if (!seen.insert(line).second) continue;  // a series is exposed once
      line += ' ';
      append_value(line, s->value);
      out.append(line).append("\n");
    }
  }
  return out;
}

}  // namespace moni::host
