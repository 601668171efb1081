// remote_write: streams every sample written to this output to one or more
// Prometheus remote write 1.0 receivers (Prometheus, Mimir, Thanos Receive,
// VictoriaMetrics...) through a durable on-disk queue per endpoint.
#include <memory>
#include <moni/sdk.hpp>
#include <vector>

#include "config.hpp"
#include "endpoint.hpp"

namespace moni::remote_write {

/// Thread-safety: as moni::Output; write() is serialized by the host,
/// self_metrics() may run concurrently with it.
class RemoteWrite : public Output {
 public:
  static constexpr std::string_view plugin_name = "remote_write";
  static constexpr std::string_view plugin_version = MONI_REMOTE_WRITE_VERSION;
  static constexpr std::string_view plugin_description =
      "sends samples to Prometheus remote write receivers through a durable disk queue";
  static constexpr std::string_view sample_config =
      R"(# external_labels = { cluster = "eu-1" }   # added where a series lacks them
# queue_max_size = "1GiB"                    # per endpoint; oldest samples dropped beyond
# [[outputs.<name>.endpoints]]
# url = "http://127.0.0.1:9009/api/v1/push"  # required
# name = "mimir"                 # metric label and queue directory (default host_port)
# remote_timeout = "30s"
# min_shards = 1
# max_shards = 4
# max_samples_per_send = 2000
# batch_send_deadline = "5s"
# min_backoff = "30ms"
# max_backoff = "5s"
# bearer_token_file = "/etc/moni/token"
# headers = { "X-Scope-OrgID" = "tenant-1" }
# [[outputs.<name>.endpoints.write_relabel_configs]]
# source_labels = ["__name__"]
# regex = "go_.*"
# action = "drop")";

  RemoteWrite(Context& ctx, const ConfigView& cfg) : ctx_(ctx) {
    Config c = parse_config(cfg, "remote_write[" + std::string(ctx.instance_name()) + "]");
    std::string base = std::string(ctx.data_dir()) + "/" + std::string(ctx.instance_name());
    for (auto& ep : c.endpoints) {
      std::string dir = base + "/" + ep.name;
      endpoints_.push_back(std::make_unique<Endpoint>(ctx, std::move(ep), dir));
    }
  }

  ~RemoteWrite() override { stop(); }

  Result<void> start() override {
    for (auto& e : endpoints_)
      if (auto r = e->start(); !r) {
        stop();
        return r;
      }
    return {};
  }

  void stop() override {
    for (auto& e : endpoints_) e->stop(std::min<int64_t>(e->config().remote_timeout_ms, 5000));
  }

  Result<void> write(const BatchView& batch) override {
    Result<void> out;
    // Every endpoint gets the batch even when an earlier one failed.
    for (auto& e : endpoints_)
      if (auto r = e->write(batch); !r && out) out = r;
    return out;
  }

  Result<void> flush() override {
    for (auto& e : endpoints_) e->flush();
    return {};
  }

  void self_metrics(Batch& out) override {
    out.describe("moni_remote_write_samples_sent_total", MetricType::Counter,
                 "Samples acknowledged (2xx) by the endpoint.");
    out.describe("moni_remote_write_samples_failed_total", MetricType::Counter,
                 "Samples rejected by the endpoint with a non-retryable status (4xx except 429) "
                 "and dropped.");
    out.describe("moni_remote_write_samples_retried_total", MetricType::Counter,
                 "Samples in requests that failed with 5xx, 429 or a transport error and were kept "
                 "for a retry.");
    out.describe("moni_remote_write_samples_dropped_total", MetricType::Counter,
                 "Oldest queued samples deleted unsent because queue_max_size was reached.");
    out.describe("moni_remote_write_samples_relabel_dropped_total", MetricType::Counter,
                 "Samples dropped by write_relabel_configs before queueing.");
    out.describe("moni_remote_write_samples_pending", MetricType::Gauge,
                 "Samples in the durable queue, not yet acknowledged.");
    out.describe("moni_remote_write_queue_bytes", MetricType::Gauge,
                 "Bytes of queued records (the quantity queue_max_size caps).");
    out.describe("moni_remote_write_lag_seconds", MetricType::Gauge,
                 "Age of the oldest unacknowledged queued record (0 when the queue is empty).");
    out.describe("moni_remote_write_shards", MetricType::Gauge,
                 "Sender shards currently active (scales with the backlog).");
    for (auto& e : endpoints_) e->metrics(out);
  }

 private:
  Context& ctx_;
  std::vector<std::unique_ptr<Endpoint>> endpoints_;
};

}  // namespace moni::remote_write

MONI_EXPORT_PLUGIN(moni::remote_write::RemoteWrite)
