// pressure: PSI totals from <procfs>/pressure/{cpu,io,memory}, in seconds.
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

struct Family {
  std::string_view resource, kind, name, help;
};
// node_exporter 1.5 exposes cpu "some" only.
constexpr Family kFamilies[] = {
    {"cpu", "some", "node_pressure_cpu_waiting_seconds_total",
     "Total time in seconds that processes have waited for CPU time"},
    {"io", "some", "node_pressure_io_waiting_seconds_total",
     "Total time in seconds that processes have waited due to IO congestion"},
    {"io", "full", "node_pressure_io_stalled_seconds_total",
     "Total time in seconds no process could make progress due to IO congestion"},
    {"memory", "some", "node_pressure_memory_waiting_seconds_total",
     "Total time in seconds that processes have waited for memory"},
    {"memory", "full", "node_pressure_memory_stalled_seconds_total",
     "Total time in seconds no process could make progress due to memory congestion"},
};

class Pressure : public SubCollector {
 public:
  explicit Pressure(const Options& o) : procfs_(o.procfs) {}
  Result<void> collect(Batch& out) override {
    for (std::string_view res : {"cpu", "io", "memory"}) {
      join(path_, procfs_, "pressure/");
      path_.append(res);
      std::string_view text;
      if (!reader_.read(path_, text, true))
        return io_error("pressure: pressure information is unavailable (needs Linux >= 4.20 "
                        "with CONFIG_PSI)",
                        path_);
      double some = -1, full = -1;
      while (!text.empty()) {
        std::string_view line = next_line(text);
        std::string_view kind = next_field(line);
        for (std::string_view f = next_field(line); !f.empty(); f = next_field(line)) {
          if (!starts_with(f, "total=")) continue;
          double us;
          if (!parse_double(f.substr(6), us)) return make_error("pressure: malformed " + path_);
          (kind == "some" ? some : full) = us / 1e6;
        }
      }
      for (const auto& fam : kFamilies) {
        if (fam.resource != res) continue;
        double v = fam.kind == "some" ? some : full;
        if (v < 0) return make_error("pressure: no " + std::string(fam.kind) + " line in " + path_);
        describe(out, fam.name, MetricType::Counter, fam.help);
        add_sample(out, fam.name, {}, v);
      }
    }
    return {};
  }

 private:
  std::string procfs_;
};

}  // namespace
std::unique_ptr<SubCollector> make_pressure(const Options& o) { return std::make_unique<Pressure>(o); }
}  // namespace moni::node
