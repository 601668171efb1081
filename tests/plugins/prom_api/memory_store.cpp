#include "memory_store.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <moni/storage.hpp>
#include <set>
#include <sstream>

#include "promql/value.hpp"

namespace moni::promql::test_support {
namespace {

bool match_one(const Matcher& m, std::string_view v) {
  switch (m.type) {
    case MatchType::Equal:
      return v == m.value;
    case MatchType::NotEqual:
      return v != m.value;
    case MatchType::Regex:
    case MatchType::NotRegex: {
      RE2 re("^(?:" + m.value + ")$", RE2::Quiet);
      bool ok = RE2::FullMatch(re2::StringPiece(v.data(), v.size()), re);
      return m.type == MatchType::Regex ? ok : !ok;
    }
  }
  return false;
}

// A cursor over a snapshot of matching series for the C reader.
struct Cursor {
  std::vector<std::pair<Labels, std::vector<Point>>> rows;
  size_t i = 0;
  std::vector<moni_label> labels;
  std::vector<int64_t> ts;
  std::vector<double> vs;
};

const MemoryStore* store(void* self) { return static_cast<const MemoryStore*>(self); }

int r_select(void* self, const moni_matcher* m, size_t n, int64_t mint, int64_t maxt, int samples,
             moni_series_cursor** out, moni_error*) {
  auto ms = from_abi(m, n);
  auto c = std::make_unique<Cursor>();
  (void)store(self)->select(ms, mint, maxt, [&](Labels&& ls, std::vector<Point>&& pts) {
    if (!samples) pts.clear();
    c->rows.emplace_back(std::move(ls), std::move(pts));
    return true;
  });
  *out = reinterpret_cast<moni_series_cursor*>(c.release());
  return MONI_OK;
}
int r_next(moni_series_cursor* cur, moni_series_view* out, moni_error*) {
  auto* c = reinterpret_cast<Cursor*>(cur);
  if (c->i >= c->rows.size()) return 0;
  auto& [ls, pts] = c->rows[c->i++];
  c->labels.clear();
  for (const auto& l : ls) c->labels.push_back({ms(l.name), ms(l.value)});
  c->ts.clear();
  c->vs.clear();
  for (const auto& p : pts) {
    c->ts.push_back(p.t);
    c->vs.push_back(p.v);
  }
  *out = moni_series_view{};
  out->labels = c->labels.data();
  out->label_count = static_cast<uint32_t>(c->labels.size());
  out->timestamps_ms = c->ts.data();
  out->values = c->vs.data();
  out->sample_count = static_cast<uint32_t>(c->ts.size());
  return 1;
}
void r_close(moni_series_cursor* cur) { delete reinterpret_cast<Cursor*>(cur); }
int r_names(void* self, const moni_matcher* m, size_t n, int64_t mint, int64_t maxt, moni_str_fn fn,
            void* user, moni_error*) {
  auto ms_ = from_abi(m, n);
  for (const auto& s : store(self)->label_names(ms_, mint, maxt)) fn(user, ms(s));
  return MONI_OK;
}
int r_values(void* self, moni_str name, const moni_matcher* m, size_t n, int64_t mint, int64_t maxt,
             moni_str_fn fn, void* user, moni_error*) {
  auto ms_ = from_abi(m, n);
  for (const auto& s : store(self)->label_values(sv(name), ms_, mint, maxt)) fn(user, ms(s));
  return MONI_OK;
}
int r_metadata(void*, moni_str, moni_metadata_fn, void*, moni_error*) { return MONI_OK; }

double parse_value(const std::string& s) {
  if (s == "NaN") return NAN;
  if (s == "+Inf" || s == "Inf") return INFINITY;
  if (s == "-Inf") return -INFINITY;
  return std::strtod(s.c_str(), nullptr);
}

}  // namespace

MemoryStore::MemoryStore() {
  reader_ = moni_storage_reader{sizeof(moni_storage_reader),
                                this,
                                &r_select,
                                &r_next,
                                &r_close,
                                &r_names,
                                &r_values,
                                &r_metadata};
}

void MemoryStore::add(const Labels& labels, int64_t t, double v) {
  Labels ls = labels;
  std::sort(ls.begin(), ls.end());
  series_[ls].push_back(Point{t, v});
}

bool MemoryStore::matches(const Labels& ls, std::span<const Matcher> ms) const {
  for (const auto& m : ms)
    if (!match_one(m, get_label(ls, m.name))) return false;
  return true;
}

Result<void> MemoryStore::select(
    std::span<const Matcher> matchers, int64_t mint, int64_t maxt,
    const std::function<bool(Labels&&, std::vector<Point>&&)>& fn) const {
  for (const auto& [ls, pts] : series_) {
    if (!matches(ls, matchers)) continue;
    auto lo = std::lower_bound(pts.begin(), pts.end(), mint,
                               [](const Point& p, int64_t t) { return p.t < t; });
    auto hi =
        std::upper_bound(lo, pts.end(), maxt, [](int64_t t, const Point& p) { return t < p.t; });
    if (lo == hi) continue;
    Labels copy = ls;
    if (!fn(std::move(copy), std::vector<Point>(lo, hi))) break;
  }
  return {};
}

std::vector<std::string> MemoryStore::label_names(std::span<const Matcher> matchers, int64_t mint,
                                                  int64_t maxt) const {
  std::set<std::string> out;
  (void)select(matchers, mint, maxt, [&](Labels&& ls, std::vector<Point>&&) {
    for (const auto& l : ls) out.insert(l.name);
    return true;
  });
  return {out.begin(), out.end()};
}

std::vector<std::string> MemoryStore::label_values(std::string_view name,
                                                   std::span<const Matcher> matchers, int64_t mint,
                                                   int64_t maxt) const {
  std::set<std::string> out;
  (void)select(matchers, mint, maxt, [&](Labels&& ls, std::vector<Point>&&) {
    auto v = get_label(ls, name);
    if (!v.empty()) out.insert(std::string(v));
    return true;
  });
  return {out.begin(), out.end()};
}

size_t MemoryStore::load_openmetrics(const std::string& text) {
  std::istringstream in(text);
  std::string line;
  size_t n = 0;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    Labels ls;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
    ls.push_back({std::string(kMetricNameLabel), line.substr(0, i)});
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (line[i] != '}') {
        size_t eq = line.find('=', i);
        std::string name = line.substr(i, eq - i);
        size_t j = eq + 2;
        std::string val;
        while (line[j] != '"') {
          if (line[j] == '\\') {
            ++j;
            val.push_back(line[j] == 'n' ? '\n' : line[j]);
          } else {
            val.push_back(line[j]);
          }
          ++j;
        }
        ls.push_back({name, val});
        i = j + 1;
        if (line[i] == ',') ++i;
      }
      ++i;
    }
    std::istringstream rest(line.substr(i));
    std::string v, t;
    rest >> v >> t;
    double secs = std::strtod(t.c_str(), nullptr);
    // Prometheus truncates: int64(ts * 1000).
    add(ls, static_cast<int64_t>(secs * 1000), parse_value(v));
    ++n;
  }
  return n;
}

}  // namespace moni::promql::test_support
