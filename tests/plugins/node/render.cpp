#include "render.hpp"

#include <algorithm>
#include <cstdio>
#include <vector>

namespace moni::node_test {

std::string render(const moni::testing::OwnedBatch& b, const std::set<std::string>& masked,
                   const std::set<std::string>& masked_labels) {
  std::vector<std::string> lines;
  for (const auto& m : b.metadata) {
    lines.push_back("# HELP " + m.family + " " + m.help);
    lines.push_back("# TYPE " + m.family + " " +
                    (m.type == moni::MetricType::Unknown ? std::string("untyped")
                                                         : std::string(moni::type_name(m.type))));
  }
  for (const auto& s : b.samples) {
    std::string name = s.name();
    std::string line = name;
    if (masked_labels.count(name)) {
      line += "{...}";
    } else {
      std::string labels;
      for (const auto& l : s.labels) {
        if (l.name == "__name__") continue;
        labels += (labels.empty() ? "" : ",") + l.name + "=\"";
        for (char c : l.value) {
          if (c == '\t') labels += "\\t";
          else if (c == '"' || c == '\\') labels += std::string("\\") + c;
          else labels += c;
        }
        labels += "\"";
      }
      if (!labels.empty()) line += "{" + labels + "}";
    }
    char v[64];
    std::snprintf(v, sizeof v, "%.17g", s.value);
    line += " ";
    line += masked.count(name) ? "*" : v;
    lines.push_back(line);
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l + "\n";
  return out;
}

}  // namespace moni::node_test
