#include "overlay_queryable.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <set>

#include "promql/value.hpp"

namespace moni::rules {

bool labels_match(const Labels& ls, std::span<const Matcher> matchers) {
  for (const auto& m : matchers) {
    std::string_view v = promql::get_label(ls, m.name);
    bool ok = true;
    switch (m.type) {
      case MatchType::Equal:
        ok = v == m.value;
        break;
      case MatchType::NotEqual:
        ok = v != m.value;
        break;
      case MatchType::Regex:
      case MatchType::NotRegex: {
        RE2 re("^(?:" + m.value + ")$");
        bool hit = re.ok() && RE2::FullMatch(re2::StringPiece(v.data(), v.size()), re);
        ok = m.type == MatchType::Regex ? hit : !hit;
        break;
      }
    }
    if (!ok) return false;
  }
  return true;
}

void OverlayQueryable::add(const Labels& labels, double v) { fresh_[labels] = v; }

Result<void> OverlayQueryable::select(
    std::span<const Matcher> matchers, int64_t mint_ms, int64_t maxt_ms,
    const std::function<bool(Labels&&, std::vector<promql::Point>&&)>& fn) const {
  if (fresh_.empty() || t_ < mint_ms || t_ > maxt_ms)
    return base_.select(matchers, mint_ms, maxt_ms, fn);
  std::map<Labels, double> pending;
  for (const auto& [ls, v] : fresh_)
    if (labels_match(ls, matchers)) pending.emplace(ls, v);
  if (pending.empty()) return base_.select(matchers, mint_ms, maxt_ms, fn);
  bool stopped = false;
  auto r =
      base_.select(matchers, mint_ms, maxt_ms, [&](Labels&& ls, std::vector<promql::Point>&& pts) {
        auto it = pending.find(ls);
        if (it != pending.end()) {
          auto pos = std::lower_bound(pts.begin(), pts.end(), t_,
                                      [](const promql::Point& p, int64_t t) { return p.t < t; });
          if (pos != pts.end() && pos->t == t_)
            pos->v = it->second;
          else
            pts.insert(pos, promql::Point{t_, it->second});
          pending.erase(it);
        }
        if (!fn(std::move(ls), std::move(pts))) {
          stopped = true;
          return false;
        }
        return true;
      });
  if (!r || stopped) return r;
  for (auto& [ls, v] : pending) {
    Labels copy = ls;
    if (!fn(std::move(copy), {promql::Point{t_, v}})) break;
  }
  return {};
}

}  // namespace moni::rules
