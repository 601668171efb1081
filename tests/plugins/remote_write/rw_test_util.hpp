// Small helpers shared by the remote_write test files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <string>

#include "plugin_harness.hpp"
#include "rw_test_support.hpp"

namespace rwtest {

/// A fresh data directory, removed at scope exit.
struct TempDir {
  std::string path;
  TempDir() {
    static std::atomic<int> n{0};
    path = (std::filesystem::temp_directory_path() /
            ("moni-rw-" + std::to_string(getpid()) + "-" + std::to_string(n++)))
               .string();
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

/// An endpoint table named "ep" with test-friendly timings.
inline std::string endpoint(const std::string& url, const std::string& extra = "") {
  return "[[endpoints]]\nname = \"ep\"\nurl = \"" + url +
         "\"\nbatch_send_deadline = \"50ms\"\nmin_backoff = \"20ms\"\nmax_backoff = \"200ms\"\n"
         "remote_timeout = \"5s\"\n" +
         extra;
}

inline std::unique_ptr<moni::testing::PluginHarness> load(const std::string& toml,
                                                          const std::string& data_dir) {
  auto h = moni::testing::PluginHarness::load(moni::testing::plugin_path("remote_write"), toml,
                                              "rw", data_dir);
  EXPECT_TRUE(h.ok()) << (h.ok() ? "" : h.error().message);
  if (!h.ok()) return nullptr;
  auto p = std::move(*h);
  auto r = p->start();
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return p;
}

inline double metric(moni::testing::PluginHarness& h, const std::string& name,
                     const std::string& ep = "ep") {
  auto b = h.self_metrics();
  const auto* s = b.one(name, "endpoint", ep);
  return s ? s->value : std::nan("");
}

}  // namespace rwtest
