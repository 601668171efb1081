// The read side: postings lookups for label matchers, the series cursor
// that loads labels and samples one series at a time, label names/values
// and metadata. Every call uses its own LMDB read transaction.
#include <algorithm>
#include <set>

#include "label_matcher.hpp"
#include "label_set.hpp"
#include "lmdb_keys.hpp"
#include "metadata_record.hpp"
#include "tsdb.hpp"

namespace moni::tsdb {

namespace {

// Appends the ids under one posting key.
int read_postings(MDB_cursor* cur, MDB_val& key, std::vector<uint32_t>& out) {
  MDB_val v;
  int rc = mdb_cursor_get(cur, &key, &v, MDB_SET);
  if (rc) return rc;
  rc = mdb_cursor_get(cur, &key, &v, MDB_GET_MULTIPLE);
  while (rc == 0) {
    const char* p = static_cast<const char*>(v.mv_data);
    for (size_t i = 0; i + 4 <= v.mv_size; i += 4) out.push_back(get_be32(p + i));
    rc = mdb_cursor_get(cur, &key, &v, MDB_NEXT_MULTIPLE);
  }
  return rc == MDB_NOTFOUND ? 0 : rc;
}

void sort_unique(std::vector<uint32_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// Resolves the real value behind a truncated posting key from one series.
std::string resolve_value(MDB_txn* txn, const Db::Dbis& d, MDB_cursor* pc, MDB_val key,
                          std::string_view name) {
  std::vector<uint32_t> ids;
  if (read_postings(pc, key, ids) || ids.empty()) return {};
  IdKey ik(ids[0]);
  MDB_val k = ik.val(), v;
  if (mdb_get(txn, d.series, &k, &v)) return {};
  std::vector<moni_label> ls;
  if (!decode_labels(sview(v), ls)) return {};
  for (auto& l : ls)
    if (sv(l.name) == name) return std::string(sv(l.value));
  return {};
}

// Calls fn(value, key) for each posting key of `name`; fn returns false to
// stop. Truncated keys are resolved to the full value.
template <class F>
int scan_values(MDB_txn* txn, const Db::Dbis& d, std::string_view name, F&& fn) {
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open(txn, d.postings, &cur);
  if (rc) return rc;
  MDB_cursor* pc = nullptr;
  mdb_cursor_open(txn, d.postings, &pc);
  std::string prefix(name);
  prefix.push_back('\0');
  MDB_val k = mval(prefix), v;
  for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT_NODUP)) {
    std::string_view key = sview(k);
    if (key.substr(0, prefix.size()) != prefix) break;
    std::string_view n, val;
    bool trunc;
    if (!split_posting_key(key, n, val, trunc)) continue;
    std::string full;
    if (trunc) {
      full = resolve_value(txn, d, pc, k, name);
      val = full;
    }
    if (!fn(val, k, pc)) break;
  }
  mdb_cursor_close(pc);
  mdb_cursor_close(cur);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

// Series ids that may match all matchers (a superset: the cursor checks
// every matcher against the series' labels).
int candidates(MDB_txn* txn, const Db::Dbis& d, const std::vector<LabelMatcher>& ms,
               std::vector<uint32_t>& out) {
  bool have = false;
  std::vector<uint32_t> sub, set, tmp;
  int rc;
  MDB_cursor* pc = nullptr;
  if ((rc = mdb_cursor_open(txn, d.postings, &pc))) return rc;
  std::string key;
  for (const auto& m : ms) {
    set.clear();
    if (!m.matches_empty()) {
      if (m.type() == MatchType::Equal) {
        posting_key(m.name(), m.value(), key);
        MDB_val k = mval(key);
        rc = read_postings(pc, k, set);
        if (rc == MDB_NOTFOUND) rc = 0;  // no such label value: no series match
        if (rc) break;
      } else {
        rc = scan_values(txn, d, m.name(), [&](std::string_view val, MDB_val k, MDB_cursor* c) {
          if (m.matches(val)) read_postings(c, k, set);
          return true;
        });
        if (rc) break;
      }
      sort_unique(set);
      if (!have) {
        out.swap(set);
        have = true;
      } else {
        tmp.clear();
        std::set_intersection(out.begin(), out.end(), set.begin(), set.end(),
                              std::back_inserter(tmp));
        out.swap(tmp);
      }
      if (out.empty()) break;
    } else if (m.type() != MatchType::Equal || !m.value().empty()) {
      // Matches the empty string: exclude series whose value does not match.
      rc = scan_values(txn, d, m.name(), [&](std::string_view val, MDB_val k, MDB_cursor* c) {
        if (!m.matches(val)) read_postings(c, k, sub);
        return true;
      });
      if (rc) break;
    } else {
      // name="" : exclude every series that has the label.
      rc = scan_values(txn, d, m.name(), [&](std::string_view, MDB_val k, MDB_cursor* c) {
        read_postings(c, k, sub);
        return true;
      });
      if (rc) break;
    }
    rc = 0;
  }
  mdb_cursor_close(pc);
  if (rc) return rc;
  if (!have) {
    MDB_cursor* cur = nullptr;
    if ((rc = mdb_cursor_open(txn, d.series, &cur))) return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
      out.push_back(get_be32(k.mv_data));
    mdb_cursor_close(cur);
    if (rc != MDB_NOTFOUND) return rc;
  }
  if (!sub.empty()) {
    sort_unique(sub);
    tmp.clear();
    std::set_difference(out.begin(), out.end(), sub.begin(), sub.end(), std::back_inserter(tmp));
    out.swap(tmp);
  }
  return 0;
}

bool labels_match(const std::vector<moni_label>& ls, const std::vector<LabelMatcher>& ms) {
  for (const auto& m : ms) {
    std::string_view v;
    for (const auto& l : ls)
      if (sv(l.name) == m.name()) v = sv(l.value);
    if (!m.matches(v)) return false;
  }
  return true;
}

// The selection cursor: series ids are resolved up front, then each next()
// loads one series in a short read transaction.
class TsdbCursor : public SeriesCursor {
 public:
  TsdbCursor(Db& db, std::vector<LabelMatcher> ms, std::vector<uint32_t> ids, int64_t mint,
             int64_t maxt, bool with_samples)
      : db_(db),
        ms_(std::move(ms)),
        ids_(std::move(ids)),
        mint_(mint),
        maxt_(maxt),
        with_samples_(with_samples) {}

