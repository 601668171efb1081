#include "response_compare.hpp"

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

namespace moni::promql::test_support {

using nlohmann::json;

std::string read_file(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

namespace {
double to_double(const json& s) {
  std::string v = s.get<std::string>();
  if (v == "NaN") return NAN;
  if (v == "+Inf") return INFINITY;
  if (v == "-Inf") return -INFINITY;
  return std::strtod(v.c_str(), nullptr);
}

bool close(double a, double b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b);
  if (std::isinf(a) || std::isinf(b)) return a == b;
  double d = std::fabs(a - b);
  return d <= 1e-9 * std::max(std::fabs(a), std::fabs(b)) || d < 1e-12;
}

}  // namespace

std::string compare_responses(const json& p, const json& m, bool ordered) {
  if (p["status"] != m["status"])
    return "status: prometheus " + p.dump().substr(0, 300) + " vs moni " + m.dump().substr(0, 300);
  if (p["status"] != "success") return "";
  const json& pd = p["data"];
  const json& md = m["data"];
  if (pd["resultType"] != md["resultType"]) return "resultType differs";
  std::string type = pd["resultType"];
  if (type == "scalar" || type == "string") {
    if (pd["result"][0] != md["result"][0]) return "timestamp differs";
    if (type == "string") return pd["result"][1] == md["result"][1] ? "" : "string differs";
    return close(to_double(pd["result"][1]), to_double(md["result"][1]))
               ? ""
               : "scalar " + pd["result"].dump() + " vs " + md["result"].dump();
  }
  const json& pr = pd["result"];
  const json& mr = md["result"];
  if (pr.size() != mr.size())
    return "series count " + std::to_string(pr.size()) + " vs " + std::to_string(mr.size()) +
           ": prometheus " + pr.dump().substr(0, 400) + " moni " + mr.dump().substr(0, 400);
  std::map<std::string, const json*> mine;
  for (const auto& s : mr) mine[s["metric"].dump()] = &s;
  for (size_t i = 0; i < pr.size(); ++i) {
    const json& ps = pr[i];
    std::string key = ps["metric"].dump();
    if (ordered && mr[i]["metric"].dump() != key) return "order differs at " + std::to_string(i);
    auto it = mine.find(key);
    if (it == mine.end()) return "missing series " + key + " in moni";
    const json& ms = *it->second;
    if (type == "vector") {
      if (ps["value"][0] != ms["value"][0]) return "timestamp differs for " + key;
      if (!close(to_double(ps["value"][1]), to_double(ms["value"][1])))
        return "value of " + key + ": " + ps["value"].dump() + " vs " + ms["value"].dump();
    } else {
      const json& pv = ps["values"];
      const json& mv = ms["values"];
      if (pv.size() != mv.size())
        return "points of " + key + ": " + std::to_string(pv.size()) + " vs " +
               std::to_string(mv.size());
      for (size_t k = 0; k < pv.size(); ++k) {
        if (pv[k][0] != mv[k][0])
          return "point time of " + key + ": " + pv[k].dump() + " vs " + mv[k].dump();
        if (!close(to_double(pv[k][1]), to_double(mv[k][1])))
          return "point of " + key + ": " + pv[k].dump() + " vs " + mv[k].dump();
      }
    }
  }
  return "";
}

}  // namespace moni::promql::test_support
