// filefd: node_filefd_{allocated,maximum} from <procfs>/sys/fs/file-nr.
#include "sub_collector.hpp"
#include "text_parse.hpp"

namespace moni::node {
namespace {

class Filefd : public SubCollector {
 public:
  explicit Filefd(const Options& o) { join(file_, o.procfs, "sys/fs/file-nr"); }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(file_, text, true)) return io_error("filefd", file_);
    double allocated, unused, maximum;
    if (!parse_double(next_field(text), allocated) || !parse_double(next_field(text), unused) ||
        !parse_double(next_field(text), maximum))
      return make_error("filefd: malformed " + file_);
    describe(out, "node_filefd_allocated", MetricType::Gauge,
                 "File descriptor statistics: allocated.");
    add_sample(out, "node_filefd_allocated", {}, allocated);
    describe(out, "node_filefd_maximum", MetricType::Gauge, "File descriptor statistics: maximum.");
    add_sample(out, "node_filefd_maximum", {}, maximum);
    return {};
  }

 private:
  std::string file_;
};

}  // namespace
std::unique_ptr<SubCollector> make_filefd(const Options& o) { return std::make_unique<Filefd>(o); }
}  // namespace moni::node
