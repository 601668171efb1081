#include "importer.hpp"

#include <algorithm>
#include <fstream>
#include <moni/text_format.hpp>
#include <numeric>
#include <sstream>

namespace moni::tsdb {

using text::Format;
using text::ParsedSample;
using text::ParseOptions;
using text::Parser;

Result<uint64_t> import_text_file(Db& db, const std::string& path, int64_t default_ts_ms) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return make_error("lmdb_tsdb: import: cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  std::string body = ss.str();
  // OpenMetrics bodies end with "# EOF".
  std::string_view tail(body);
  while (!tail.empty() && (tail.back() == '\n' || tail.back() == '\r')) tail.remove_suffix(1);
  ParseOptions po;
  po.format = tail.size() >= 5 && tail.substr(tail.size() - 5) == "# EOF" ? Format::OpenMetrics
                                                                          : Format::Text;
  po.default_timestamp_ms = default_ts_ms;
  Parser parser;
  auto st = parser.parse(body, po);
  if (!st) return make_error("lmdb_tsdb: import: " + path + ": " + st.error().message);
  // Time order makes every series' samples ascending whatever the file order.
  std::vector<uint32_t> order(parser.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) {
    return parser.sample(a).timestamp_ms < parser.sample(b).timestamp_ms;
  });
  uint64_t appended = 0, rejected = 0;
  Batch b;
  for (const auto& m : parser.metadata()) b.describe(m.family, m.type, m.help, m.unit);
  auto flush = [&]() -> Result<void> {
    auto r = db.write(BatchView(b.view()));
    if (!r) return r.error();
    appended += r->appended;
    rejected += r->out_of_order + r->duplicate_rejected + r->invalid;
    b.clear();
    return {};
  };
  for (uint32_t i : order) {
    ParsedSample s = parser.sample(i);
    b.add_sorted(s.labels, s.value, s.timestamp_ms);
    if (b.size() >= 50000)
      if (auto r = flush(); !r) return r.error();
  }
  if (!b.empty() || !parser.metadata().empty())
    if (auto r = flush(); !r) return r.error();
  if (rejected > 0 && appended == 0)
    return make_error("lmdb_tsdb: import: all " + std::to_string(rejected) + " samples of " + path +
                      " were rejected (older than the stored data, or duplicates)");
  return appended;
}

}  // namespace moni::tsdb
