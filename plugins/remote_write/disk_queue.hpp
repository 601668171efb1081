// DiskQueue: the durable, partitioned FIFO of encoded records behind one
// remote_write endpoint, in an LMDB environment of its own. A series always
// hashes to the same partition, and a partition is sent by one shard at a
// time in record order, so samples of a series reach the receiver in order.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <moni/result.hpp>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "wire_encoder.hpp"

struct MDB_env;

namespace moni::remote_write {

/// Records handed to one sender: the partition, the seq range, the samples
/// and the concatenated WriteRequest bytes.
struct Lease {
  uint32_t partition = 0;
  uint64_t first_seq = 0, last_seq = 0;
  uint64_t samples = 0;
  std::string body;
};

/// Totals for metrics and shard scaling.
struct QueueStats {
  uint64_t samples = 0;
  uint64_t records = 0;
  uint64_t bytes = 0;
  int64_t oldest_enqueued_ms = 0;  // 0 when empty
};

/// Per-partition readiness for the scheduler.
struct PartitionState {
  uint64_t samples = 0;
  uint64_t records = 0;
  int64_t oldest_enqueued_ms = 0;
  bool leased = false;
};

/// Thread-safety: every method is thread-safe. append() runs on the host's
/// write path; lease()/release() on sender threads.
class DiskQueue {
 public:
  /// Opens (creating) the environment in `dir`. `partitions` is used when the
  /// queue is empty; a non-empty queue keeps the count it was written with.
  static Result<std::unique_ptr<DiskQueue>> open(const std::string& dir, uint64_t max_bytes,
                                                 uint32_t partitions);
  ~DiskQueue();

  uint32_t partitions() const { return partitions_; }

  /// Appends the records in one durable (fsynced) transaction. When the
  /// queue would exceed max_bytes, the oldest records that are not being
  /// sent are deleted first; their sample count is added to *dropped.
  Result<void> append(std::vector<QueueRecord>& records, int64_t now_ms, uint64_t* dropped);

  /// Takes the head records of `partition` (up to max_samples samples, at
  /// least one record, none after seq `upto` unless it is 0) for sending;
  /// nullopt when empty or already leased.
  Result<std::optional<Lease>> lease(uint32_t partition, uint64_t max_samples, uint64_t upto = 0);
  /// Ends a lease; with `remove` the leased records are deleted (acked or
  /// rejected for good), otherwise they stay for a retry.
  Result<void> release(const Lease& lease, bool remove);

  QueueStats stats() const;
  PartitionState partition(uint32_t p) const;

 private:
  struct Rec {
    uint64_t seq;
    uint32_t samples;
    uint32_t bytes;
    int64_t enqueued_ms;
  };
  struct Part {
    std::deque<Rec> recs;
    uint64_t samples = 0;
    bool leased = false;
    uint64_t leased_upto = 0;
  };
  DiskQueue() = default;
  Result<void> load();

  mutable std::mutex mu_;
  MDB_env* env_ = nullptr;
  unsigned dbi_ = 0;
  std::string dir_;
  uint64_t max_bytes_ = 0;
  uint32_t partitions_ = 0;
  uint64_t next_seq_ = 1;
  std::vector<Part> parts_;
  uint64_t samples_ = 0, records_ = 0, bytes_ = 0;
};

}  // namespace moni::remote_write
