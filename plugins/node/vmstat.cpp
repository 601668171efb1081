// vmstat: node_vmstat_<field> (untyped) for the fields matching
// vmstat.fields, from <procfs>/vmstat.
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

class Vmstat : public SubCollector {
 public:
  explicit Vmstat(const Options& o) : fields_(o.vmstat_fields) { join(file_, o.procfs, "vmstat"); }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("vmstat", file_);
    fields_.rewind();
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view key = next_field(line);
      if (key.empty() || !fields_.matches(key)) continue;
      double v;
      if (!parse_double(next_field(line), v))
        return make_error("vmstat: invalid value of " + std::string(key) + " in " + file_);
      name_.assign("node_vmstat_").append(key);
      help_.assign("/proc/vmstat information field ").append(key).append(".");
      describe(out, name_, MetricType::Unknown, help_);
      add_sample(out, name_, {}, v);
    }
    return {};
  }

 private:
  MatchCache fields_;
  std::string file_, name_, help_;
};

}  // namespace
std::unique_ptr<SubCollector> make_vmstat(const Options& o) { return std::make_unique<Vmstat>(o); }
}  // namespace moni::node
