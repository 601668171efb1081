#include "graph.hpp"

#include <algorithm>
#include <chrono>
#include <moni/batch.hpp>

#include "log.hpp"
#include "sample_check.hpp"

namespace moni::host {

std::shared_ptr<std::atomic<uint64_t>> PipelineCounters::samples(const std::string& pipeline) {
  std::lock_guard lock(mu_);
  auto& c = samples_[pipeline];
  if (!c) c = std::make_shared<std::atomic<uint64_t>>(0);
  return c;
}

std::map<std::string, uint64_t> PipelineCounters::snapshot() const {
  std::lock_guard lock(mu_);
  std::map<std::string, uint64_t> out;
  for (const auto& [k, v] : samples_) out[k] = v->load();
  return out;
}

namespace {

// A processor's output is copied before it goes on, so that the processor's
// own lock is released first: a pipeline forwarding to another one that
// uses the same processor instance must not re-enter it.
int append_to_batch(void* ctx, const moni_batch* b) {
  auto* out = static_cast<Batch*>(ctx);
  for (size_t i = 0; i < b->sample_count; ++i) {
    const moni_sample& s = b->samples[i];
    out->add_sorted(s.labels, s.label_count, s.value, s.timestamp_ms);
  }
  for (size_t i = 0; i < b->metadata_count; ++i) {
    const moni_metadata& m = b->metadata[i];
    out->describe(sv(m.family), static_cast<MetricType>(m.type), sv(m.help), sv(m.unit));
  }
  return MONI_OK;
}

// Drop warnings of one instance: at most one a minute (a collector emitting
// one bad label per cycle would otherwise log every cycle).
constexpr int64_t kDropWarnIntervalMs = 60'000;

// The part of `b` (emitted by `from`) that sinks may see; drops counted and,
// at most once a minute per instance, logged.
const moni_batch& checked(Instance& from, const moni_batch& b, BatchCheck& check) {
  const moni_batch& out = check.check(b);
  if (&out == &b) return b;
  auto& st = from.stats();
  for (size_t r = 1; r < kDropReasons; ++r)
    if (check.dropped[r]) st.dropped[r].fetch_add(check.dropped[r], std::memory_order_relaxed);
  int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count();
  int64_t last = st.drop_warned_ms.load(std::memory_order_relaxed);
  if (last != 0 && now - last < kDropWarnIntervalMs) return out;
  if (!st.drop_warned_ms.compare_exchange_strong(last, now)) return out;
  std::string msg;
  if (uint64_t n = check.dropped_total())
    msg = "dropped " + std::to_string(n) + " of " + std::to_string(b.sample_count) +
          " sample(s) with an invalid name or a label value that is not UTF-8 "
          "(moni_samples_dropped_total); ";
  if (check.samples_sorted)
    msg += "sorted the labels of " + std::to_string(check.samples_sorted) + " sample(s); ";
  if (check.metadata_fixed)
    msg += "repaired " + std::to_string(check.metadata_fixed) + " metadata record(s); ";
  log_warn(from.label(),
           msg + "first: " + check.example + " (such drops are logged at most once a minute)");
  return out;
}

// One collection's emit target. From ABI 1.2 a collector may emit from
// several threads at once, so the delivery time is the wall time during
// which at least one emit was delivering (overlapping deliveries count
// once): the collector's own duration is its wall time minus that.
struct CollectCtx {
  Graph* graph;
  CollectorJob* job;
  std::mutex mu;
  int active = 0;                                  // guarded by mu
  std::chrono::steady_clock::time_point since;     // guarded by mu: when active became > 0
  std::chrono::steady_clock::duration delivering{};  // guarded by mu
};

int deliver_collected(void* ctx, const moni_batch* b) {
  auto* c = static_cast<CollectCtx*>(ctx);
  {
    std::lock_guard lock(c->mu);
    if (c->active++ == 0) c->since = std::chrono::steady_clock::now();
  }
  BatchCheck check;
  const moni_batch& valid = checked(*c->job->instance, *b, check);
  for (Pipeline* p : c->job->pipelines) c->graph->deliver(*p, valid);
  std::lock_guard lock(c->mu);
  if (--c->active == 0) c->delivering += std::chrono::steady_clock::now() - c->since;
  return MONI_OK;
}

int kind_rank(uint32_t kind) {
  switch (kind) {
    case MONI_KIND_STORAGE:
      return 0;
    case MONI_KIND_PROCESSOR:
      return 1;
    case MONI_KIND_OUTPUT:
      return 2;
    default:
      return 3;
  }
}

}  // namespace

void Graph::deliver(Pipeline& p, const moni_batch& batch) { deliver_from(p, 0, batch); }

void Graph::deliver_from(Pipeline& p, size_t stage, const moni_batch& batch) {
  if (stage < p.processors.size()) {
    Instance& proc = *p.processors[stage];
    Batch out;
    auto r = proc.process(batch, &append_to_batch, &out);
    if (!r) {
      proc.stats().errors++;
      log_warn(proc.label(), "process failed (pipeline " + p.name + "): " + r.error().message);
    }
    if (!out.empty()) {
      BatchCheck check;
      deliver_from(p, stage + 1, checked(proc, out.view(), check));
    }
    return;
  }
  p.samples->fetch_add(batch.sample_count, std::memory_order_relaxed);
  for (auto& sink : p.sinks) {
    auto r = sink->write(batch);
    if (!r) {
      sink->stats().write_errors++;
      log_warn(sink->label(), "write failed (pipeline " + p.name + "): " + r.error().message);
    }
  }
  for (Pipeline* f : p.forwards) deliver_from(*f, 0, batch);
}

void CollectorJob::finish(std::string error) {
  {
    std::lock_guard lock(mu_);
    ++finished_;
    last_error_ = std::move(error);
    on_demand = false;
    running = false;
  }
  cv_.notify_all();
}

bool CollectorJob::claim(uint64_t& target, bool on_demand_run) {
  std::lock_guard lock(mu_);
  // Under mu_, a running collection has not counted itself in finished_ yet.
  target = finished_ + 1;
  if (running.exchange(true)) return false;
  on_demand = on_demand_run;
  return true;
}

bool CollectorJob::wait(uint64_t target, std::chrono::steady_clock::time_point deadline,
                        std::string& error) {
  std::unique_lock lock(mu_);
  if (!cv_.wait_until(lock, deadline, [&] { return finished_ >= target; })) return false;
  error = last_error_;
  return true;
}

Result<void> Graph::run_collector(CollectorJob& job, int64_t now_ms, double* deliver_s) {
  CollectCtx ctx{this, &job, {}, 0, {}, {}};
  Instance& inst = *job.instance;
  Result<void> r;
  if (inst.config().builtin_self) {
    if (builtin_collect) builtin_collect(now_ms, &deliver_collected, &ctx);
  } else {
    r = inst.collect(now_ms, &deliver_collected, &ctx);
  }
  std::lock_guard lock(ctx.mu);  // every emit has returned; this orders their writes
  if (deliver_s) *deliver_s = std::chrono::duration<double>(ctx.delivering).count();
  return r;
}

std::vector<CollectorJob*> Graph::jobs_feeding(const Instance& sink) const {
  // Pipelines whose batches reach `sink`: its own, then whatever forwards
  // into one of those (to a fixed point; forward graphs are small).
  std::vector<const Pipeline*> reach;
  for (const auto& p : pipelines)
    for (const auto& s : p->sinks)
      if (s.get() == &sink) {
        reach.push_back(p.get());
        break;
      }
  for (bool grew = true; grew;) {
    grew = false;
    for (const auto& p : pipelines) {
      if (std::find(reach.begin(), reach.end(), p.get()) != reach.end()) continue;
      for (const Pipeline* f : p->forwards)
        if (std::find(reach.begin(), reach.end(), f) != reach.end()) {
          reach.push_back(p.get());
          grew = true;
          break;
        }
    }
  }
  std::vector<CollectorJob*> out;
  for (const auto& j : jobs)
    for (const Pipeline* p : j->pipelines)
      if (std::find(reach.begin(), reach.end(), p) != reach.end()) {
        out.push_back(j.get());
        break;
      }
  return out;
}

const moni_storage_reader* Graph::storage(std::string_view name) {
  Instance* found = nullptr;
  if (!name.empty()) {
    auto it = instances.find(std::string(name));
    if (it == instances.end() || it->second->kind() != MONI_KIND_STORAGE) return nullptr;
    found = it->second.get();
  } else {
    for (auto& [n, i] : instances)
      if (i->kind() == MONI_KIND_STORAGE) {
        if (found) return nullptr;  // ambiguous: the caller must name one
        found = i.get();
      }
  }
  return found ? found->reader() : nullptr;
}

std::vector<std::shared_ptr<Instance>> Graph::ordered(
    const std::map<std::string, std::shared_ptr<Instance>>& m, bool start_order) {
  std::vector<std::shared_ptr<Instance>> v;
  for (auto& [n, i] : m) v.push_back(i);
  std::stable_sort(v.begin(), v.end(), [&](const auto& a, const auto& b) {
    return start_order ? kind_rank(a->kind()) < kind_rank(b->kind())
                       : kind_rank(a->kind()) > kind_rank(b->kind());
  });
  return v;
}

Result<void> Graph::start_new() {
  std::vector<std::shared_ptr<Instance>> started;
  for (auto& inst : ordered(instances, true)) {
    if (inst->started()) continue;  // reused
    auto r = inst->start();
    if (!r) {
      for (auto it = started.rbegin(); it != started.rend(); ++it) {
        (void)(*it)->flush();
        (*it)->stop();
      }
      return r;
    }
    started.push_back(inst);
  }
  return {};
}

void Graph::stop_except(const Graph* keep) {
  for (auto& inst : ordered(instances, false)) {
    if (keep) {
      auto it = keep->instances.find(inst->name());
      if (it != keep->instances.end() && it->second == inst) continue;
    }
    if (!inst->started()) continue;
    if (auto r = inst->flush(); !r) {
      inst->stats().write_errors++;
      log_error(inst->label(), "flush failed: " + r.error().message);
    }
    inst->stop();
  }
}

void Graph::leave() {
  if (in_flight_.fetch_sub(1) == 1) {
    std::lock_guard lock(idle_mu_);
    idle_cv_.notify_all();
  }
}

void Graph::wait_idle() {
  std::unique_lock lock(idle_mu_);
  while (in_flight_.load() != 0) {
    if (!idle_cv_.wait_for(lock, std::chrono::seconds(5), [&] { return in_flight_.load() == 0; }))
      log_warn("host",
               "waiting for " + std::to_string(in_flight_.load()) + " collection(s) to finish");
  }
}

Result<std::unique_ptr<Graph>> build_graph(HostConfig cfg, PluginRegistry& plugins,
                                           const std::string& data_dir, HostServices* services,
                                           const Graph* previous, PipelineCounters& counters) {
  std::vector<std::string> errors = check_plugins(cfg, plugins);
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
    return make_error(all);
  }
  auto g = std::make_unique<Graph>();
  g->config = std::move(cfg);
  std::shared_ptr<const toml::table> doc = g->config.doc;

