#include "storage_queryable.hpp"

#include <algorithm>

namespace moni::promql {

Result<void> StorageQueryable::select(
    std::span<const Matcher> matchers, int64_t mint, int64_t maxt,
    const std::function<bool(Labels&&, std::vector<Point>&&)>& fn) const {
  return c_.select(matchers, mint, maxt, true, [&](const SeriesView& s) {
    Labels ls;
    ls.reserve(s.labels.size());
    for (const auto& l : s.labels)
      ls.push_back({std::string(sv(l.name)), std::string(sv(l.value))});
    std::sort(ls.begin(), ls.end());
    std::vector<Point> pts(s.timestamps_ms.size());
    for (size_t i = 0; i < pts.size(); ++i) pts[i] = {s.timestamps_ms[i], s.values[i]};
    return fn(std::move(ls), std::move(pts));
  });
}

}  // namespace moni::promql
