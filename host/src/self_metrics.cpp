#include "self_metrics.hpp"

#include <moni/text_format.hpp>
#include <moni/version.hpp>
#include <string>

namespace moni::host {
namespace {

int append_to_batch(void* ctx, const moni_batch* b) {
  auto* out = static_cast<Batch*>(ctx);
  for (size_t i = 0; i < b->sample_count; ++i)
    out->add_sorted(b->samples[i].labels, b->samples[i].label_count, b->samples[i].value,
                    b->samples[i].timestamp_ms);
  for (size_t i = 0; i < b->metadata_count; ++i)
    out->describe(sv(b->metadata[i].family), static_cast<MetricType>(b->metadata[i].type),
                  sv(b->metadata[i].help), sv(b->metadata[i].unit));
  return MONI_OK;
}

}  // namespace

void collect_self_metrics(Graph& graph, const PipelineCounters& counters, const HostStats& stats,
                          Batch& out) {
  const std::string abi = std::to_string(MONI_ABI_MAJOR) + "." + std::to_string(MONI_ABI_MINOR);
  out.describe("moni_build_info", MetricType::Gauge,
               "A metric with a constant '1' value labeled by version and plugin ABI version.");
  out.add("moni_build_info", {{"version", MONI_VERSION_STRING}, {"abi_version", abi}}, 1);

  struct Family {
    const char* name;
    MetricType type;
    const char* help;
  };
  const Family dur{"moni_collector_duration_seconds", MetricType::Gauge,
                   "Duration of the last collection of a collector instance (its collect call, "
                   "without the delivery of its samples)."};
  const Family del{"moni_collector_delivery_seconds", MetricType::Gauge,
                   "Time the samples of the last collection took to go through processors and "
                   "sinks (a storage write includes its commit)."};
  const Family runs{"moni_collector_runs_total", MetricType::Counter,
                    "Collections run by a collector instance."};
  const Family errs{"moni_collector_errors_total", MetricType::Counter,
                    "Collections that failed or exceeded their timeout."};
  const Family skip{"moni_collector_skipped_total", MetricType::Counter,
                    "Ticks skipped because the previous collection was still running."};
  for (const Family* f : {&dur, &del, &runs, &errs, &skip}) out.describe(f->name, f->type, f->help);
  for (auto& [name, inst] : graph.instances) {
    if (inst->kind() != MONI_KIND_COLLECTOR) continue;
    auto& s = inst->stats();
    std::initializer_list<LabelRef> l = {{"instance_name", name}, {"plugin", inst->plugin_name()}};
    out.add(dur.name, l, s.last_duration_s.load());
    out.add(del.name, l, s.last_delivery_s.load());
    out.add(runs.name, l, static_cast<double>(s.runs.load()));
    out.add(errs.name, l, static_cast<double>(s.errors.load()));
    out.add(skip.name, l, static_cast<double>(s.skipped.load()));
  }
  out.describe("moni_processor_errors_total", MetricType::Counter,
               "Batches a processor instance failed to process.");
  for (auto& [name, inst] : graph.instances)
    if (inst->kind() == MONI_KIND_PROCESSOR)
      out.add("moni_processor_errors_total", {{"instance_name", name}},
              static_cast<double>(inst->stats().errors.load()));
  out.describe("moni_samples_dropped_total", MetricType::Counter,
               "Samples a collector or processor instance emitted that the host dropped before "
               "any sink: reason=\"invalid_name\" (no metric name, or a metric or label name "
               "Prometheus does not accept), reason=\"invalid_utf8\" (a label value that is "
               "not valid UTF-8).");
  for (auto& [name, inst] : graph.instances) {
    if (inst->kind() != MONI_KIND_COLLECTOR && inst->kind() != MONI_KIND_PROCESSOR) continue;
    for (auto r : {DropReason::InvalidName, DropReason::InvalidUtf8})
      out.add("moni_samples_dropped_total",
              {{"instance_name", name},
               {"plugin", inst->plugin_name()},
               {"reason", drop_reason_name(r)}},
              static_cast<double>(inst->stats().dropped[static_cast<size_t>(r)].load()));
  }
  out.describe("moni_pipeline_samples_total", MetricType::Counter,
               "Samples a pipeline delivered to its sinks (after its processors).");
  for (const auto& [p, n] : counters.snapshot())
    if (graph.config.pipelines.end() !=
        std::find_if(graph.config.pipelines.begin(), graph.config.pipelines.end(),
                     [&](const PipelineConfig& c) { return c.name == p; }))
      out.add("moni_pipeline_samples_total", {{"pipeline", p}}, static_cast<double>(n));
  out.describe("moni_sink_write_errors_total", MetricType::Counter,
               "Batches a storage or output instance failed to write or flush.");
  for (auto& [name, inst] : graph.instances)
    if (inst->kind() == MONI_KIND_STORAGE || inst->kind() == MONI_KIND_OUTPUT)
      out.add("moni_sink_write_errors_total", {{"instance_name", name}},
              static_cast<double>(inst->stats().write_errors.load()));
  out.describe("moni_plugin_load_failures_total", MetricType::Counter,
               "Plugin files the host tried to load (needed by the config) and refused (see the "
               "log for why).");
  out.add("moni_plugin_load_failures_total", {},
          static_cast<double>(stats.plugin_load_failures.load()));
  out.describe("moni_config_reloads_total", MetricType::Counter,
               "Configuration reloads (SIGHUP) by result.");
  out.add("moni_config_reloads_total", {{"result", "success"}},
          static_cast<double>(stats.reloads_success.load()));
  out.add("moni_config_reloads_total", {{"result", "failure"}},
          static_cast<double>(stats.reloads_failure.load()));
  for (auto& [name, inst] : graph.instances) inst->self_metrics(&append_to_batch, &out);
}

void render_self_metrics(Graph& graph, const PipelineCounters& counters, const HostStats& stats,
                         std::string& out) {
  Batch b;
  collect_self_metrics(graph, counters, stats, b);
  text::render(b.view(), out);
}

}  // namespace moni::host
