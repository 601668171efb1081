// uname: node_uname_info from the uname(2) system call (like node_exporter,
// it ignores the procfs root).
#include "sub_collector.hpp"

#include <cerrno>
#include <cstring>
#include <sys/utsname.h>

namespace moni::node {
namespace {

class Uname : public SubCollector {
 public:
  explicit Uname(const Options&) {}
  Result<void> collect(Batch& out) override {
    struct utsname u;
    if (::uname(&u) != 0) return make_error(std::string("uname: ") + std::strerror(errno));
    describe(out, "node_uname_info", MetricType::Gauge,
                 "Labeled system information as provided by the uname system call.");
    add_sample(out, "node_uname_info",
            {{"sysname", u.sysname},
             {"release", u.release},
             {"version", u.version},
             {"machine", u.machine},
             {"nodename", u.nodename},
             {"domainname", u.domainname}},
            1.0);
    return {};
  }
};

}  // namespace
std::unique_ptr<SubCollector> make_uname(const Options& o) { return std::make_unique<Uname>(o); }
}  // namespace moni::node
