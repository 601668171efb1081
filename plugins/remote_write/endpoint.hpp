// Endpoint: one remote write receiver: its relabeling and encoding on the
// write path, its durable queue, and its sender shards.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <moni/batch.hpp>
#include <moni/plugin.hpp>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config.hpp"
#include "disk_queue.hpp"
#include "relabel.hpp"
#include "wire_encoder.hpp"

namespace moni::http_client {
class HttpClient;
}

namespace moni::remote_write {

using http_client::HttpClient;

/// Thread-safety: write(), flush() and metrics() may run concurrently with
/// the sender threads; open/start/stop are called by the plugin's lifecycle
/// only. write() never waits on the network: it appends to the disk queue.
class Endpoint {
 public:
  Endpoint(Context& ctx, EndpointConfig cfg, std::string queue_dir);
  ~Endpoint();

  /// Opens the queue, reads credential files, prepares TLS; starts senders.
  Result<void> start();
  /// Stops the senders (in-flight requests get `grace_ms` to finish), closes
  /// the queue. Unsent samples stay on disk for the next start.
  void stop(int64_t grace_ms);
  Result<void> write(const BatchView& batch);
  /// Makes everything queued so far eligible for sending now.
  void flush();
  void metrics(Batch& out);
  const EndpointConfig& config() const { return cfg_; }

 private:
  void shard_loop(uint32_t idx);
  // Picks a ready partition and claims it; -1 with *wake_ms set otherwise.
  int pick(int64_t now_ms, int64_t* wake_ms);
  uint32_t desired_shards() const;
  void send(HttpClient& client, Lease& lease);
  void log_throttled(LogLevel level, const std::string& msg);

  Context& ctx_;
  EndpointConfig cfg_;
  std::string queue_dir_;
  Headers headers_;
  std::unique_ptr<DiskQueue> queue_;

  // write path (never concurrent with itself)
  std::unique_ptr<RecordBuilder> builder_;
  LabelBuf labels_;
  std::string enc_, scratch_;
  std::vector<QueueRecord> records_;
  std::unordered_map<std::string, std::pair<uint64_t, int64_t>> metadata_sent_;

  // sender scheduling, guarded by mu_
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  uint32_t busy_ = 0;
  uint32_t rr_ = 0;
  int64_t flush_mark_ms_ = 0;
  std::vector<bool> claimed_;
  std::vector<int64_t> backoff_until_ms_;
  std::vector<int64_t> backoff_ms_;
  // A retried request is resent with exactly the same records: if the failed
  // attempt was in fact stored, the duplicate-only retry may be rejected
  // (out of order) without taking newer samples down with it.
  std::vector<uint64_t> retry_upto_;
  std::vector<std::unique_ptr<HttpClient>> clients_;
  std::vector<std::thread> threads_;
  int64_t last_log_ms_ = 0;

  std::atomic<uint64_t> sent_{0}, failed_{0}, retried_{0}, dropped_{0}, relabel_dropped_{0};
  std::atomic<bool> started_{false};
};

}  // namespace moni::remote_write
