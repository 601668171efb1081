// A small parser of the Prometheus text exposition format (0.0.4), enough
// to read node_exporter's /metrics in tests.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace moni::node_test {

struct TextSample {
  std::string name;
  std::map<std::string, std::string> labels;  // empty values dropped
  double value = 0;
};

struct TextFamily {
  std::string type = "untyped";
  std::string help;
  std::vector<TextSample> samples;
};

/// Families by name. Returns false and sets `error` on a malformed line.
bool parse_text_format(const std::string& text, std::map<std::string, TextFamily>& out,
                       std::string& error);

}  // namespace moni::node_test
