// netstat: node_netstat_<Proto>_<Field> (untyped) for the fields matching
// netstat.fields, from <procfs>/net/{netstat,snmp,snmp6}.
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <cerrno>

namespace moni::node {
namespace {

class Netstat : public SubCollector {
 public:
  explicit Netstat(const Options& o) : fields_(o.netstat_fields) {
    join(netstat_, o.procfs, "net/netstat");
    join(snmp_, o.procfs, "net/snmp");
    join(snmp6_, o.procfs, "net/snmp6");
  }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    fields_.rewind();
    for (const std::string* f : {&netstat_, &snmp_}) {
      if (!reader_.read(*f, text, true)) return io_error("netstat", *f);
      if (auto r = paired(text, out, *f); !r) return r;
    }
    if (!reader_.read(snmp6_, text, true)) {
      if (errno == ENOENT) return {};  // IPv6 disabled
      return io_error("netstat", snmp6_);
    }
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view key = next_field(line), val = next_field(line);
      // "Icmp6InMsgs" -> protocol "Icmp6", field "InMsgs"
      size_t six = key.find('6');
      if (key.empty() || six == std::string_view::npos) continue;
      if (auto r = add(out, key.substr(0, six + 1), key.substr(six + 1), val, snmp6_); !r)
        return r;
    }
    return {};
  }

 private:
  // Lines come in pairs: "Proto: Name1 Name2 ..." then "Proto: v1 v2 ...".
  Result<void> paired(std::string_view text, Batch& out, const std::string& file) {
    while (!text.empty()) {
      std::string_view names = next_line(text);
      if (names.empty()) continue;
      std::string_view values = next_line(text);
      std::string_view p1 = next_field(names), p2 = next_field(values);
      if (p1 != p2 || p1.size() < 2 || p1.back() != ':')
        return make_error("netstat: mismatched header and value lines in " + file);
      p1.remove_suffix(1);
      for (;;) {
        std::string_view n = next_field(names), v = next_field(values);
        if (n.empty() || v.empty()) break;
        if (auto r = add(out, p1, n, v, file); !r) return r;
      }
    }
    return {};
  }
  Result<void> add(Batch& out, std::string_view proto, std::string_view field,
                   std::string_view val, const std::string& file) {
    key_.assign(proto).append("_").append(field);
    if (!fields_.matches(key_)) return {};
    double v;
    if (!parse_double(val, v)) return make_error("netstat: invalid value of " + key_ + " in " + file);
    name_.assign("node_netstat_").append(key_);
    help_.assign("Statistic ").append(proto).append(field).append(".");
    describe(out, name_, MetricType::Unknown, help_);
    add_sample(out, name_, {}, v);
    return {};
  }
  MatchCache fields_;
  std::string netstat_, snmp_, snmp6_, key_, name_, help_;
};

}  // namespace
std::unique_ptr<SubCollector> make_netstat(const Options& o) { return std::make_unique<Netstat>(o); }
}  // namespace moni::node