  Result<bool> next(moni_series_view& out) override {
    const auto& d = db_.dbis();
    while (pos_ < ids_.size()) {
      uint32_t id = ids_[pos_++];
      auto rt = db_.begin_read_with_head(id, mint_, maxt_, head_ts_, head_vs_);
      if (!rt) return rt.error();
      MDB_txn* txn = (*rt)->txn;
      MDB_cursor* cc = nullptr;
      int rc = mdb_cursor_open(txn, d.chunks, &cc);
      if (rc) return make_error(std::string("lmdb_tsdb: cursor: ") + mdb_strerror(rc));
      struct Closer {
        MDB_cursor* c;
        ~Closer() { mdb_cursor_close(c); }
      } closer{cc};
      IdKey ik(id);
      MDB_val k = ik.val(), v;
      if (mdb_get(txn, d.series, &k, &v)) continue;  // deleted meanwhile
      label_bytes_.assign(static_cast<const char*>(v.mv_data), v.mv_size);
      if (!decode_labels(label_bytes_, labels_) || !labels_match(labels_, ms_)) continue;
      ts_.clear();
      vs_.clear();
      bool any = false;
      // Closed chunks overlapping [mint, maxt]: start at the last chunk
      // beginning at or before mint.
      ChunkKey ck(id, mint_);
      k = ck.val();
      rc = mdb_cursor_get(cc, &k, &v, MDB_SET_RANGE);
      if (rc == 0 && !(chunk_key_id(k) == id && chunk_key_t0(k) == mint_)) {
        MDB_val pk, pv;
        if (mdb_cursor_get(cc, &pk, &pv, MDB_PREV) == 0 && chunk_key_id(pk) == id) {
          k = pk;
          v = pv;
        } else {
          k = ck.val();
          rc = mdb_cursor_get(cc, &k, &v, MDB_SET_RANGE);
        }
      } else if (rc == MDB_NOTFOUND) {
        rc = mdb_cursor_get(cc, &k, &v, MDB_LAST);
        if (rc == 0 && chunk_key_id(k) != id) rc = MDB_NOTFOUND;
      }
      for (;
           rc == 0 && chunk_key_id(k) == id && chunk_key_t0(k) <= maxt_ && !(any && !with_samples_);
           rc = mdb_cursor_get(cc, &k, &v, MDB_NEXT))
        any |= add_chunk(chunk_key_t0(k), sview(v));
      if (!any || with_samples_) {
        // The head lives in memory; samples the read transaction already
        // saw in a just-cut chunk are skipped.
        int64_t seen = ts_.empty() ? INT64_MIN : ts_.back();
        auto lo = std::upper_bound(head_ts_.begin(), head_ts_.end(), seen) - head_ts_.begin();
        if (ts_.empty()) lo = 0;
        if (lo < static_cast<std::ptrdiff_t>(head_ts_.size())) {
          any = true;
          if (with_samples_) {
            ts_.insert(ts_.end(), head_ts_.begin() + lo, head_ts_.end());
            vs_.insert(vs_.end(), head_vs_.begin() + lo, head_vs_.end());
          }
        }
      }
      if (!any) continue;
      out.labels = labels_.data();
      out.label_count = static_cast<uint32_t>(labels_.size());
      out.timestamps_ms = with_samples_ ? ts_.data() : nullptr;
      out.values = with_samples_ ? vs_.data() : nullptr;
      out.sample_count = with_samples_ ? ts_.size() : 0;
      return true;
    }
    return false;
  }

