// The rule engine: evaluates groups of recording and alerting rules over a
// Queryable with Prometheus 2.42's semantics (aligned evaluation times,
// sequential rules, staleness markers, pending/firing/resolved alerts with
// `for` and `keep_firing_for`, ALERTS/ALERTS_FOR_STATE, restore of `for`
// state, notification timing). It knows nothing of the plugin ABI, so tests
// drive it directly.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <moni/batch.hpp>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "alert_template.hpp"
#include "promql/ast.hpp"
#include "promql/engine.hpp"
#include "rule_spec.hpp"

namespace moni::rules {

struct EngineOptions {
  /// Interval of groups that do not set one (Prometheus's evaluation_interval).
  int64_t default_interval_ms = 60'000;
  /// Firing alerts are re-sent this often (--rules.alert.resend-delay).
  int64_t resend_delay_ms = 60'000;
  /// How long ALERTS_FOR_STATE may be absent and still restore `for` state
  /// (--rules.alert.for-outage-tolerance).
  int64_t outage_tolerance_ms = 3'600'000;
  /// Minimum time an alert with restored state waits before firing
  /// (--rules.alert.for-grace-period).
  int64_t for_grace_period_ms = 600'000;
  /// Resolved alerts are kept (and re-sent as resolved) this long.
  int64_t resolved_retention_ms = 15 * 60'000;
  /// Restore `for` state from ALERTS_FOR_STATE after the second evaluation
  /// of each group (as Prometheus does on start). When false the rules count
  /// as restored from the start (as after a Prometheus config reload).
  bool restore_for_state = true;
  Labels external_labels;  // sorted
  std::string external_url;
  promql::QueryOptions query;
};

/// Where evaluation results go. add() for each sample of a rule, then
/// flush() once per rule, before the next rule is evaluated.
class SampleSink {
 public:
  virtual ~SampleSink() = default;
  virtual void add(const Labels& labels, double value, int64_t t_ms) = 0;
  virtual void flush() = 0;
};

enum class AlertState { Inactive, Pending, Firing };
const char* alert_state_name(AlertState s);
enum class RuleHealth { Unknown, Ok, Err };
const char* rule_health_name(RuleHealth h);

/// "Never" for the optional times of an alert (Go's zero time.Time).
inline constexpr int64_t kNever = std::numeric_limits<int64_t>::min() / 4;

/// One alert of an alerting rule. Thread-safety: a value type.
struct Alert {
  Labels labels;  // sorted, alertname included, no __name__
  Labels annotations;
  AlertState state = AlertState::Pending;
  double value = 0;
  int64_t active_at_ms = 0;
  int64_t fired_at_ms = kNever;
  int64_t resolved_at_ms = kNever;
  int64_t last_sent_at_ms = kNever;
  int64_t valid_until_ms = kNever;
  int64_t keep_firing_since_ms = kNever;
};

/// Thread-safety: run_due/eval_group/restore_for_state from one thread at a
/// time (the collect thread); the JSON and metrics readers from any thread.
class RuleEngine {
 public:
  /// `groups` must have passed validate_groups(); throws std::runtime_error
  /// otherwise (an expression that does not parse).
  RuleEngine(std::vector<GroupSpec> groups, EngineOptions opts);
  ~RuleEngine();

  /// Evaluates every group whose next aligned evaluation time is <= now_ms,
  /// at that time (the latest one when iterations were missed), and returns
  /// the alerts to send now.
  std::vector<OutgoingAlert> run_due(const promql::Queryable& q, int64_t now_ms, SampleSink& out);
  /// Evaluates group `i` at `t_ms` regardless of its schedule; appends the
  /// alerts to send to `notify`.
  void eval_group(size_t i, const promql::Queryable& q, int64_t t_ms, SampleSink& out,
                  std::vector<OutgoingAlert>& notify);
  /// Restores `for` state of group `i`'s alerting rules from ALERTS_FOR_STATE
  /// in `q` as of `t_ms`, and marks the rules restored.
  void restore_for_state(size_t i, const promql::Queryable& q, int64_t t_ms);

  /// Takes over the state of `old`, the engine of the configuration this one
  /// replaces on a reload, as Prometheus's rule manager does: a group equal
  /// to its old self (same file, name, interval, limit and rules) continues
  /// as it was; in a changed group each rule takes the active alerts and
  /// previous series of the old rule with the same name and labels (the
  /// first with the first for duplicates); all groups count as restored (no
  /// ALERTS_FOR_STATE restore after a reload). Series of old rules and groups
  /// that have no successor get staleness markers at the next evaluation.
  /// `old` must not be evaluated afterwards. Same thread as run_due.
  void adopt_state(RuleEngine& old);

  size_t group_count() const;
  /// The group's aligned evaluation time at or before `now_ms`.
  int64_t eval_timestamp(size_t i, int64_t now_ms) const;
  int64_t group_interval_ms(size_t i) const;

  /// The data of Prometheus's /api/v1/rules (without the envelope);
  /// `type` is "", "alert" or "record".
  std::string rules_json(std::string_view type) const;
  /// The data of /api/v1/alerts.
  std::string alerts_json() const;
  /// moni_rules_* metrics.
  void self_metrics(Batch& out) const;

  /// The alerts (including resolved ones still kept) of rule `name` in group
  /// `group`, sorted by labels. For tests and `moni rules test`.
  std::vector<Alert> alerts(std::string_view group, std::string_view name) const;
  RuleHealth health(std::string_view group, std::string_view name, std::string* last_error) const;

  struct Group;
  struct Rule;

 private:
  void eval_rule(Group& g, Rule& r, const promql::Queryable& q, int64_t ts, SampleSink& out,
                 std::vector<OutgoingAlert>& notify);
  EngineOptions opts_;
  std::vector<std::unique_ptr<Group>> groups_;
  // Series of groups removed by a reload: marked stale by the next run_due.
  std::vector<Labels> removed_series_;
  mutable std::mutex mu_;  // guards what the readers see: states, alerts, health, metrics
};

}  // namespace moni::rules
