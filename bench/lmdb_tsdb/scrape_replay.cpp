#include "scrape_replay.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>

namespace {

constexpr uint64_t kAbsent = 0x7ff8000000000001ULL;
constexpr double kPow10[10] = {1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};

bool scaled(double v, int k, int64_t& n) {
  if (!std::isfinite(v)) return false;
  double m = v * kPow10[k];
  if (!(std::fabs(m) < 9007199254740992.0)) return false;
  n = std::llround(m);
  return std::bit_cast<uint64_t>(static_cast<double>(n) / kPow10[k]) == std::bit_cast<uint64_t>(v);
}

// name{a="x",b="y"} value  ->  name, labels, value text.
bool parse_line(const std::string& l, std::string& name,
                std::vector<std::pair<std::string, std::string>>& labels, std::string& val) {
  labels.clear();
  size_t i = l.find_first_of("{ ");
  if (i == std::string::npos) return false;
  name = l.substr(0, i);
  if (l[i] == '{') {
    ++i;
    while (i < l.size() && l[i] != '}') {
      size_t eq = l.find('=', i);
      if (eq == std::string::npos || eq + 1 >= l.size() || l[eq + 1] != '"') return false;
      std::string k = l.substr(i, eq - i), v;
      size_t j = eq + 2;
      for (; j < l.size() && l[j] != '"'; ++j) {
        if (l[j] == '\\' && j + 1 < l.size()) {
          ++j;
          v.push_back(l[j] == 'n' ? '\n' : l[j]);
        } else {
          v.push_back(l[j]);
        }
      }
      if (j >= l.size()) return false;
      labels.emplace_back(std::move(k), std::move(v));
      i = j + 1;
      if (i < l.size() && l[i] == ',') ++i;
    }
    ++i;
  }
  while (i < l.size() && l[i] == ' ') ++i;
  size_t e = l.find(' ', i);
  val = l.substr(i, e == std::string::npos ? std::string::npos : e - i);
  return !val.empty();
}

}  // namespace

bool ScrapeReplay::load(const std::string& path, std::string& err) {
  std::ifstream f(path);
  if (!f) {
    err = "cannot read " + path;
    return false;
  }
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, size_t> index;       // series text -> index
  std::vector<int64_t> ts;
  std::string line, name, val;
  std::vector<std::pair<std::string, std::string>> labels;
  while (std::getline(f, line)) {
    if (line.rfind("# SCRAPE ", 0) == 0) {
      ts.push_back(std::atoll(line.c_str() + 9));
      continue;
    }
    if (line.rfind("# TYPE ", 0) == 0) {
      size_t sp = line.find(' ', 7);
      if (sp != std::string::npos) types[line.substr(7, sp - 7)] = line.substr(sp + 1);
      continue;
    }
    if (line.empty() || line[0] == '#' || ts.empty()) continue;
    if (!parse_line(line, name, labels, val)) {
      err = "malformed line: " + line;
      return false;
    }
    std::string key = line.substr(0, line.rfind(' '));
    auto [it, fresh] = index.emplace(key, series_.size());
    if (fresh) {
      ReplaySeries s;
      s.name = name;
      std::sort(labels.begin(), labels.end());
      s.labels = labels;
      std::string fam = name;
      bool counter = false;
      for (const char* suf : {"_sum", "_count", "_bucket", "_total"}) {
        std::string x(suf);
        if (fam.size() > x.size() && fam.compare(fam.size() - x.size(), x.size(), x) == 0) {
          auto t = types.find(fam.substr(0, fam.size() - x.size()));
          if (t != types.end() && t->second != "gauge" && t->second != "untyped") counter = true;
        }
      }
      auto t = types.find(fam);
      if (t != types.end() && t->second == "counter") counter = true;
      s.counter = counter;
      series_.push_back(std::move(s));
    }
    ReplaySeries& s = series_[it->second];
    s.values.resize(ts.size() - 1, std::bit_cast<double>(kAbsent));
    s.values.push_back(std::strtod(val.c_str(), nullptr));
  }
  if (ts.size() < 3) {
    err = path + ": fewer than 3 scrapes";
    return false;
  }
  for (size_t i = 0; i < ts.size(); ++i) jitter_.push_back(ts[i] - ts[0] - int64_t(i) * 15000);
  int64_t mn = *std::min_element(jitter_.begin(), jitter_.end());
  for (auto& j : jitter_) j -= mn;
  for (auto& s : series_) {
    s.values.resize(ts.size(), std::bit_cast<double>(kAbsent));
    for (int k = 0; k <= 9 && s.scale < 0; ++k) {
      bool ok = true;
      int64_t n;
      for (double v : s.values)
        if (std::bit_cast<uint64_t>(v) != kAbsent && !scaled(v, k, n)) ok = false;
      if (ok) s.scale = k;
    }
    if (s.counter && s.scale >= 0) {
      int64_t prev = 0;
      bool have = false;
      for (double v : s.values) {
        int64_t n = 0;
        if (std::bit_cast<uint64_t>(v) == kAbsent) {
          s.steps.push_back(0);
          continue;
        }
        scaled(v, s.scale, n);
        if (have) s.steps.push_back(std::max<int64_t>(0, n - prev));
        prev = n;
        have = true;
      }
      if (s.steps.empty()) s.steps.push_back(0);
    } else {
      s.counter = false;
    }
  }
  counter_now_.assign(series_.size(), 0);
  counter_j_.assign(series_.size(), -1);
  return true;
}

bool ScrapeReplay::value(size_t i, int64_t j, double& out) {
  ReplaySeries& s = series_[i];
  size_t n = s.values.size();
  if (static_cast<size_t>(j) < n || !s.counter) {
    // Gauges: forwards, then backwards, then forwards again.
    size_t period = 2 * (n - 1);
    size_t p = static_cast<size_t>(j) % period;
    size_t idx = p < n ? p : period - p;
    out = s.values[idx];
    return std::bit_cast<uint64_t>(out) != kAbsent;
  }
  // Counters past the recording: the last value plus recorded increments.
  if (counter_j_[i] < 0 || counter_j_[i] > j) {
    int64_t v = 0;
    scaled(s.values[n - 1], s.scale, v);
    counter_now_[i] = v;
    counter_j_[i] = static_cast<int64_t>(n) - 1;
  }
  while (counter_j_[i] < j) {
    counter_now_[i] += s.steps[static_cast<size_t>(counter_j_[i]) % s.steps.size()];
    ++counter_j_[i];
  }
  out = static_cast<double>(counter_now_[i]) / kPow10[s.scale];
  return true;
}