 private:
  // Adds the chunk's samples in range; true when it has any.
  bool add_chunk(int64_t t0, std::string_view blob, int64_t after = INT64_MIN) {
    ChunkInfo ci;
    if (!chunk_info(t0, blob, ci) || ci.maxt < mint_ || t0 > maxt_) return false;
    if (!with_samples_ && t0 >= mint_ && ci.maxt <= maxt_ && t0 > after) return true;
    tmp_ts_.clear();
    tmp_vs_.clear();
    if (!decode_chunk(t0, blob, tmp_ts_, tmp_vs_)) return false;
    int64_t from = after == INT64_MAX ? INT64_MAX
                                      : std::max(mint_, after == INT64_MIN ? INT64_MIN : after + 1);
    auto lo = std::lower_bound(tmp_ts_.begin(), tmp_ts_.end(), from) - tmp_ts_.begin();
    auto hi = std::upper_bound(tmp_ts_.begin(), tmp_ts_.end(), maxt_) - tmp_ts_.begin();
    if (lo >= hi) return false;
    if (with_samples_) {
      // Chunks never overlap (appends are in order), so this stays sorted.
      ts_.insert(ts_.end(), tmp_ts_.begin() + lo, tmp_ts_.begin() + hi);
      vs_.insert(vs_.end(), tmp_vs_.begin() + lo, tmp_vs_.begin() + hi);
    }
    return true;
  }

