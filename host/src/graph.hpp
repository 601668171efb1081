// A built config: the plugin instances and the pipelines wiring them, and the
// delivery of one batch through a pipeline's processors to its sinks and the
// pipelines it forwards to. No scheduling here (see runtime.hpp).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "host_config.hpp"
#include "instance.hpp"

namespace moni::host {

/// Counters that outlive a reload, keyed by pipeline name.
/// Thread-safety: all methods thread-safe.
class PipelineCounters {
 public:
  std::shared_ptr<std::atomic<uint64_t>> samples(const std::string& pipeline);
  std::map<std::string, uint64_t> snapshot() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<std::atomic<uint64_t>>> samples_;
};

struct Pipeline {
  std::string name;
  std::vector<std::shared_ptr<Instance>> processors, sinks;
  std::vector<Pipeline*> forwards;
  std::shared_ptr<std::atomic<uint64_t>> samples;
};

/// A collector and where its batches go. One collection of it runs at a
/// time: whoever sets `running` (a timer tick, or collect_now) runs it and
/// then calls finish(); collect_now callers that find it running wait for
/// that collection instead of starting another one.
struct CollectorJob {
  std::shared_ptr<Instance> instance;
  std::vector<Pipeline*> pipelines;
  std::atomic<bool> running{false};
  /// The running collection was started by collect_now (a tick that finds it
  /// running skips quietly: the samples it would collect are being collected).
  std::atomic<bool> on_demand{false};

  /// Ends the running collection; `error` is empty on success.
  void finish(std::string error);
  /// Claims the job when it is idle (true: the caller must run it and
  /// finish() it). `target` is the count of finished collections at which
  /// the collection started now or already running will have ended.
  bool claim(uint64_t& target, bool on_demand_run);
  /// Waits until `target` collections finished or `deadline` passed; false
  /// on timeout. `error` receives the error of the last finished collection.
  bool wait(uint64_t target, std::chrono::steady_clock::time_point deadline, std::string& error);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t finished_ = 0;   // guarded by mu_
  std::string last_error_;  // guarded by mu_
};

/// Thread-safety: immutable after build(); deliver() may run on any thread
/// concurrently, also for batches of one collection (a collector emitting
/// from several threads, ABI 1.2): counters are atomic, and each instance
/// serializes the calls its plugin did not flag as concurrent.
class Graph {
 public:
  HostConfig config;
  std::map<std::string, std::shared_ptr<Instance>> instances;  // by name
  std::vector<std::unique_ptr<Pipeline>> pipelines;
  std::vector<std::unique_ptr<CollectorJob>> jobs;
  /// Instances taken over unchanged from the previous graph (already started).
  std::vector<std::string> reused;

  /// Passes `batch` (from a collector) through `p`.
  void deliver(Pipeline& p, const moni_batch& batch);
  /// Runs one collection of `job` and delivers what it emits; false on error.
  /// `deliver_s` receives the time spent delivering (processors and sinks),
  /// which the collector's own duration leaves out.
  Result<void> run_collector(CollectorJob& job, int64_t now_ms, double* deliver_s = nullptr);
  /// The collector jobs whose batches reach `sink` (pipelines it is a sink
  /// of, and the pipelines forwarding to those).
  std::vector<CollectorJob*> jobs_feeding(const Instance& sink) const;

  /// The storage instances' reader by name (empty: the only one).
  const moni_storage_reader* storage(std::string_view name);

  /// Starts instances that are not reused: storage first, collectors last.
  /// On failure, stops what it started.
  Result<void> start_new();
  /// Flushes and stops instances not in `keep`: collectors, processors,
  /// outputs, then storage.
  void stop_except(const Graph* keep);

  // Collections in progress (reload and shutdown wait for them).
  void enter() { in_flight_.fetch_add(1); }
  void leave();
  void wait_idle();

  /// A collector the host implements itself (the "self" instance).
  std::function<void(int64_t now_ms, moni_emit_fn emit, void* ctx)> builtin_collect;

 private:
  void deliver_from(Pipeline& p, size_t stage, const moni_batch& batch);
  static std::vector<std::shared_ptr<Instance>> ordered(
      const std::map<std::string, std::shared_ptr<Instance>>&, bool start_order);
  std::atomic<int> in_flight_{0};
  std::mutex idle_mu_;
  std::condition_variable idle_cv_;
};

/// Creates every instance of `cfg` (reusing unchanged ones of `previous`) and
/// wires the pipelines; the error lists every problem found. `plugins` loads
/// the plugins the instances name, and no other.
Result<std::unique_ptr<Graph>> build_graph(HostConfig cfg, PluginRegistry& plugins,
                                           const std::string& data_dir, HostServices* services,
                                           const Graph* previous, PipelineCounters& counters);

}  // namespace moni::host
