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
    uint64_t avail, pool;
    if (!reader_.read_u64(avail_, avail, true)) return io_error("entropy", avail_);
    if (!reader_.read_u64(pool_, pool, true)) return io_error("entropy", pool_);
    describe(out, "node_entropy_available_bits", MetricType::Gauge, "Bits of available entropy.");
    add_sample(out, "node_entropy_available_bits", {}, static_cast<double>(avail));
    describe(out, "node_entropy_pool_size_bits", MetricType::Gauge, "Bits of entropy pool.");
    add_sample(out, "node_entropy_pool_size_bits", {}, static_cast<double>(pool));
    return {};
  }

 private:
  std::string avail_, pool_;
};

}  // namespace
std::unique_ptr<SubCollector> make_entropy(const Options& o) { return std::make_unique<Entropy>(o); }
}  // namespace moni::node
