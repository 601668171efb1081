// vmstat: node_vmstat_<field> (untyped) for the fields matching
// vmstat.fields, from <procfs>/vmstat.
#include "sub_collector.hpp"
#include "key_memo.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

class Vmstat : public SubCollector {
 public:
  explicit Vmstat(const Options& o) : fields_(o.vmstat_fields) { join(file_, o.procfs, "vmstat"); }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("vmstat", file_);
    keys_.rewind();
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view key = next_field(line);
      if (key.empty()) continue;
      const Key& k = keys_.next(key, [&](Key& e, std::string_view name) {
        e.selected = fields_.matches(name);
        e.name.clear();
        e.help.clear();
        if (!e.selected) return;
        e.name.assign("node_vmstat_").append(name);
        e.help.assign("/proc/vmstat information field ").append(name).append(".");
      });
      if (!k.selected) continue;
      double v;
      if (!parse_double(next_field(line), v))
        return make_error("vmstat: invalid value of " + std::string(key) + " in " + file_);
      describe(out, k.name, MetricType::Unknown, k.help);
      add_sample(out, k.name, {}, v);
    }
    return {};
  }

 private:
  struct Key {
    bool selected = false;
    std::string name, help;
  };
  const Pattern& fields_;
  KeyMemo<Key> keys_;  // /proc/vmstat's keys are fixed for the kernel's life
  std::string file_;
};

}  // namespace
std::unique_ptr<SubCollector> make_vmstat(const Options& o) { return std::make_unique<Vmstat>(o); }
}  // namespace moni::node
