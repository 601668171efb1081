// meminfo: node_memory_<Field>[_bytes] from <procfs>/meminfo, named the way
// node_exporter names them ("Active(anon)" -> node_memory_Active_anon_bytes).
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

class Meminfo : public SubCollector {
 public:
  explicit Meminfo(const Options& o) { join(file_, o.procfs, "meminfo"); }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("meminfo", file_);
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view key = next_field(line);
      if (key.empty()) continue;
      std::string_view num = next_field(line);
      std::string_view unit = next_field(line);
      if (key.back() != ':' || !next_field(line).empty())
        return make_error("meminfo: invalid line in " + file_);
      key.remove_suffix(1);
      double v;
      if (!parse_double(num, v)) return make_error("meminfo: invalid value in " + file_);
      field_.clear();
      // "Active(anon)" -> "Active_anon"
      for (char c : key) {
        if (c == '(') field_ += '_';
        else if (c != ')') field_ += c;
      }
      if (!unit.empty()) {  // the kernel only ever writes kB
        v *= 1024;
        field_ += "_bytes";
      }
      name_.assign("node_memory_").append(field_);
      help_.assign("Memory information field ").append(field_).append(".");
      bool counter = field_.size() >= 6 && field_.compare(field_.size() - 6, 6, "_total") == 0;
      describe(out, name_, counter ? MetricType::Counter : MetricType::Gauge, help_);
      add_sample(out, name_, {}, v);
    }
    return {};
  }

 private:
  std::string file_, field_, name_, help_;
};

}  // namespace
std::unique_ptr<SubCollector> make_meminfo(const Options& o) { return std::make_unique<Meminfo>(o); }
}  // namespace moni::node
