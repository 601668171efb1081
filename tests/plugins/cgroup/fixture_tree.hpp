// Test helpers for the cgroup collector: a private copy of a fixture tree
// (so tests may delete cgroups from it and pin its mtimes), the collector's
// config for it, and a stable text rendering of a batch for golden files.
#pragma once

#include <string>
#include <vector>

#include "plugin_harness.hpp"

namespace cgroup_test {

/// A copy of tests/data/cgroup/<name> in a fresh temp directory, with every
/// file and directory mtime set to kMtime; removed on destruction.
class FixtureTree {
 public:
  static constexpr long kMtime = 1690000000;
  explicit FixtureTree(const std::string& name);
  ~FixtureTree();
  const std::string& dir() const { return dir_; }
  /// The plugin's TOML body pointing every path option into the copy.
  std::string config(const std::string& extra = "") const;

 private:
  std::string dir_;
};

/// "name{l="v",...} value" per sample, sorted, plus "# TYPE"/"# HELP" lines of
/// families that have samples.
std::string render(const moni::testing::OwnedBatch& b);

/// Compares `actual` with tests/data/cgroup/<file>; MONI_UPDATE_GOLDEN=1
/// rewrites the file instead.
void expect_golden(const std::string& file, const std::string& actual);

}  // namespace cgroup_test
