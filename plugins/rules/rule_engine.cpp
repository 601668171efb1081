#include "rule_engine.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <set>
#include <stdexcept>

#include "json_format.hpp"
#include "overlay_queryable.hpp"
#include "promql/functions.hpp"
#include "promql/parser.hpp"
#include "promql/value.hpp"
#include "url_query.hpp"

namespace moni::rules {

const char* alert_state_name(AlertState s) {
  switch (s) {
    case AlertState::Pending:
      return "pending";
    case AlertState::Firing:
      return "firing";
    default:
      return "inactive";
  }
}

const char* rule_health_name(RuleHealth h) {
  switch (h) {
    case RuleHealth::Ok:
      return "ok";
    case RuleHealth::Err:
      return "err";
    default:
      return "unknown";
  }
}

struct RuleEngine::Rule {
  RuleSpec spec;
  promql::ExprPtr expr;
  bool alerting = false;
  std::string name;
  // Templates of an alerting rule's labels and annotations (parsed once).
  std::vector<std::pair<std::string, AlertTemplate>> label_tmpl, annotation_tmpl;
  Labels static_labels;  // recording rules: the rule's labels, sorted
  // Series written by the previous evaluation (for staleness markers).
  std::set<Labels> prev_series;
  std::map<Labels, Alert> active;  // alerting rules
  bool restored = false;
  // status (guarded by the engine's mutex)
  RuleHealth health = RuleHealth::Unknown;
  std::string last_error;
  int64_t last_eval_ms = kNever;
  double eval_seconds = 0;
};

struct RuleEngine::Group {
  GroupSpec spec;
  int64_t interval_ms = 0;
  uint64_t hash = 0;
  std::vector<std::unique_ptr<Rule>> rules;
  int64_t next_eval_ms = kNever;  // kNever: not scheduled yet
  int evaluations_before_restore = 2;
  // Series of rules dropped by a reload: marked stale after the next evaluation.
  std::vector<Labels> stale_series;
  // status and counters (guarded by the engine's mutex)
  int64_t last_eval_ms = kNever;
  double last_duration_s = 0;
  uint64_t evaluations = 0, failures = 0, missed = 0;
  std::string key;  // "file;name", the rule_group label
};

namespace {

// XXH64 with seed 0 (the xxHash specification), as Go's cespare/xxhash
// computes it for Prometheus.
uint64_t xxh64(std::string_view s) {
  constexpr uint64_t P1 = 11400714785074694791ull, P2 = 14029467366897019727ull,
                     P3 = 1609587929392839161ull, P4 = 9650029242287828579ull,
                     P5 = 2870177450012600261ull;
  auto rotl = [](uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  auto read64 = [](const unsigned char* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  };
  auto read32 = [](const unsigned char* p) {
    uint64_t v = 0;
    for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
    return v;
  };
  auto round = [&](uint64_t acc, uint64_t in) { return rotl(acc + in * P2, 31) * P1; };
  auto merge = [&](uint64_t acc, uint64_t v) { return (acc ^ round(0, v)) * P1 + P4; };
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unsigned char* end = p + s.size();
  uint64_t h;
  if (s.size() >= 32) {
    uint64_t v1 = P1 + P2, v2 = P2, v3 = 0, v4 = 0 - P1;
    for (; end - p >= 32; p += 32) {
      v1 = round(v1, read64(p));
      v2 = round(v2, read64(p + 8));
      v3 = round(v3, read64(p + 16));
      v4 = round(v4, read64(p + 24));
    }
    h = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
    h = merge(merge(merge(merge(h, v1), v2), v3), v4);
  } else {
    h = P5;
  }
  h += s.size();
  for (; end - p >= 8; p += 8) h = rotl(h ^ round(0, read64(p)), 27) * P1 + P4;
  if (end - p >= 4) {
    h = rotl(h ^ (read32(p) * P1), 23) * P2 + P3;
    p += 4;
  }
  for (; p < end; ++p) h = rotl(h ^ (*p * P5), 11) * P1;
  h ^= h >> 33;
  h *= P2;
  h ^= h >> 29;
  h *= P3;
  h ^= h >> 32;
  return h;
}

// Prometheus's Group.hash(): labels {file, name} hashed as Labels.Hash()
// does (name, 0xff, value, 0xff for each label in order).
uint64_t group_hash(std::string_view file, std::string_view name) {
  std::string b;
  b.reserve(file.size() + name.size() + 12);
  b.append("file").push_back('\xff');
  b.append(file).push_back('\xff');
  b.append("name").push_back('\xff');
  b.append(name).push_back('\xff');
  return xxh64(b);
}

Labels sorted_pairs(const LabelPairs& p) {
  Labels out;
  for (const auto& [k, v] : p) promql::set_label(out, k, v);
  return out;
}

// RFC 3339 with milliseconds as Go writes time.Time in JSON (trailing zeros
// of the fraction dropped); the zero time for "never".
std::string rfc3339(int64_t ms) {
  if (ms == kNever) return "0001-01-01T00:00:00Z";
  int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
  int64_t frac = ms - secs * 1000;
  auto t = static_cast<time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string s = buf;
  if (frac) {
    char f[8];
    std::snprintf(f, sizeof f, ".%03lld", static_cast<long long>(frac));
    std::string fs = f;
    while (fs.back() == '0') fs.pop_back();
    s += fs;
  }
  return s + "Z";
}

using prom_api::append_json_string;
using prom_api::append_labels;

// Go's strconv.FormatFloat(v, 'e', -1, 64), as the alerts API writes values.
std::string format_e(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  for (int prec = 0; prec <= 16; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*e", prec, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

// A JSON number as Go's encoding/json writes a float64 (no exponent in
// the ranges that occur here).
std::string json_number(double v) {
  if (std::isnan(v) || std::isinf(v)) return "0";
  return promql::fn::format_float(v);
}

Labels with_name(const Labels& ls, std::string_view name) {
  Labels out = ls;
  promql::set_label(out, "__name__", name);
  return out;
}

}  // namespace

RuleEngine::RuleEngine(std::vector<GroupSpec> groups, EngineOptions opts) : opts_(std::move(opts)) {
  for (auto& gs : groups) {
    auto g = std::make_unique<Group>();
    g->interval_ms = gs.interval_ms > 0 ? gs.interval_ms : opts_.default_interval_ms;
    g->hash = group_hash(gs.pos.file, gs.name);
    g->key = gs.pos.file + ";" + gs.name;
    g->evaluations_before_restore = opts_.restore_for_state ? 2 : 0;
    for (auto& rs : gs.rules) {
      auto r = std::make_unique<Rule>();
      auto e = promql::parse(rs.expr);
      if (!e) throw std::runtime_error("rules: " + rs.pos.str() + ": " + e.error().message);
      r->expr = std::move(*e);
      r->alerting = !rs.alert.empty();
      r->name = r->alerting ? rs.alert : rs.record;
      r->restored = !opts_.restore_for_state;
      if (r->alerting) {
        for (const auto& [k, v] : rs.labels) {
          auto t = AlertTemplate::parse(v);
          if (!t) throw std::runtime_error("rules: " + rs.pos.str() + ": " + t.error().message);
          r->label_tmpl.emplace_back(k, std::move(*t));
        }
        for (const auto& [k, v] : rs.annotations) {
          auto t = AlertTemplate::parse(v);
          if (!t) throw std::runtime_error("rules: " + rs.pos.str() + ": " + t.error().message);
          r->annotation_tmpl.emplace_back(k, std::move(*t));
        }
      } else {
        r->static_labels = sorted_pairs(rs.labels);
      }
      r->spec = std::move(rs);
      g->rules.push_back(std::move(r));
    }
    gs.rules.clear();
    g->spec = std::move(gs);
    groups_.push_back(std::move(g));
  }
}

RuleEngine::~RuleEngine() = default;

size_t RuleEngine::group_count() const { return groups_.size(); }
int64_t RuleEngine::group_interval_ms(size_t i) const { return groups_[i]->interval_ms; }

int64_t RuleEngine::eval_timestamp(size_t i, int64_t now_ms) const {
  // Prometheus's Group.EvalTimestamp: slots of the interval, shifted by a
  // hash of the group so that groups do not all run at the same instant.
  // In nanoseconds as Prometheus computes it, so that a group of the same
  // file and name is evaluated at the same milliseconds as in Prometheus.
  const Group& g = *groups_[i];
  const int64_t iv = g.interval_ms * 1'000'000;
  int64_t offset = static_cast<int64_t>(g.hash % static_cast<uint64_t>(iv));
  // The slot's millisecond (Prometheus truncates the nanoseconds) is at or
  // before now_ms when the slot is at or before the end of now_ms.
  int64_t adj = now_ms * 1'000'000 + 999'999 - offset;
  int64_t base = adj - ((adj % iv) + iv) % iv;
  int64_t slot = base + offset;
  return slot >= 0 ? slot / 1'000'000 : -((-slot + 999'999) / 1'000'000);
}

std::vector<OutgoingAlert> RuleEngine::run_due(const promql::Queryable& q, int64_t now_ms,
                                               SampleSink& out) {
  std::vector<OutgoingAlert> notify;
  if (!removed_series_.empty()) {
    // As Prometheus stopping a group a reload removed: its series end now.
    for (const auto& ls : removed_series_) out.add(ls, stale_nan(), now_ms);
    out.flush();
    removed_series_.clear();
  }
  for (size_t i = 0; i < groups_.size(); ++i) {
    Group& g = *groups_[i];
    if (g.next_eval_ms == kNever) {
      // As Prometheus: the first evaluation is at the next slot after start.
      g.next_eval_ms = eval_timestamp(i, now_ms) + g.interval_ms;
    }
    if (now_ms < g.next_eval_ms) continue;
    int64_t missed = (now_ms - g.next_eval_ms) / g.interval_ms;
    int64_t ts = g.next_eval_ms + missed * g.interval_ms;
    if (missed > 0) {
      std::lock_guard lock(mu_);
      g.missed += static_cast<uint64_t>(missed);
    }
    g.next_eval_ms = ts + g.interval_ms;
    eval_group(i, q, ts, out, notify);
    if (g.evaluations_before_restore > 0 && --g.evaluations_before_restore == 0)
      restore_for_state(i, q, now_ms);
  }
  return notify;
}

void RuleEngine::eval_group(size_t i, const promql::Queryable& q, int64_t ts, SampleSink& out,
                            std::vector<OutgoingAlert>& notify) {
  Group& g = *groups_[i];
  auto t0 = std::chrono::steady_clock::now();
  OverlayQueryable overlay(q);
  overlay.reset(ts);
  struct OverlaySink : SampleSink {
    SampleSink& next;
    OverlayQueryable& ov;
    OverlaySink(SampleSink& n, OverlayQueryable& o) : next(n), ov(o) {}
    void add(const Labels& l, double v, int64_t t) override {
      ov.add(l, v);
      next.add(l, v, t);
    }
    void flush() override { next.flush(); }
  } sink(out, overlay);
  for (auto& r : g.rules) eval_rule(g, *r, overlay, ts, sink, notify);
  if (!g.stale_series.empty()) {
    // Prometheus's cleanupStaleSeries: series of rules a reload dropped end
    // here, unless a rule of the group produced them again.
    bool any = false;
    for (const auto& ls : g.stale_series) {
      bool live = false;
      for (const auto& r : g.rules) live = live || r->prev_series.count(ls);
      if (live) continue;
      out.add(ls, stale_nan(), ts);
      any = true;
    }
    if (any) out.flush();
    g.stale_series.clear();
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::lock_guard lock(mu_);
  g.last_eval_ms = ts;
  g.last_duration_s = secs;
}

void RuleEngine::eval_rule(Group& g, Rule& r, const promql::Queryable& q, int64_t ts,
                           SampleSink& out, std::vector<OutgoingAlert>& notify) {
  auto t0 = std::chrono::steady_clock::now();
  auto finish = [&](RuleHealth h, std::string err) {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::lock_guard lock(mu_);
    r.health = h;
    r.last_error = std::move(err);
    r.last_eval_ms = ts;
    r.eval_seconds = secs;
    g.evaluations++;
    if (h == RuleHealth::Err) g.failures++;
  };
  promql::Engine engine(q, opts_.query);
  auto res = engine.exec(*r.expr, ts, ts, 0, true);
  if (!res.ok()) {
    finish(RuleHealth::Err, res.message);
    return;
  }
  // The query function of Prometheus's rule manager: a scalar becomes a
  // one-element vector without labels.
  struct Elem {
    Labels labels;
    double v;
  };
  std::vector<Elem> vec;
  if (res.value.type == promql::ValueType::Vector) {
    for (auto& s : res.value.vec) vec.push_back({s.labels ? *s.labels : Labels{}, s.v});
  } else if (res.value.type == promql::ValueType::Scalar) {
    vec.push_back({Labels{}, res.value.scalar});
  } else {
    finish(RuleHealth::Err, "rule result is not a vector or scalar");
    return;
  }

  std::vector<std::pair<Labels, double>> samples;
  std::string template_error;
  if (!r.alerting) {
    std::set<Labels> seen;
    for (auto& e : vec) {
      Labels ls = std::move(e.labels);
      promql::set_label(ls, "__name__", r.spec.record);
      for (const auto& l : r.static_labels) promql::set_label(ls, l.name, l.value);
      if (!seen.insert(ls).second) {
        finish(RuleHealth::Err,
               "vector contains metrics with the same labelset after applying rule labels");
        return;
      }
      samples.emplace_back(std::move(ls), e.v);
    }
    if (g.spec.limit > 0 && static_cast<int64_t>(samples.size()) > g.spec.limit) {
      finish(RuleHealth::Err, "exceeded limit of " + std::to_string(g.spec.limit) + " with " +
                                  std::to_string(samples.size()) + " series");
      return;
    }
  } else {
    // Alerts of this evaluation, keyed by their label set.
    std::map<Labels, Alert> fresh;
    for (auto& e : vec) {
      Labels tl = e.labels;  // the template sees the series' labels as they are
      TemplateData data{&tl, &opts_.external_labels, opts_.external_url, e.v};
      auto expand = [&](const AlertTemplate& t) {
        if (t.is_literal()) return *t.expand(data);
        auto x = t.expand(data);
        if (x) return std::move(*x);
        std::string msg = "template: __alert_" + r.name + ": " + x.error().message;
        if (template_error.empty()) template_error = "error expanding template: " + msg;
        return "<error expanding template: " + msg + ">";
      };
      Labels ls = promql::drop_metric_name(e.labels);
      for (const auto& [k, t] : r.label_tmpl) promql::set_label(ls, k, expand(t));
      promql::set_label(ls, "alertname", r.name);
      Labels ann;
      for (const auto& [k, t] : r.annotation_tmpl) {
        std::string v = expand(t);
        auto pos =
            std::lower_bound(ann.begin(), ann.end(), k,
                             [](const Label& l, const std::string& n) { return l.name < n; });
        ann.insert(pos, Label{k, std::move(v)});
      }
      if (fresh.count(ls)) {
        finish(RuleHealth::Err,
               "vector contains metrics with the same labelset after applying alert labels");
        return;
      }
      Alert a;
      a.labels = ls;
      a.annotations = std::move(ann);
      a.active_at_ms = ts;
      a.state = AlertState::Pending;
      a.value = e.v;
      fresh.emplace(std::move(ls), std::move(a));
    }
    std::lock_guard lock(mu_);
    for (auto& [ls, a] : fresh) {
      auto it = r.active.find(ls);
      if (it != r.active.end() && it->second.state != AlertState::Inactive) {
        it->second.value = a.value;
        it->second.annotations = a.annotations;
        continue;
      }
      r.active[ls] = std::move(a);
    }
    int64_t num_active = 0;
    for (auto it = r.active.begin(); it != r.active.end();) {
      Alert& a = it->second;
      bool erase = false;
      if (!fresh.count(it->first)) {
        bool keep_firing = false;
        if (a.state == AlertState::Firing && r.spec.keep_firing_for_ms > 0) {
          if (a.keep_firing_since_ms == kNever) a.keep_firing_since_ms = ts;
          if (ts - a.keep_firing_since_ms < r.spec.keep_firing_for_ms) keep_firing = true;
        }
        // A resolved alert is kept (and sent as resolved) for a while.
        if (a.state == AlertState::Pending ||
            (a.resolved_at_ms != kNever && ts - a.resolved_at_ms > opts_.resolved_retention_ms))
          erase = true;
        if (a.state != AlertState::Inactive && !keep_firing) {
          a.state = AlertState::Inactive;
          a.resolved_at_ms = ts;
        }
        if (!keep_firing) {
          it = erase ? r.active.erase(it) : std::next(it);
          continue;
        }
      } else {
        a.keep_firing_since_ms = kNever;
      }
      ++num_active;
      if (a.state == AlertState::Pending && ts - a.active_at_ms >= r.spec.for_ms) {
        a.state = AlertState::Firing;
        a.fired_at_ms = ts;
      }
      if (r.restored) {
        Labels al = with_name(a.labels, "ALERTS");
        promql::set_label(al, "alertstate", alert_state_name(a.state));
        samples.emplace_back(std::move(al), 1.0);
        // Whole seconds, as Prometheus's float64(ActiveAt.Unix()).
        int64_t secs =
            a.active_at_ms >= 0 ? a.active_at_ms / 1000 : -((-a.active_at_ms + 999) / 1000);
        samples.emplace_back(with_name(a.labels, "ALERTS_FOR_STATE"), static_cast<double>(secs));
      }
      ++it;
    }
    if (g.spec.limit > 0 && num_active > g.spec.limit) {
      r.active.clear();
      r.health = RuleHealth::Err;
      r.last_error = "exceeded limit of " + std::to_string(g.spec.limit) + " with " +
                     std::to_string(num_active) + " alerts";
      r.last_eval_ms = ts;
      g.evaluations++;
      g.failures++;
      return;
    }
  }

  // Append, then staleness markers for series of the previous evaluation
  // that this one did not produce.
  std::set<Labels> now_series;
  for (auto& [ls, v] : samples) {
    out.add(ls, v, ts);
    now_series.insert(ls);
  }
  for (const auto& ls : r.prev_series)
    if (!now_series.count(ls)) out.add(ls, stale_nan(), ts);
  r.prev_series = std::move(now_series);
  out.flush();

  if (r.alerting) {
    // Prometheus's sendAlerts: what needs sending now, valid for four
    // evaluation or resend periods.
    std::lock_guard lock(mu_);
    int64_t delta = std::max(opts_.resend_delay_ms, g.interval_ms);
    for (auto& [ls, a] : r.active) {
      if (a.state == AlertState::Pending) continue;
      bool send = a.resolved_at_ms > a.last_sent_at_ms ||
                  (a.last_sent_at_ms == kNever || a.last_sent_at_ms + opts_.resend_delay_ms < ts);
      if (!send) continue;
      a.last_sent_at_ms = ts;
      a.valid_until_ms = ts + 4 * delta;
      OutgoingAlert o;
      o.labels = a.labels;
      o.annotations = a.annotations;
      o.starts_at_ms = a.fired_at_ms;
      o.ends_at_ms = a.resolved_at_ms != kNever ? a.resolved_at_ms : a.valid_until_ms;
      o.generator_url = generator_url(opts_.external_url, r.spec.expr);
      notify.push_back(std::move(o));
    }
  }
  if (!template_error.empty())
    finish(RuleHealth::Err, template_error);
  else
    finish(RuleHealth::Ok, "");
}

void RuleEngine::restore_for_state(size_t i, const promql::Queryable& q, int64_t ts) {
  Group& g = *groups_[i];
  int64_t mint = ts - opts_.outage_tolerance_ms;
  for (auto& rp : g.rules) {
    Rule& r = *rp;
    if (!r.alerting) continue;
    if (r.spec.for_ms < opts_.for_grace_period_ms) {
      // Restoring would make it wait at least the grace period; it waits
      // its own shorter `for` instead.
      std::lock_guard lock(mu_);
      r.restored = true;
      continue;
    }
    std::lock_guard lock(mu_);
    for (auto& [ls, a] : r.active) {
      std::vector<Matcher> ms;
      ms.push_back({MatchType::Equal, "__name__", "ALERTS_FOR_STATE"});
      for (const auto& l : ls) ms.push_back({MatchType::Equal, l.name, l.value});
      bool found = false;
      int64_t t = 0;
      double v = 0;
      auto res = q.select(ms, mint, ts, [&](Labels&& sl, std::vector<promql::Point>&& pts) {
        if (sl.size() != ls.size() + 1 || pts.empty()) return true;
        found = true;
        t = pts.back().t;
        v = pts.back().v;
        return false;
      });
      if (!res || !found || is_stale_nan(v) || std::isnan(v)) continue;
      int64_t down_at = (t / 1000) * 1000;
      int64_t restored_active_at = static_cast<int64_t>(v) * 1000;
      int64_t spent_pending = down_at - restored_active_at;
      int64_t remaining = r.spec.for_ms - spent_pending;
      if (remaining <= 0) {
        // It was firing when we went down; the next evaluation fires it again.
      } else if (remaining < opts_.for_grace_period_ms) {
        restored_active_at = ts + opts_.for_grace_period_ms - r.spec.for_ms;
      } else {
        restored_active_at += ts - down_at;
      }
      a.active_at_ms = restored_active_at;
    }
    r.restored = true;
  }
}

namespace {

bool same_rule(const RuleSpec& a, const RuleSpec& b) {
  return a.record == b.record && a.alert == b.alert && a.expr == b.expr && a.for_ms == b.for_ms &&
         a.keep_firing_for_ms == b.keep_firing_for_ms && a.labels == b.labels &&
         a.annotations == b.annotations;
}

// Prometheus's nameAndLabels: the rule's name and its configured labels
// (templates unexpanded), the identity of a rule across a reload.
std::string rule_identity(const RuleSpec& r) {
  std::string s = r.alert.empty() ? r.record : r.alert;
  for (const auto& l : sorted_pairs(r.labels)) {
    s += '\0';
    s += l.name;
    s += '\0';
    s += l.value;
  }
  return s;
}

}  // namespace

void RuleEngine::adopt_state(RuleEngine& old) {
  std::scoped_lock lock(mu_, old.mu_);
  std::map<std::string, Group*> old_groups;
  for (auto& og : old.groups_) old_groups.emplace(og->key, og.get());
  for (auto& gp : groups_) {
    Group& g = *gp;
    auto found = old_groups.find(g.key);
    if (found == old_groups.end()) {
      // A new group after a reload: Prometheus's manager has restored once
      // and does not again.
      g.evaluations_before_restore = 0;
      for (auto& r : g.rules) r->restored = true;
      continue;
    }
    Group& og = *found->second;
    old_groups.erase(found);
    g.last_eval_ms = og.last_eval_ms;
    g.last_duration_s = og.last_duration_s;
    g.evaluations = og.evaluations;
    g.failures = og.failures;
    g.missed = og.missed;
    // The same slots (same file and name): the schedule goes on.
    if (og.interval_ms == g.interval_ms) g.next_eval_ms = og.next_eval_ms;
    g.stale_series = std::move(og.stale_series);
    bool equal = g.interval_ms == og.interval_ms && g.spec.limit == og.spec.limit &&
                 g.rules.size() == og.rules.size();
    for (size_t k = 0; equal && k < g.rules.size(); ++k)
      equal = same_rule(g.rules[k]->spec, og.rules[k]->spec);
    if (equal) {
      // Prometheus keeps an unchanged group running as it is.
      g.evaluations_before_restore = og.evaluations_before_restore;
      for (size_t k = 0; k < g.rules.size(); ++k) {
        Rule& r = *g.rules[k];
        Rule& o = *og.rules[k];
        r.prev_series = std::move(o.prev_series);
        r.active = std::move(o.active);
        r.restored = o.restored;
        r.health = o.health;
        r.last_error = std::move(o.last_error);
        r.last_eval_ms = o.last_eval_ms;
        r.eval_seconds = o.eval_seconds;
      }
      continue;
    }
    // Prometheus's Group.CopyState.
    g.evaluations_before_restore = 0;
    std::map<std::string, std::vector<Rule*>> by_identity;
    for (auto& o : og.rules) by_identity[rule_identity(o->spec)].push_back(o.get());
    for (auto& rp : g.rules) {
      Rule& r = *rp;
      r.restored = true;
      auto it = by_identity.find(rule_identity(r.spec));
      if (it == by_identity.end() || it->second.empty()) continue;
      Rule& o = *it->second.front();
      it->second.erase(it->second.begin());
      r.prev_series = std::move(o.prev_series);
      if (r.alerting && o.alerting) r.active = std::move(o.active);
    }
    for (auto& [id, left] : by_identity)
      for (Rule* o : left)
        g.stale_series.insert(g.stale_series.end(), o->prev_series.begin(), o->prev_series.end());
  }
  for (auto& [key, og] : old_groups) {
    for (auto& o : og->rules)
      removed_series_.insert(removed_series_.end(), o->prev_series.begin(), o->prev_series.end());
    removed_series_.insert(removed_series_.end(), og->stale_series.begin(), og->stale_series.end());
  }
  removed_series_.insert(removed_series_.end(), old.removed_series_.begin(),
                         old.removed_series_.end());
}

std::vector<Alert> RuleEngine::alerts(std::string_view group, std::string_view name) const {
  std::lock_guard lock(mu_);
  std::vector<Alert> out;
  for (const auto& g : groups_) {
    if (g->spec.name != group) continue;
    for (const auto& r : g->rules)
      if (r->name == name)
        for (const auto& [ls, a] : r->active) out.push_back(a);
  }
  return out;
}

RuleHealth RuleEngine::health(std::string_view group, std::string_view name,
                              std::string* last_error) const {
  std::lock_guard lock(mu_);
  for (const auto& g : groups_) {
    if (g->spec.name != group) continue;
    for (const auto& r : g->rules)
      if (r->name == name) {
        if (last_error) *last_error = r->last_error;
        return r->health;
      }
  }
  return RuleHealth::Unknown;
}

namespace {

void append_alert_json(std::string& out, const Alert& a) {
  out += "{\"labels\":";
  append_labels(out, a.labels);
  out += ",\"annotations\":";
  append_labels(out, a.annotations);
  out += ",\"state\":\"";
  out += alert_state_name(a.state);
  out += "\",\"activeAt\":\"" + rfc3339(a.active_at_ms) + "\"";
  if (a.keep_firing_since_ms != kNever)
    out += ",\"keepFiringSince\":\"" + rfc3339(a.keep_firing_since_ms) + "\"";
  out += ",\"value\":";
  append_json_string(out, format_e(a.value), true);
  out += "}";
}

}  // namespace

// Strings with '<', '>' and '&' as \u003c, \u003e, \u0026, as Prometheus'
// encoder (Go's, HTML-safe) writes them everywhere in these two answers.
std::string RuleEngine::rules_json(std::string_view type) const {
  std::lock_guard lock(mu_);
  std::string out = "{\"groups\":[";
  bool first_group = true;
  for (const auto& g : groups_) {
    if (!first_group) out.push_back(',');
    first_group = false;
    out += "{\"name\":";
    append_json_string(out, g->spec.name, true);
    out += ",\"file\":";
    append_json_string(out, g->spec.pos.file, true);
    out += ",\"rules\":[";
    bool first_rule = true;
    for (const auto& r : g->rules) {
      if ((type == "alert" && !r->alerting) || (type == "record" && r->alerting)) continue;
      if (!first_rule) out.push_back(',');
      first_rule = false;
      if (r->alerting) {
        AlertState st = AlertState::Inactive;
        for (const auto& [ls, a] : r->active)
          if (a.state != AlertState::Inactive && static_cast<int>(a.state) > static_cast<int>(st))
            st = a.state;
        out += "{\"state\":\"";
        out += alert_state_name(st);
        out += "\",\"name\":";
        append_json_string(out, r->name, true);
        out += ",\"query\":";
        append_json_string(out, r->spec.expr, true);
        out += ",\"duration\":" + json_number(static_cast<double>(r->spec.for_ms) / 1000);
        out += ",\"keepFiringFor\":" +
               json_number(static_cast<double>(r->spec.keep_firing_for_ms) / 1000);
        out += ",\"labels\":";
        append_labels(out, sorted_pairs(r->spec.labels));
        out += ",\"annotations\":";
        append_labels(out, sorted_pairs(r->spec.annotations));
        out += ",\"alerts\":[";
        bool fa = true;
        for (const auto& [ls, a] : r->active) {
          if (a.state == AlertState::Inactive) continue;
          if (!fa) out.push_back(',');
          fa = false;
          append_alert_json(out, a);
        }
        out += "]";
      } else {
        out += "{\"name\":";
        append_json_string(out, r->name, true);
        out += ",\"query\":";
        append_json_string(out, r->spec.expr, true);
        if (!r->static_labels.empty()) {
          out += ",\"labels\":";
          append_labels(out, r->static_labels);
        }
      }
      out += ",\"health\":\"";
      out += rule_health_name(r->health);
      out += "\"";
      if (!r->last_error.empty()) {
        out += ",\"lastError\":";
        append_json_string(out, r->last_error, true);
      }
      out += ",\"evaluationTime\":" + json_number(r->eval_seconds);
      out += ",\"lastEvaluation\":\"" + rfc3339(r->last_eval_ms) + "\"";
      out += r->alerting ? ",\"type\":\"alerting\"}" : ",\"type\":\"recording\"}";
    }
    out += "],\"interval\":" + json_number(static_cast<double>(g->interval_ms) / 1000);
    out += ",\"limit\":" + std::to_string(g->spec.limit);
    out += ",\"evaluationTime\":" + json_number(g->last_duration_s);
    out += ",\"lastEvaluation\":\"" + rfc3339(g->last_eval_ms) + "\"}";
  }
  out += "]}";
  return out;
}

std::string RuleEngine::alerts_json() const {
  std::lock_guard lock(mu_);
  std::string out = "{\"alerts\":[";
  bool first = true;
  for (const auto& g : groups_)
    for (const auto& r : g->rules)
      for (const auto& [ls, a] : r->active) {
        if (a.state == AlertState::Inactive) continue;
        if (!first) out.push_back(',');
        first = false;
        append_alert_json(out, a);
      }
  out += "]}";
  return out;
}

void RuleEngine::self_metrics(Batch& out) const {
  std::lock_guard lock(mu_);
  out.describe("moni_rules_group_last_duration_seconds", MetricType::Gauge,
               "The duration of the last rule group evaluation.");
  out.describe("moni_rules_group_last_evaluation_timestamp_seconds", MetricType::Gauge,
               "The timestamp of the last rule group evaluation.");
  out.describe("moni_rules_group_interval_seconds", MetricType::Gauge,
               "The interval of a rule group.");
  out.describe("moni_rules_group_rules", MetricType::Gauge, "The number of rules in a group.");
  out.describe("moni_rules_evaluations_total", MetricType::Counter,
               "The total number of rule evaluations.");
  out.describe("moni_rules_evaluation_failures_total", MetricType::Counter,
               "The total number of rule evaluation failures.");
  out.describe("moni_rules_group_missed_iterations_total", MetricType::Counter,
               "The total number of rule group evaluations missed due to slow evaluation.");
  out.describe("moni_rules_alerts", MetricType::Gauge,
               "Active alerts by state (pending, firing) and group.");
  for (const auto& g : groups_) {
    std::string_view k = g->key;
    out.add("moni_rules_group_last_duration_seconds", {{"rule_group", k}}, g->last_duration_s);
    out.add("moni_rules_group_last_evaluation_timestamp_seconds", {{"rule_group", k}},
            g->last_eval_ms == kNever ? 0.0 : static_cast<double>(g->last_eval_ms) / 1000);
    out.add("moni_rules_group_interval_seconds", {{"rule_group", k}},
            static_cast<double>(g->interval_ms) / 1000);
    out.add("moni_rules_group_rules", {{"rule_group", k}}, static_cast<double>(g->rules.size()));
    out.add("moni_rules_evaluations_total", {{"rule_group", k}},
            static_cast<double>(g->evaluations));
    out.add("moni_rules_evaluation_failures_total", {{"rule_group", k}},
            static_cast<double>(g->failures));
    out.add("moni_rules_group_missed_iterations_total", {{"rule_group", k}},
            static_cast<double>(g->missed));
    size_t pending = 0, firing = 0;
    for (const auto& r : g->rules)
      for (const auto& [ls, a] : r->active) {
        pending += a.state == AlertState::Pending;
        firing += a.state == AlertState::Firing;
      }
    out.add("moni_rules_alerts", {{"rule_group", k}, {"state", "pending"}},
            static_cast<double>(pending));
    out.add("moni_rules_alerts", {{"rule_group", k}, {"state", "firing"}},
            static_cast<double>(firing));
  }
}

}  // namespace moni::rules
