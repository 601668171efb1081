#include "relabel.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <cctype>
#include <cstring>

namespace moni::remote_write {

void LabelBuf::push(std::string_view name, std::string_view value) {
  if (n_ == e_.size()) e_.emplace_back();
  e_[n_].name.assign(name);
  e_[n_].value.assign(value);
  ++n_;
}

std::string_view LabelBuf::get(std::string_view name) const {
  for (size_t i = 0; i < n_; ++i)
    if (e_[i].name == name) return e_[i].value;
  return {};
}

void LabelBuf::set(std::string_view name, std::string_view value) {
  for (size_t i = 0; i < n_; ++i)
    if (e_[i].name == name) {
      if (value.empty()) {
        std::swap(e_[i], e_[n_ - 1]);
        --n_;
      } else {
        e_[i].value.assign(value);
      }
      return;
    }
  if (!value.empty()) push(name, value);
}

void LabelBuf::erase_if_name(const re2::RE2& re, bool matching) {
  size_t out = 0;
  for (size_t i = 0; i < n_; ++i) {
    bool m = re2::RE2::FullMatch(e_[i].name, re);
    if (m != matching) {
      if (out != i) std::swap(e_[out], e_[i]);
      ++out;
    }
  }
  n_ = out;
}

void LabelBuf::sort() {
  std::sort(e_.begin(), e_.begin() + static_cast<std::ptrdiff_t>(n_),
            [](const Entry& a, const Entry& b) { return a.name < b.name; });
}

namespace {

bool valid_label_name(std::string_view s) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = std::isalpha(static_cast<unsigned char>(c)) || c == '_' ||
              (i > 0 && std::isdigit(static_cast<unsigned char>(c)));
    if (!ok) return false;
  }
  return true;
}

