// Memory of the in-memory heads' raw samples: blocks of one size carved from
// 4 MiB regions and recycled, instead of a malloc, a zero fill, and often
// fresh page faults (the chunk thread frees what the writer allocated) for
// every head that starts after a cut.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace moni::tsdb {

class HeadPool;

/// One head sample: timestamp and value side by side, so that appending a
/// sample writes one cache line (separate arrays wrote two).
struct HeadSample {
  int64_t t;
  double v;
};

/// A head's samples (one block of `cap` HeadSamples), owned: returned to
/// the pool when released. Thread-safety: none (the owner's).
class HeadArrays {
 public:
  HeadArrays() = default;
  HeadArrays(HeadPool* pool, int64_t* ts, uint32_t cap) : ts_(ts), cap_(cap), pool_(pool) {}
  HeadArrays(HeadArrays&& o) noexcept
      : ts_(std::exchange(o.ts_, nullptr)), cap_(std::exchange(o.cap_, 0)), pool_(o.pool_) {}
  HeadArrays& operator=(HeadArrays&& o) noexcept {
    if (this != &o) {
      reset();
      ts_ = std::exchange(o.ts_, nullptr);
      cap_ = std::exchange(o.cap_, 0);
      pool_ = o.pool_;
    }
    return *this;
  }
  HeadArrays(const HeadArrays&) = delete;
  HeadArrays& operator=(const HeadArrays&) = delete;
  ~HeadArrays() { reset(); }
  void reset();
  HeadSample* data() const { return reinterpret_cast<HeadSample*>(ts_); }
  uint32_t cap() const { return cap_; }

 private:
  int64_t* ts_ = nullptr;
  uint32_t cap_ = 0;
  HeadPool* pool_ = nullptr;
};

/// Hands out HeadArrays of at least the requested capacity: blocks of
/// `samples` samples from the pool, bigger ones from the heap. Blocks are
/// kept until the pool is destroyed (it must outlive every HeadArrays).
/// Thread-safety: get() and release are thread-safe.
class HeadPool {
 public:
  explicit HeadPool(uint32_t samples);
  ~HeadPool();
  HeadPool(const HeadPool&) = delete;
  HeadPool& operator=(const HeadPool&) = delete;
  HeadArrays get(size_t need);

 private:
  friend class HeadArrays;
  void put(int64_t* ts, uint32_t cap);

  uint32_t cap_;
  size_t block_bytes_;
  std::mutex mu_;
  std::vector<int64_t*> free_;
  std::vector<std::pair<void*, size_t>> regions_;
  char* next_ = nullptr;
  size_t left_ = 0;
};

}  // namespace moni::tsdb
