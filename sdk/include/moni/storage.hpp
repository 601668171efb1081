// The storage query interface: label matchers, StorageClient (how outputs
// such as the query API read a storage instance) and SeriesCursor (what a
// storage plugin implements for a selection).
#pragma once

#include <moni/plugin_abi.h>
#include <moni/result.hpp>
#include <moni/sample.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moni {

enum class MatchType : uint32_t {
  Equal = MONI_MATCH_EQUAL,
  NotEqual = MONI_MATCH_NOT_EQUAL,
  Regex = MONI_MATCH_REGEX,
  NotRegex = MONI_MATCH_NOT_REGEX,
};

/// A label matcher as in `{job=~"node.*"}`. Regexes are fully anchored RE2.
/// A label that is absent has the value "" for matching, as in Prometheus.
struct Matcher {
  MatchType type = MatchType::Equal;
  std::string name;
  std::string value;
};

/// One selected series: labels and samples in the requested range.
/// Thread-safety: a view, valid until the cursor advances.
struct SeriesView {
  std::span<const moni_label> labels;
  std::span<const int64_t> timestamps_ms;
  std::span<const double> values;
  std::string_view label(std::string_view name) const {
    return find_label(labels.data(), static_cast<uint32_t>(labels.size()), name);
  }
};

/// A storage plugin's answer to select(): yields series one at a time.
/// Thread-safety: used by one thread at a time.
class SeriesCursor {
 public:
  virtual ~SeriesCursor() = default;
  /// true and fills `out`; false at the end; Error on failure.
  virtual Result<bool> next(moni_series_view& out) = 0;
};

/// Reads a storage instance through the ABI reader. Thread-safety: safe from
/// any thread (the storage synchronizes).
class StorageClient {
 public:
  explicit StorageClient(const moni_storage_reader* r) : r_(r) {}

  /// Calls `fn` for each matching series; stop early by returning false.
  Result<void> select(std::span<const Matcher> matchers, int64_t mint_ms, int64_t maxt_ms,
                      bool with_samples, const std::function<bool(const SeriesView&)>& fn) const {
    auto m = to_abi(matchers);
    moni_error err{};
    moni_series_cursor* cur = nullptr;
    if (r_->select(r_->self, m.data(), m.size(), mint_ms, maxt_ms, with_samples ? 1 : 0, &cur,
                   &err) != MONI_OK)
      return make_error(err.message);
    std::unique_ptr<moni_series_cursor, void (*)(moni_series_cursor*)> guard(cur, r_->close);
    for (;;) {
      moni_series_view v{};
      int rc = r_->next(cur, &v, &err);
      if (rc == MONI_ERR) return make_error(err.message);
      if (rc == 0) return {};
      SeriesView sv{{v.labels, v.label_count},
                    {v.timestamps_ms, v.sample_count},
                    {v.values, v.sample_count}};
      if (!fn(sv)) return {};
    }
  }
  Result<std::vector<std::string>> label_names(std::span<const Matcher> matchers, int64_t mint_ms,
                                               int64_t maxt_ms) const {
    auto m = to_abi(matchers);
    std::vector<std::string> out;
    moni_error err{};
    if (r_->label_names(r_->self, m.data(), m.size(), mint_ms, maxt_ms, &collect_str, &out,
                        &err) != MONI_OK)
      return make_error(err.message);
    return out;
  }
  Result<std::vector<std::string>> label_values(std::string_view name,
                                                std::span<const Matcher> matchers,
                                                int64_t mint_ms, int64_t maxt_ms) const {
    auto m = to_abi(matchers);
    std::vector<std::string> out;
    moni_error err{};
    if (r_->label_values(r_->self, ms(name), m.data(), m.size(), mint_ms, maxt_ms, &collect_str,
                         &out, &err) != MONI_OK)
      return make_error(err.message);
    return out;
  }
  /// Metadata of `family`, or of all families when empty.
  Result<std::vector<Metadata>> metadata(std::string_view family = {}) const {
    std::vector<Metadata> out;
    moni_error err{};
    if (r_->metadata(r_->self, ms(family), &collect_meta, &out, &err) != MONI_OK)
      return make_error(err.message);
    return out;
  }

 private:
  static std::vector<moni_matcher> to_abi(std::span<const Matcher> ms_) {
    std::vector<moni_matcher> m;
    m.reserve(ms_.size());
    for (const auto& x : ms_) m.push_back({static_cast<uint32_t>(x.type), ms(x.name), ms(x.value)});
    return m;
  }
  static int collect_str(void* user, moni_str s) {
    static_cast<std::vector<std::string>*>(user)->emplace_back(sv(s));
    return MONI_OK;
  }
  static int collect_meta(void* user, const moni_metadata* m) {
    static_cast<std::vector<Metadata>*>(user)->push_back(
        {std::string(sv(m->family)), static_cast<MetricType>(m->type), std::string(sv(m->help)),
         std::string(sv(m->unit))});
    return MONI_OK;
  }

  const moni_storage_reader* r_;
};

/// Matchers received over the ABI, as owning C++ values.
inline std::vector<Matcher> from_abi(const moni_matcher* m, size_t n) {
  std::vector<Matcher> out;
  out.reserve(n);
  for (size_t i = 0; i < n; ++i)
    out.push_back({static_cast<MatchType>(m[i].type), std::string(sv(m[i].name)),
                   std::string(sv(m[i].value))});
  return out;
}

}  // namespace moni
