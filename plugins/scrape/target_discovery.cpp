#include "target_discovery.hpp"

#include <nlohmann/json.hpp>
#include <toml++/toml.h>

#include <fstream>
#include <glob.h>
#include <set>
#include <sstream>
#include <sys/stat.h>

namespace moni::scrape {
namespace {

Result<std::vector<TargetGroup>> parse_json(const std::string& path, const std::string& body) {
  auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_discarded()) return make_error(path + ": invalid JSON");
  if (!j.is_array())
    return make_error(path + ": expected a JSON array of {\"targets\": [...], \"labels\": {...}}");
  std::vector<TargetGroup> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const auto& g = j[i];
    std::string where = path + ": group " + std::to_string(i);
    if (!g.is_object()) return make_error(where + ": expected an object");
    TargetGroup tg;
    tg.source = path;
    if (!g.contains("targets") || !g["targets"].is_array())
      return make_error(where + ": \"targets\" must be an array of strings");
    for (const auto& t : g["targets"]) {
      if (!t.is_string()) return make_error(where + ": \"targets\" must be an array of strings");
      tg.targets.push_back(t.get<std::string>());
    }
    if (g.contains("labels")) {
      if (!g["labels"].is_object()) return make_error(where + ": \"labels\" must be an object");
      for (const auto& [k, v] : g["labels"].items()) {
        if (!v.is_string()) return make_error(where + ": label \"" + k + "\" must be a string");
        tg.labels[k] = v.get<std::string>();
      }
    }
    out.push_back(std::move(tg));
  }
  return out;
}

Result<std::vector<TargetGroup>> parse_toml(const std::string& path, const std::string& body) {
  toml::table t;
  try {
    t = toml::parse(body, path);
  } catch (const toml::parse_error& e) {
    std::ostringstream os;
    os << path << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
       << e.description();
    return make_error(os.str());
  }
  std::vector<TargetGroup> out;
  for (const auto& [k, v] : t)
    if (k.str() != "group")
      return make_error(path + ": unknown key '" + std::string(k.str()) +
                        "' (expected [[group]] tables with targets and labels)");
  const toml::array* groups = t["group"].as_array();
  if (!groups) return out;
  for (size_t i = 0; i < groups->size(); ++i) {
    std::string where = path + ": group[" + std::to_string(i) + "]";
    const toml::table* g = (*groups)[i].as_table();
    if (!g) return make_error(where + ": expected a table");
    TargetGroup tg;
    tg.source = path;
    for (const auto& [k, v] : *g)
      if (k.str() != "targets" && k.str() != "labels")
        return make_error(where + ": unknown key '" + std::string(k.str()) + "'");
    const toml::array* ts = (*g)["targets"].as_array();
    if (!ts) return make_error(where + ": targets must be an array of strings");
    for (const auto& x : *ts) {
      auto s = x.value<std::string>();
      if (!s || !x.is_string()) return make_error(where + ": targets must be an array of strings");
      tg.targets.push_back(*s);
    }
    if (auto* ls = (*g)["labels"].as_table()) {
      for (const auto& [k, v] : *ls) {
        if (!v.is_string()) return make_error(where + ": label '" + std::string(k.str()) + "' must be a string");
        tg.labels[std::string(k.str())] = *v.value<std::string>();
      }
    } else if ((*g).contains("labels")) {
      return make_error(where + ": labels must be a table");
    }
    out.push_back(std::move(tg));
  }
  return out;
}

}  // namespace

Result<std::vector<TargetGroup>> parse_target_file(const std::string& path,
                                                  const std::string& body) {
  if (path.ends_with(".json")) return parse_json(path, body);
  if (path.ends_with(".toml")) return parse_toml(path, body);
  return make_error(path + ": unsupported file type (use .json or .toml)");
}

bool FileDiscovery::refresh(std::vector<std::string>& errors) {
  std::set<std::string> paths;
  for (const auto& p : patterns_) {
    glob_t g{};
    if (glob(p.c_str(), 0, nullptr, &g) == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) paths.insert(g.gl_pathv[i]);
    globfree(&g);
  }
  bool changed = false;
  for (auto it = files_.begin(); it != files_.end();) {
    if (!paths.count(it->first)) {
      it = files_.erase(it);
      changed = true;
    } else {
      ++it;
    }
  }
  for (const auto& p : paths) {
    struct stat st {};
    if (stat(p.c_str(), &st) != 0) continue;
    int64_t mt = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
    File& f = files_[p];
    if (f.mtime_ns == mt && f.size == st.st_size) continue;
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    auto r = parse_target_file(p, ss.str());
    f.mtime_ns = mt;
    f.size = st.st_size;
    if (!r) {
      errors.push_back(r.error().message);
      continue;
    }
    f.groups = std::move(*r);
    changed = true;
  }
  return changed;
}

std::vector<TargetGroup> FileDiscovery::groups() const {
  std::vector<TargetGroup> out;
  for (const auto& [p, f] : files_) out.insert(out.end(), f.groups.begin(), f.groups.end());
  return out;
}

}  // namespace moni::scrape
