// What the lmdb_tsdb tests share: a temporary directory, and every sample
// of a database dumped by label set and compared bit for bit.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <bit>
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tsdb.hpp"

namespace tsdb_test {

constexpr int64_t kT0 = 1700000000000;

/// A fresh directory under the system's temporary directory, removed with
/// everything in it at the end; named by the tag, the process and a count.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag = "db") {
    static int count = 0;
    path = std::filesystem::temp_directory_path() /
           ("lmdb_tsdb_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(count++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string str() const { return path.string(); }
};

/// All samples of every series, by label set ("n=v,n=v").
using Dump = std::map<std::string, std::pair<std::vector<int64_t>, std::vector<double>>>;

inline Dump dump(moni::tsdb::Db& db) {
  Dump out;
  auto c = db.select(std::vector<moni::Matcher>{}, INT64_MIN, INT64_MAX, true);
  EXPECT_TRUE(c.ok());
  if (!c.ok()) return out;
  moni_series_view v{};
  for (;;) {
    auto r = (*c)->next(v);
    EXPECT_TRUE(r.ok());
    if (!r.ok() || !*r) break;
    std::string key;
    for (uint32_t i = 0; i < v.label_count; ++i)
      key += (i ? "," : "") + std::string(moni::sv(v.labels[i].name)) + "=" +
             std::string(moni::sv(v.labels[i].value));
    auto& e = out[key];
    e.first.assign(v.timestamps_ms, v.timestamps_ms + v.sample_count);
    e.second.assign(v.values, v.values + v.sample_count);
  }
  return out;
}

/// Equal bit for bit (NaN payloads included).
inline bool same(const Dump& a, const Dump& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [k, e] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second.first != e.first || it->second.second.size() != e.second.size())
      return false;
    for (size_t i = 0; i < e.second.size(); ++i)
      if (std::bit_cast<uint64_t>(e.second[i]) != std::bit_cast<uint64_t>(it->second.second[i]))
        return false;
  }
  return true;
}

}  // namespace tsdb_test
