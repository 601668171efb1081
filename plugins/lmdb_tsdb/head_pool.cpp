#include "head_pool.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <new>

namespace moni::tsdb {

namespace {
constexpr size_t kRegion = 4u << 20;
}  // namespace

void HeadArrays::reset() {
  if (ts_) pool_->put(ts_, cap_);
  ts_ = nullptr;
  cap_ = 0;
}

HeadPool::HeadPool(uint32_t samples)
    : cap_(std::max<uint32_t>(samples, 1)),
      // Not rounded to a page: 4 KiB blocks put every head's sample k at
      // the same page offset, one cache set for all (measured slower).
      block_bytes_((size_t{cap_} * 16 + 63) / 64 * 64) {}

HeadPool::~HeadPool() {
  for (auto& [p, n] : regions_) ::munmap(p, n);
}

HeadArrays HeadPool::get(size_t need) {
  if (need > cap_) {
    // Bigger than a block (a head longer than chunk_samples: a replay
    // after the option shrank): from the heap.
    auto cap = static_cast<uint32_t>(need);
    return HeadArrays(this, static_cast<int64_t*>(::operator new (size_t{cap} * 16)), cap);
  }
  std::lock_guard<std::mutex> l(mu_);
  if (!free_.empty()) {
    int64_t* p = free_.back();
    free_.pop_back();
    return HeadArrays(this, p, cap_);
  }
  if (left_ < block_bytes_) {
    // No MADV_HUGEPAGE: with the kernel's usual defrag=madvise a fault
    // in such a region may stall in direct compaction, and the first
    // touch of 2 MiB pages cost more than the TLB saved (measured).
    size_t bytes = std::max(kRegion, block_bytes_);
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) throw std::bad_alloc();
    regions_.emplace_back(p, bytes);
    next_ = static_cast<char*>(p);
    left_ = bytes;
  }
  auto* p = reinterpret_cast<int64_t*>(next_);
  next_ += block_bytes_;
  left_ -= block_bytes_;
  return HeadArrays(this, p, cap_);
}

void HeadPool::put(int64_t* ts, uint32_t cap) {
  if (cap != cap_) {
    ::operator delete(ts);
    return;
  }
  std::lock_guard<std::mutex> l(mu_);
  free_.push_back(ts);
}

}  // namespace moni::tsdb
