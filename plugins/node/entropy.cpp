// entropy: node_entropy_{available,pool_size}_bits from
// <procfs>/sys/kernel/random.
#include "sub_collector.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/random.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <unistd.h>

namespace moni::node {
namespace {

class Entropy : public SubCollector {
 public:
  explicit Entropy(const Options& o) {
    join(avail_, o.procfs, "sys/kernel/random/entropy_avail");
    join(pool_, o.procfs, "sys/kernel/random/poolsize");
  }
  ~Entropy() override {
    if (random_fd_ >= 0) ::close(random_fd_);
  }
  Result<void> collect(Batch& out) override {
    uint64_t avail;
    if (!read_avail(avail)) return io_error("entropy", avail_);
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
  // entropy_avail is the input pool's count, which RNDGETENTCNT on
  // /dev/urandom returns too (the same variable in every kernel version):
  // one ioctl instead of a /proc/sys read (~5-9 us: a page allocated and
  // the number formatted per read). Only when <procfs> is the kernel's
  // procfs (the pool is global, so any procfs mount will do); a fixture
  // tree, or a /dev without urandom, is read as a file.
  bool read_avail(uint64_t& out) {
    if (random_fd_ >= 0) {
      int bits = 0;
      if (::ioctl(random_fd_, RNDGETENTCNT, &bits) == 0 && bits >= 0) {
        out = static_cast<uint64_t>(bits);
        return true;
      }
      ::close(random_fd_);  // refused after all: back to the file for good
      random_fd_ = -1;
    }
    if (!reader_.read_u64(avail_, out, true)) return false;
    if (!tried_ioctl_) {
      tried_ioctl_ = true;
      struct statfs fs;
      int fd = reader_.kept_fd(avail_);
      if (fd >= 0 && ::fstatfs(fd, &fs) == 0 && fs.f_type == PROC_SUPER_MAGIC) {
        random_fd_ = ::open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        int bits = 0;
        if (random_fd_ >= 0 && ::ioctl(random_fd_, RNDGETENTCNT, &bits) != 0) {
          ::close(random_fd_);
          random_fd_ = -1;
        }
      }
    }
    return true;
  }

  std::string avail_, pool_;
  uint64_t pool_bits_ = 0;
  int random_fd_ = -1;
  bool tried_ioctl_ = false;
};

}  // namespace
std::unique_ptr<SubCollector> make_entropy(const Options& o) { return std::make_unique<Entropy>(o); }
}  // namespace moni::node
