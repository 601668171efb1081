// Builds queue records: fragments of a prometheus.WriteRequest (remote write
// 1.0 wire format, field numbers in proto/remote.proto), one or more per
// queue partition, each holding at most max_samples_per_send samples.
//
// Why hand-encoded instead of libprotobuf: records are stored in the durable
// queue already encoded, and a request is then just the concatenation of
// records (protobuf concatenates repeated fields), so sending needs no
// decoding, no message objects and no per-sample allocation. The wire format
// of these five messages is a handful of varints and length prefixes; the
// tests decode every request with protoc-generated code from remote.proto.
#pragma once

#include <cstdint>
#include <moni/sample.hpp>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace moni::remote_write {

/// Stable 64-bit hash of bytes (persisted partition choice depends on it).
uint64_t stable_hash(std::string_view bytes);

/// Appends one prometheus.Label as TimeSeries field 1 to `out`.
void encode_label(std::string& out, std::string_view name, std::string_view value);

/// One record to append to the queue.
struct QueueRecord {
  uint32_t partition = 0;
  uint32_t samples = 0;
  std::string payload;  // WriteRequest fragment
};

/// Groups the samples of one write() by series and partition and encodes
/// them. Thread-safety: none; one per endpoint, used by write() only.
class RecordBuilder {
 public:
  RecordBuilder(uint32_t partitions, uint32_t max_samples_per_record)
      : partitions_(partitions), max_samples_(max_samples_per_record) {}

  /// `encoded_labels` is the series' labels as encode_label() output, sorted.
  void add(std::string_view encoded_labels, double value, int64_t ts_ms);
  /// Adds one MetricMetadata (WriteRequest field 3), sent with partition 0.
  void add_metadata(std::string_view family, MetricType type, std::string_view help,
                    std::string_view unit);
  size_t samples() const { return points_.size(); }
  /// Moves the encoded records into `out` (cleared first) and resets.
  void finish(std::vector<QueueRecord>& out);

 private:
  struct Hash {
    size_t operator()(const std::string& s) const { return stable_hash(s); }
  };
  struct Series {
    const std::string* labels;
    uint32_t partition;
    uint32_t count = 0;
    uint32_t offset = 0;
  };
  struct Point {
    uint32_t series;
    double value;
    int64_t ts;
  };
  uint32_t partitions_;
  uint32_t max_samples_;
  std::unordered_map<std::string, uint32_t, Hash> index_;
  std::vector<Series> series_;
  std::vector<Point> points_;
  std::vector<Point> sorted_;
  std::string metadata_;
};

}  // namespace moni::remote_write