// Expands $1, ${1} and ${name} in `tmpl` with the groups of the last match,
// as Go's regexp.Expand does for Prometheus (unknown groups expand empty).
void expand(const re2::RE2& re, std::string_view tmpl, const re2::StringPiece* groups, int ngroups,
            std::string& out) {
  out.clear();
  for (size_t i = 0; i < tmpl.size(); ++i) {
    char c = tmpl[i];
    if (c != '$' || i + 1 >= tmpl.size()) {
      out.push_back(c);
      continue;
    }
    if (tmpl[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    std::string_view name;
    size_t end;
    if (tmpl[i + 1] == '{') {
      size_t close = tmpl.find('}', i + 2);
      if (close == std::string_view::npos) {
        out.push_back(c);
        continue;
      }
      name = tmpl.substr(i + 2, close - i - 2);
      end = close + 1;
    } else {
      size_t j = i + 1;
      while (j < tmpl.size() &&
             (std::isalnum(static_cast<unsigned char>(tmpl[j])) || tmpl[j] == '_'))
        ++j;
      if (j == i + 1) {
        out.push_back(c);
        continue;
      }
      name = tmpl.substr(i + 1, j - i - 1);
      end = j;
    }
    int idx = -1;
    if (std::all_of(name.begin(), name.end(),
                    [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); })) {
      idx = name.size() < 4 ? std::stoi(std::string(name)) : -1;
    } else {
      const auto& named = re.NamedCapturingGroups();
      auto it = named.find(std::string(name));
      if (it != named.end()) idx = it->second;
    }
    if (idx >= 0 && idx < ngroups && groups[idx].data())
      out.append(groups[idx].data(), groups[idx].size());
    i = end - 1;
  }
}

uint64_t md5ish_hash(std::string_view s) {
  // FNV-1a: hashmod only needs a stable spread, not Prometheus's exact md5
  // buckets (documented in the README).
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace

RelabelRule parse_relabel_rule(ConfigReader& r) {
  RelabelRule rule;
  std::string action =
      r.choice("action", "replace",
               {"replace", "keep", "drop", "labeldrop", "labelkeep", "hashmod", "labelmap"});
  if (action == "keep")
    rule.action = RelabelAction::Keep;
  else if (action == "drop")
    rule.action = RelabelAction::Drop;
  else if (action == "labeldrop")
    rule.action = RelabelAction::LabelDrop;
  else if (action == "labelkeep")
    rule.action = RelabelAction::LabelKeep;
  else if (action == "hashmod")
    rule.action = RelabelAction::HashMod;
  else if (action == "labelmap")
    rule.action = RelabelAction::LabelMap;
  rule.source_labels = r.strings("source_labels", {});
  rule.separator = r.string("separator", ";");
  std::string regex = r.string("regex", "(.*)");
  rule.target_label = r.string("target_label", "");
  rule.replacement = r.string("replacement", "$1");
  rule.modulus = static_cast<uint64_t>(r.integer("modulus", 0, 0));
  re2::RE2::Options opts;
  opts.set_log_errors(false);
  rule.regex = std::make_shared<re2::RE2>("^(?:" + regex + ")$", opts);
  if (!rule.regex->ok())
    r.error(r.raw("regex"), "regex \"" + regex + "\" is invalid: " + rule.regex->error());
  switch (rule.action) {
    case RelabelAction::Replace:
      if (!valid_label_name(rule.target_label) && rule.target_label.find('$') == std::string::npos)
        r.error(r.raw("target_label"), "target_label must be a label name for action \"replace\"");
      break;
    case RelabelAction::HashMod:
      if (rule.modulus == 0)
        r.error(r.raw("modulus"), "modulus must be > 0 for action \"hashmod\"");
      if (!valid_label_name(rule.target_label))
        r.error(r.raw("target_label"), "target_label must be a label name for action \"hashmod\"");
      break;
    case RelabelAction::Keep:
    case RelabelAction::Drop:
      if (rule.source_labels.empty())
        r.error(r.raw("source_labels"),
                "source_labels must not be empty for action \"" + action + "\"");
      break;
    default:
      break;
  }
  return rule;
}

bool relabel(const std::vector<RelabelRule>& rules, LabelBuf& labels, std::string& scratch) {
  std::string value;
  std::string expanded;
  for (const auto& rule : rules) {
    const re2::RE2& re = *rule.regex;
    value.clear();
    for (size_t i = 0; i < rule.source_labels.size(); ++i) {
      if (i) value += rule.separator;
      value += labels.get(rule.source_labels[i]);
    }
    switch (rule.action) {
      case RelabelAction::Keep:
        if (!re2::RE2::FullMatch(value, re)) return false;
        break;
      case RelabelAction::Drop:
        if (re2::RE2::FullMatch(value, re)) return false;
        break;
      case RelabelAction::LabelDrop:
        labels.erase_if_name(re, true);
        break;
      case RelabelAction::LabelKeep:
        labels.erase_if_name(re, false);
        break;
      case RelabelAction::HashMod: {
        uint64_t h = md5ish_hash(value) % rule.modulus;
        labels.set(rule.target_label, std::to_string(h));
        break;
      }
      case RelabelAction::Replace: {
        int n = re.NumberOfCapturingGroups() + 1;
        re2::StringPiece groups[16];
        if (n > 16) n = 16;
        if (!re.Match(value, 0, value.size(), re2::RE2::UNANCHORED, groups, n)) break;
        expand(re, rule.target_label, groups, n, scratch);
        std::string target = scratch;
        expand(re, rule.replacement, groups, n, expanded);
        if (!valid_label_name(target)) break;
        labels.set(target, expanded);
        break;
      }
      case RelabelAction::LabelMap: {
        size_t n0 = labels.size();
        for (size_t i = 0; i < n0; ++i) {
          re2::StringPiece groups[16];
          int n = std::min(re.NumberOfCapturingGroups() + 1, 16);
          std::string name = labels[i].name;
          if (!re.Match(name, 0, name.size(), re2::RE2::UNANCHORED, groups, n)) continue;
          expand(re, rule.replacement, groups, n, expanded);
          std::string v = labels[i].value;
          labels.set(expanded, v);
        }
        break;
      }
    }
  }
  labels.sort();
  return labels.size() > 0 && !labels.get("__name__").empty();
}

}  // namespace moni::remote_write
