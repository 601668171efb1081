#include "prom_text.hpp"

#include <cstdlib>
#include <sstream>

namespace moni::node_test {

namespace {

std::string unescape_help(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) {
      char c = s[++i];
      o += c == 'n' ? '\n' : c;
    } else {
      o += s[i];
    }
  }
  return o;
}

bool parse_sample(const std::string& line, TextSample& s, std::string& error) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  s.name = line.substr(0, i);
  if (i < line.size() && line[i] == '{') {
    ++i;
    for (;;) {
      while (i < line.size() && (line[i] == ',' || line[i] == ' ')) ++i;
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t eq = line.find('=', i);
      if (eq == std::string::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        error = "bad label in: " + line;
        return false;
      }
      std::string name = line.substr(i, eq - i), value;
      i = eq + 2;
      while (i < line.size() && line[i] != '"') {
        if (line[i] == '\\' && i + 1 < line.size()) {
          char c = line[++i];
          value += c == 'n' ? '\n' : c;
        } else {
          value += line[i];
        }
        ++i;
      }
      if (i >= line.size()) {
        error = "unterminated label value in: " + line;
        return false;
      }
      ++i;  // closing quote
      if (!value.empty()) s.labels[name] = value;
    }
  }
  std::istringstream rest(line.substr(i));
  std::string v;
  rest >> v;
  if (v.empty()) {
    error = "no value in: " + line;
    return false;
  }
  char* end = nullptr;
  s.value = std::strtod(v.c_str(), &end);
  if (*end != '\0') {
    error = "bad value in: " + line;
    return false;
  }
  return true;
}

}  // namespace

bool parse_text_format(const std::string& text, std::map<std::string, TextFamily>& out,
                       std::string& error) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (line[0] == '#') {
      std::istringstream ls(line);
      std::string hash, kw, name;
      ls >> hash >> kw >> name;
      std::string rest;
      std::getline(ls, rest);
      if (!rest.empty() && rest[0] == ' ') rest.erase(0, 1);
      if (kw == "TYPE") out[name].type = rest;
      else if (kw == "HELP") out[name].help = unescape_help(rest);
      continue;
    }
    TextSample s;
    if (!parse_sample(line, s, error)) return false;
    // Histogram/summary children belong to their family; node_exporter's
    // families used here have none, so the sample name is the family.
    out[s.name].samples.push_back(std::move(s));
  }
  return true;
}

}  // namespace moni::node_test
