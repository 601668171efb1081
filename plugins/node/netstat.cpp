// netstat: node_netstat_<Proto>_<Field> (untyped) for the fields matching
// netstat.fields, from <procfs>/net/{netstat,snmp,snmp6}.
#include "sub_collector.hpp"
#include "key_memo.hpp"
#include "text_parse.hpp"

#include <cerrno>

namespace moni::node {
namespace {

// One selected counter: its column in the section (paired files) and the
// metric built from "<Proto>_<Field>".
struct Selected {
  size_t column = 0;
  std::string name, help;  // "node_netstat_Tcp_InSegs", "Statistic TcpInSegs."
};

void select(std::string_view proto, std::string_view field, size_t column, Pattern const& p,
            std::string& key, std::vector<Selected>& out) {
  key.assign(proto).append("_").append(field);
  if (!p.matches(key)) return;
  Selected s;
  s.column = column;
  s.name.assign("node_netstat_").append(key);
  s.help.assign("Statistic ").append(proto).append(field).append(".");
  out.push_back(std::move(s));
}

class Netstat : public SubCollector {
 public:
  explicit Netstat(const Options& o) : fields_(o.netstat_fields) {
    join(netstat_, o.procfs, "net/netstat");
    join(snmp_, o.procfs, "net/snmp");
    join(snmp6_, o.procfs, "net/snmp6");
    reader_.set_whole_reads(true);  // all three are single_open seq_files
  }
  Result<void> collect(Batch& out) override {
    std::string_view text;
    if (!reader_.read(netstat_, text, true)) return io_error("netstat", netstat_);
    if (auto r = paired(text, out, netstat_, netstat_sections_); !r) return r;
    if (!reader_.read(snmp_, text, true)) return io_error("netstat", snmp_);
    if (auto r = paired(text, out, snmp_, snmp_sections_); !r) return r;
    if (!reader_.read(snmp6_, text, true)) {
      if (errno == ENOENT) return {};  // IPv6 disabled
      return io_error("netstat", snmp6_);
    }
    snmp6_keys_.rewind();
    while (!text.empty()) {
      std::string_view line = next_line(text);
      std::string_view key = next_field(line), val = next_field(line);
      if (key.empty()) continue;
      const Snmp6Key& k = snmp6_keys_.next(key, [&](Snmp6Key& e, std::string_view name) {
        // "Icmp6InMsgs" -> protocol "Icmp6", field "InMsgs"
        e.selected.clear();
        size_t six = name.find('6');
        if (six != std::string_view::npos)
          select(name.substr(0, six + 1), name.substr(six + 1), 0, fields_, key_, e.selected);
      });
      if (k.selected.empty()) continue;
      if (auto r = add(out, k.selected.front(), val, snmp6_); !r) return r;
    }
    return {};
  }

 private:
  // One "Proto: Name1 Name2 ..." / "Proto: v1 v2 ..." pair of lines, and
  // the counters selected from it. The names line is kept: while the
  // kernel prints the same one (always, except IcmpMsg's, which grows as
  // ICMP types are seen), the selection stands and only the values line is
  // walked (one compare per section instead of one filter lookup per name).
  struct Section {
    std::string names;
    std::vector<Selected> selected;
  };

  Result<void> paired(std::string_view text, Batch& out, const std::string& file,
                      std::vector<Section>& sections) {
    size_t k = 0;
    while (!text.empty()) {
      std::string_view names = next_line(text);
      if (names.empty()) continue;
      std::string_view values = next_line(text);
      std::string_view n = names, v = values;
      std::string_view p1 = next_field(n), p2 = next_field(v);
      if (p1 != p2 || p1.size() < 2 || p1.back() != ':')
        return make_error("netstat: mismatched header and value lines in " + file);
      if (k == sections.size()) sections.emplace_back();
      Section& s = sections[k++];
      if (s.names != names) {
        s.names.assign(names);
        s.selected.clear();
        std::string_view proto = p1.substr(0, p1.size() - 1);
        std::string_view rest = n;
        for (size_t col = 0;; ++col) {
          std::string_view field = next_field(rest);
          if (field.empty()) break;
          select(proto, field, col, fields_, key_, s.selected);
        }
      }
      // Columns come in order; a values line shorter than its names line
      // ends the section early (as pairing name and value one by one did).
      size_t col = 0;
      for (const Selected& sel : s.selected) {
        std::string_view val;
        while (col <= sel.column) {
          val = next_field(v);
          if (val.empty()) break;
          ++col;
        }
        if (val.empty()) break;
        if (auto r = add(out, sel, val, file); !r) return r;
      }
    }
    return {};
  }

  Result<void> add(Batch& out, const Selected& sel, std::string_view val,
                   const std::string& file) {
    double v;
    if (!parse_double(val, v))
      return make_error("netstat: invalid value of " + sel.name.substr(13) + " in " + file);
    describe(out, sel.name, MetricType::Unknown, sel.help);
    add_sample(out, sel.name, {}, v);
    return {};
  }

  // What one snmp6 key selects: nothing, or one counter (column unused).
  struct Snmp6Key {
    std::vector<Selected> selected;
  };

  const Pattern& fields_;
  std::string netstat_, snmp_, snmp6_, key_;
  std::vector<Section> netstat_sections_, snmp_sections_;
  KeyMemo<Snmp6Key> snmp6_keys_;
};

}  // namespace
std::unique_ptr<SubCollector> make_netstat(const Options& o) { return std::make_unique<Netstat>(o); }
}  // namespace moni::node
