// sockstat: node_sockstat_<PROTO>_<field> from <procfs>/net/sockstat and
// sockstat6, plus *_mem_bytes (pages * page size) for protocols with "mem".
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <cerrno>
#include <unistd.h>

namespace moni::node {
namespace {

class Sockstat : public SubCollector {
 public:
  explicit Sockstat(const Options& o) {
    join(v4_, o.procfs, "net/sockstat");
    join(v6_, o.procfs, "net/sockstat6");
    long ps = ::sysconf(_SC_PAGESIZE);
    page_size_ = ps > 0 ? static_cast<double>(ps) : 4096.0;
  }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(v4_, text, true)) return io_error("sockstat", v4_);
    if (auto r = parse(text, out, v4_); !r) return r;
    // IPv6 may be disabled: then there is no sockstat6, which is fine.
    if (!reader_.read(v6_, text, true)) {
      if (errno == ENOENT) return {};
      return io_error("sockstat", v6_);
    }
    return parse(text, out, v6_);
  }

 private:
  Result<void> parse(std::string_view text, Batch& out, const std::string& file) {
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view proto = next_field(line);
      if (proto.size() < 2 || proto.back() != ':') continue;
      proto.remove_suffix(1);
      for (;;) {
        std::string_view key = next_field(line), val = next_field(line);
        if (key.empty()) break;
        double v;
        if (!parse_double(val, v)) return make_error("sockstat: malformed " + file);
        if (proto == "sockets") {
          if (key != "used") continue;
          emit(out, "node_sockstat_sockets_used", "Number of IPv4 sockets in use.", v);
          continue;
        }
        add(out, proto, key, v);
        if (key == "mem") add(out, proto, "mem_bytes", v * page_size_);
      }
    }
    return {};
  }
  void add(Batch& out, std::string_view proto, std::string_view field, double v) {
    name_.assign("node_sockstat_").append(proto).append("_").append(field);
    help_.assign("Number of ").append(proto).append(" sockets in state ").append(field).append(".");
    emit(out, name_, help_, v);
  }
  static void emit(Batch& out, std::string_view name, std::string_view help, double v) {
    describe(out, name, MetricType::Gauge, help);
    add_sample(out, name, {}, v);
  }
  std::string v4_, v6_, name_, help_;
  double page_size_;
};

}  // namespace
std::unique_ptr<SubCollector> make_sockstat(const Options& o) { return std::make_unique<Sockstat>(o); }
}  // namespace moni::node