  Db& db_;
  std::vector<LabelMatcher> ms_;
  std::vector<uint32_t> ids_;
  size_t pos_ = 0;
  int64_t mint_, maxt_;
  bool with_samples_;
  std::string label_bytes_;
  std::vector<moni_label> labels_;
  std::vector<int64_t> ts_, tmp_ts_, head_ts_;
  std::vector<double> vs_, tmp_vs_, head_vs_;
};

}  // namespace

Result<std::unique_ptr<SeriesCursor>> Db::select(std::span<const Matcher> matchers, int64_t mint,
                                                 int64_t maxt, bool with_samples) {
  auto ms = compile_matchers(matchers);
  if (!ms) return ms.error();
  std::vector<uint32_t> ids;
  {
    auto rt = begin_read();
    if (!rt) return rt.error();
    int rc = candidates((*rt)->txn, dbi_, *ms, ids);
    if (rc) return make_error(lmdb_error("looking up postings", rc));
  }
  return std::unique_ptr<SeriesCursor>(
      new TsdbCursor(*this, std::move(ms.value()), std::move(ids), mint, maxt, with_samples));
}

Result<std::vector<std::string>> Db::label_names(std::span<const Matcher> matchers, int64_t mint,
                                                 int64_t maxt) {
  std::vector<std::string> out;
  if (matchers.empty()) {
    // Every name in the inverted index: hop from one name to the next.
    auto rt = begin_read();
    if (!rt) return rt.error();
    MDB_cursor* cur = nullptr;
    int rc = mdb_cursor_open((*rt)->txn, dbi_.postings, &cur);
    if (rc) return make_error(lmdb_error("reading label names", rc));
    MDB_val k, v;
    std::string seek;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;) {
      std::string_view key = sview(k);
      size_t z = key.find('\0');
      if (z == std::string_view::npos) break;
      out.emplace_back(key.substr(0, z));
      seek.assign(key.substr(0, z));
      seek.push_back('\x01');
      k = mval(seek);
      rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    }
    mdb_cursor_close(cur);
    (void)mint;
    (void)maxt;
    return out;
  }
  auto c = select(matchers, mint, maxt, false);
  if (!c) return c.error();
  std::set<std::string, std::less<>> names;
  moni_series_view sv_{};
  for (;;) {
    auto r = (*c)->next(sv_);
    if (!r) return r.error();
    if (!*r) break;
    for (uint32_t i = 0; i < sv_.label_count; ++i) names.emplace(sv(sv_.labels[i].name));
  }
  return std::vector<std::string>(names.begin(), names.end());
}

Result<std::vector<std::string>> Db::label_values(std::string_view name,
                                                  std::span<const Matcher> matchers, int64_t mint,
                                                  int64_t maxt) {
  std::vector<std::string> out;
  if (matchers.empty()) {
    auto rt = begin_read();
    if (!rt) return rt.error();
    int rc = scan_values((*rt)->txn, dbi_, name, [&](std::string_view val, MDB_val, MDB_cursor*) {
      out.emplace_back(val);
      return true;
    });
    if (rc) return make_error(lmdb_error("reading label values", rc));
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }
  auto c = select(matchers, mint, maxt, false);
  if (!c) return c.error();
  std::set<std::string, std::less<>> values;
  moni_series_view sv_{};
  for (;;) {
    auto r = (*c)->next(sv_);
    if (!r) return r.error();
    if (!*r) break;
    std::string_view v = find_label(sv_.labels, sv_.label_count, name);
    if (!v.empty()) values.emplace(v);
  }
  return std::vector<std::string>(values.begin(), values.end());
}

Result<std::vector<Metadata>> Db::metadata(std::string_view family) {
  std::vector<Metadata> out;
  auto rt = begin_read();
  if (!rt) return rt.error();
  MDB_cursor* cur = nullptr;
  int rc = mdb_cursor_open((*rt)->txn, dbi_.metadata, &cur);
  if (rc) return make_error(lmdb_error("reading metadata", rc));
  MDB_val k = mval(family), v;
  rc = family.empty() ? mdb_cursor_get(cur, &k, &v, MDB_FIRST)
                      : mdb_cursor_get(cur, &k, &v, MDB_SET_KEY);
  for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    Metadata m;
    if (!decode_metadata_record(sview(k), sview(v), m)) continue;
    out.push_back(std::move(m));
    if (!family.empty()) break;
  }
  mdb_cursor_close(cur);
  return out;
}

}  // namespace moni::tsdb
