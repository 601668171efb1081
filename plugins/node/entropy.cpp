// entropy: node_entropy_{available,pool_size}_bits from
// <procfs>/sys/kernel/random.
#include "sub_collector.hpp"

namespace moni::node {
namespace {

class Entropy : public SubCollector {
 public:
  explicit Entropy(const Options& o) {
    join(avail_, o.procfs, "sys/kernel/random/entropy_avail");
    join(pool_, o.procfs, "sys/kernel/random/poolsize");
  }
  Result<void> collect(Batch& out) override {
    uint64_t avail;
    if (!reader_.read_u64(avail_, avail, true)) return io_error("entropy", avail_);
    // poolsize is read-only and fixed for the kernel's life (a /proc/sys
    // read costs ~5 us): read until it once succeeds.
    if (pool_bits_ == 0 && !reader_.read_u64(pool_, pool_bits_))
      return io_error("entropy", pool_);
    const uint64_t pool = pool_bits_;
    describe(out, "node_entropy_available_bits", MetricType::Gauge, "Bits of available entropy.");
    add_sample(out, "node_entropy_available_bits", {}, static_cast<double>(avail));
    describe(out, "node_entropy_pool_size_bits", MetricType::Gauge, "Bits of entropy pool.");
    add_sample(out, "node_entropy_pool_size_bits", {}, static_cast<double>(pool));
    return {};
  }

 private:
  std::string avail_, pool_;
  uint64_t pool_bits_ = 0;
};

}  // namespace
std::unique_ptr<SubCollector> make_entropy(const Options& o) { return std::make_unique<Entropy>(o); }
}  // namespace moni::node
