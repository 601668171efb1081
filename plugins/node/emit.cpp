#include "emit.hpp"

namespace moni::node {

void add_sample(Batch& out, std::string_view metric, std::span<const LabelRef> labels,
                double value) {
  out.add(metric, labels, value);
}

void describe(Batch& out, std::string_view family, MetricType type, std::string_view help) {
  out.describe(family, type, help);
}

}  // namespace moni::node
