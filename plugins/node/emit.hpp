// Out-of-line wrappers of Batch::add/describe. Batch::add is inline and
// sorts labels; called directly from ~60 places it is inlined ~60 times.
// One copy keeps the plugin's code, and so its resident memory, small.
#pragma once

#include <moni/batch.hpp>

#include <initializer_list>
#include <span>
#include <string_view>

namespace moni::node {

void add_sample(Batch& out, std::string_view metric, std::span<const LabelRef> labels,
                double value);
inline void add_sample(Batch& out, std::string_view metric,
                       std::initializer_list<LabelRef> labels, double value) {
  add_sample(out, metric, std::span<const LabelRef>(labels.begin(), labels.size()), value);
}
void describe(Batch& out, std::string_view family, MetricType type, std::string_view help);

}  // namespace moni::node
