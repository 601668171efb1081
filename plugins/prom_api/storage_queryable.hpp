// The PromQL engine's view of a moni storage instance (StorageClient as a
// promql::Queryable), shared by prom_api and the rules plugin.
#pragma once

#include <moni/storage.hpp>

#include "promql/queryable.hpp"

namespace moni::promql {

/// Thread-safety: StorageClient is safe from any thread, and this adds no state.
class StorageQueryable : public Queryable {
 public:
  explicit StorageQueryable(StorageClient c) : c_(c) {}
  Result<void> select(std::span<const Matcher> matchers, int64_t mint, int64_t maxt,
                      const std::function<bool(Labels&&, std::vector<Point>&&)>& fn) const override;

 private:
  StorageClient c_;
};

}  // namespace moni::promql
