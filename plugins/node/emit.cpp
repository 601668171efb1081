#include "emit.hpp"

namespace moni::node {

void add_sample(Batch& out, std::string_view metric, std::span<const LabelRef> labels,
                double value) {
  // Almost every call passes its labels already in name order, unique and
  // non-empty: those go in as they are (Batch::add would copy, sort and
  // deduplicate them); anything else takes Batch::add's way.
  constexpr size_t kMax = 8;
  if (labels.size() < kMax) {
    LabelRef sorted[kMax];
    sorted[0] = {kMetricNameLabel, metric};
    size_t n = 1;
    bool plain = true;
    for (const LabelRef& l : labels) {
      if (l.value.empty() || !(sorted[n - 1].name < l.name)) {
        plain = false;
        break;
      }
      sorted[n++] = l;
    }
    if (plain) {
      out.add_sorted(std::span<const LabelRef>(sorted, n), value, out.default_timestamp());
      return;
    }
  }
  out.add(metric, labels, value);
}

void describe(Batch& out, std::string_view family, MetricType type, std::string_view help) {
  out.describe(family, type, help);
}

}  // namespace moni::node
