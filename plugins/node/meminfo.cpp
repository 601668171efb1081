// meminfo: node_memory_<Field>[_bytes] from <procfs>/meminfo, named the way
// node_exporter names them ("Active(anon)" -> node_memory_Active_anon_bytes).
#include "sub_collector.hpp"
#include "key_memo.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

class Meminfo : public SubCollector {
 public:
  explicit Meminfo(const Options& o) { join(file_, o.procfs, "meminfo"); }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("meminfo", file_);
    keys_.rewind();
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
      bool bytes = !unit.empty();  // the kernel only ever writes kB
      Key* k = &keys_.next(key, [&](Key& e, std::string_view) { e.valid = false; });
      if (!k->valid || k->bytes != bytes) make_key(*k, key, bytes);
      if (bytes) v *= 1024;
      describe(out, k->name, k->type, k->help);
      add_sample(out, k->name, {}, v);
    }
    return {};
  }

 private:
  // The metric of one meminfo key, built once ("Active(anon)" with a unit
  // -> node_memory_Active_anon_bytes); the keys are fixed for the kernel's
  // life.
  struct Key {
    bool valid = false, bytes = false;
    MetricType type = MetricType::Gauge;
    std::string name, help;
  };
  static void make_key(Key& k, std::string_view key, bool bytes) {
    std::string field;
    // "Active(anon)" -> "Active_anon"
    for (char c : key) {
      if (c == '(') field += '_';
      else if (c != ')') field += c;
    }
    if (bytes) field += "_bytes";
    k.name.assign("node_memory_").append(field);
    k.help.assign("Memory information field ").append(field).append(".");
    bool counter = field.size() >= 6 && field.compare(field.size() - 6, 6, "_total") == 0;
    k.type = counter ? MetricType::Counter : MetricType::Gauge;
    k.bytes = bytes;
    k.valid = true;
  }
  KeyMemo<Key> keys_;
  std::string file_;
};

}  // namespace
std::unique_ptr<SubCollector> make_meminfo(const Options& o) { return std::make_unique<Meminfo>(o); }
}  // namespace moni::node