  // Unchanged instances (same plugin file, same options) keep running
  // across a reload; a storage instance that changes invalidates the readers
  // handed out, so instances that asked for one are rebuilt too.
  auto reusable = [&](const InstanceConfig& ic) -> std::shared_ptr<Instance> {
    if (!previous) return nullptr;
    auto it = previous->instances.find(ic.name);
    if (it == previous->instances.end()) return nullptr;
    const auto& old = it->second;
    if (old->config().fingerprint != ic.fingerprint || !old->started()) return nullptr;
    if (!ic.builtin_self && old->plugin() != plugins.find(ic.plugin).get()) return nullptr;
    return old;
  };
  bool storage_changed = false;
  if (previous) {
    for (const auto& ic : g->config.instances)
      if (ic.kind == MONI_KIND_STORAGE && !reusable(ic)) storage_changed = true;
    for (const auto& [n, i] : previous->instances)
      if (i->kind() == MONI_KIND_STORAGE && !g->config.instance(n)) storage_changed = true;
  }

  for (const auto& ic : g->config.instances) {
    std::shared_ptr<Instance> inst = reusable(ic);
    if (inst && storage_changed && inst->uses_storage()) inst = nullptr;
    if (inst) {
      g->reused.push_back(ic.name);
    } else {
      inst = std::make_shared<Instance>(
          ic, doc, ic.builtin_self ? nullptr : plugins.find(ic.plugin), data_dir, services);
      if (auto r = inst->create(); !r) {
        errors.push_back(r.error().message);
        continue;
      }
    }
    g->instances.emplace(ic.name, std::move(inst));
  }
  if (!errors.empty()) {
    std::string all;
    for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
    return make_error(all);
  }

