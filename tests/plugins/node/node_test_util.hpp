// Helpers shared by the node plugin's tests: load and start the plugin,
// collect, look up one value, read a file.
#pragma once

#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "plugin_harness.hpp"

namespace moni::node_test {

inline std::unique_ptr<moni::testing::PluginHarness> load(const std::string& toml) {
  auto h = moni::testing::PluginHarness::load(moni::testing::plugin_path("node"), toml);
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
  if (!h.ok()) return nullptr;
  auto p = std::move(h.value());
  auto s = p->start();
  EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
  return p;
}

inline moni::testing::OwnedBatch collect(moni::testing::PluginHarness& p, int64_t now_ms) {
  auto b = p.collect(now_ms);
  EXPECT_TRUE(b.ok()) << (b.ok() ? "" : b.error().message);
  return b.ok() ? std::move(b.value()) : moni::testing::OwnedBatch{};
}

/// The value of the one sample `name{k="v"}`; -1 (and a failure) if absent.
inline double value(const moni::testing::OwnedBatch& b, std::string_view name,
                    std::string_view k = {}, std::string_view v = {}) {
  const auto* s = b.one(name, k, v);
  EXPECT_NE(s, nullptr) << name << " " << k << "=" << v;
  return s ? s->value : -1;
}

inline std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

}  // namespace moni::node_test
