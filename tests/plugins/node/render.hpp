// Renders a collected batch as sorted text lines for golden comparison.
#pragma once

#include "plugin_harness.hpp"

#include <set>
#include <string>

namespace moni::node_test {

/// One line per sample ("name{a="x",b="y"} value") and per family
/// ("# TYPE name type", "# HELP name text"), sorted. Values of families in
/// `masked` print as "*"; families in `masked_labels` print without labels.
std::string render(const moni::testing::OwnedBatch& b, const std::set<std::string>& masked,
                   const std::set<std::string>& masked_labels);

}  // namespace moni::node_test