  std::map<std::string, Pipeline*> by_name;
  for (const auto& pc : g->config.pipelines) {
    auto p = std::make_unique<Pipeline>();
    p->name = pc.name;
    for (const auto& n : pc.processors) p->processors.push_back(g->instances.at(n));
    for (const auto& n : pc.sinks) p->sinks.push_back(g->instances.at(n));
    p->samples = counters.samples(pc.name);
    by_name[pc.name] = p.get();
    g->pipelines.push_back(std::move(p));
  }
  for (const auto& pc : g->config.pipelines)
    for (const auto& f : pc.forward) by_name[pc.name]->forwards.push_back(by_name.at(f));
  for (const auto& ic : g->config.instances) {
    if (ic.kind != MONI_KIND_COLLECTOR) continue;
    auto job = std::make_unique<CollectorJob>();
    job->instance = g->instances.at(ic.name);
    for (const auto& pc : g->config.pipelines)
      for (const auto& c : pc.collectors)
        if (c == ic.name) job->pipelines.push_back(by_name.at(pc.name));
    if (job->pipelines.empty()) {
      log_warn("config",
               ic.where + ": collector '" + ic.name + "' is in no pipeline; it will not run");
      continue;
    }
    g->jobs.push_back(std::move(job));
  }
  return g;
}

}  // namespace moni::host
