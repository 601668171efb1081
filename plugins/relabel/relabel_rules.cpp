// Prometheus relabeling semantics (model/relabel/relabel.go behaviour),
// re-implemented on RE2.
#include "relabel_rules.hpp"

#include "md5.hpp"

#include <moni/text_format.hpp>
#include <re2/re2.h>

#include <algorithm>
#include <cctype>

namespace moni::relabel {
namespace {

struct ActionName {
  std::string_view name;
  Action action;
};
constexpr ActionName kActions[] = {
    {"replace", Action::Replace},     {"keep", Action::Keep},
    {"drop", Action::Drop},           {"keepequal", Action::KeepEqual},
    {"dropequal", Action::DropEqual}, {"hashmod", Action::HashMod},
    {"labelmap", Action::LabelMap},   {"labeldrop", Action::LabelDrop},
    {"labelkeep", Action::LabelKeep}, {"lowercase", Action::Lowercase},
    {"uppercase", Action::Uppercase},
};

using moni::text::valid_label_name;  // the SDK's rule, shared with the parser

bool name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

std::string_view get(const LabelSet& ls, std::string_view name) {
  auto it = std::lower_bound(ls.begin(), ls.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  return it != ls.end() && it->name == name ? std::string_view(it->value) : std::string_view();
}

// Sets (or, for an empty value, deletes) a label, keeping the set sorted.
void set(LabelSet& ls, std::string_view name, std::string_view value) {
  auto it = std::lower_bound(ls.begin(), ls.end(), name,
                             [](const Label& l, std::string_view n) { return l.name < n; });
  bool found = it != ls.end() && it->name == name;
  if (value.empty()) {
    if (found) ls.erase(it);
    return;
  }
  if (found) it->value.assign(value);
  else ls.insert(it, Label{std::string(name), std::string(value)});
}

// Submatches of a full match of `re` on `text`, or false.
bool full_match(const re2::RE2& re, std::string_view text, std::vector<std::string_view>& groups) {
  int n = re.NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> sp(static_cast<size_t>(n));
  if (!re.Match(re2::StringPiece(text.data(), text.size()), 0, text.size(), re2::RE2::ANCHOR_BOTH,
                sp.data(), n))
    return false;
  groups.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    groups[static_cast<size_t>(i)] =
        sp[static_cast<size_t>(i)].data() ? std::string_view(sp[static_cast<size_t>(i)].data(),
                                                             sp[static_cast<size_t>(i)].size())
                                          : std::string_view();
  return true;
}

bool matches(const re2::RE2& re, std::string_view text) {
  return re2::RE2::FullMatch(re2::StringPiece(text.data(), text.size()), re);
}

}  // namespace

std::string_view action_name(Action a) {
  for (const auto& x : kActions)
    if (x.action == a) return x.name;
  return "?";
}

std::string expand(const re2::RE2& re, std::string_view t,
                   const std::vector<std::string_view>& groups) {
  std::string out;
  size_t i = 0;
  while (i < t.size()) {
    size_t d = t.find('$', i);
    if (d == std::string_view::npos) {
      out.append(t.substr(i));
      break;
    }
    out.append(t.substr(i, d - i));
    i = d + 1;
    if (i < t.size() && t[i] == '$') {
      out += '$';
      ++i;
      continue;
    }
    // extract(): ${name} or $name with name = [A-Za-z0-9_]+.
    bool brace = i < t.size() && t[i] == '{';
    size_t s = brace ? i + 1 : i;
    size_t e = s;
    while (e < t.size() && name_char(t[e])) ++e;
    bool ok = e > s && (!brace || (e < t.size() && t[e] == '}'));
    if (!ok) {
      out += '$';  // malformed: the '$' is literal text
      continue;
    }
    std::string_view name = t.substr(s, e - s);
    i = brace ? e + 1 : e;
    long num = 0;
    for (char c : name) {
      if (c < '0' || c > '9' || num >= 100000000) {
        num = -1;
        break;
      }
      num = num * 10 + (c - '0');
    }
    if (name.size() > 1 && name[0] == '0') num = -1;
    if (num >= 0) {
      if (static_cast<size_t>(num) < groups.size()) out.append(groups[static_cast<size_t>(num)]);
      continue;
    }
    const auto& named = re.NamedCapturingGroups();
    auto it = named.find(std::string(name));
    if (it != named.end() && static_cast<size_t>(it->second) < groups.size())
      out.append(groups[static_cast<size_t>(it->second)]);
  }
  return out;
}

std::optional<RuleError> compile_regex(Rule& r) {
  auto re = std::make_shared<re2::RE2>("^(?:" + r.regex_text + ")$", re2::RE2::Quiet);
  if (!re->ok()) return RuleError{"regex", "invalid regex \"" + r.regex_text + "\": " + re->error()};
  r.regex = std::move(re);
  return std::nullopt;
}

std::optional<RuleError> check_action(const Rule& r) {
  std::string act(action_name(r.action));
  auto bad_target = [&]() -> std::optional<RuleError> {
    return RuleError{"target_label", "\"" + r.target_label + "\" is not a valid label name"};
  };
  switch (r.action) {
    case Action::Replace:
      if (r.target_label.empty()) return RuleError{"action", "\"replace\" requires target_label"};
      if (r.target_label.find('$') == std::string::npos && !valid_label_name(r.target_label))
        return bad_target();
      break;
    case Action::HashMod:
      if (r.modulus == 0) return RuleError{"modulus", "action \"hashmod\" requires modulus > 0"};
      [[fallthrough]];
    case Action::Lowercase:
    case Action::Uppercase:
    case Action::KeepEqual:
    case Action::DropEqual:
      if (r.target_label.empty()) return RuleError{"action", "\"" + act + "\" requires target_label"};
      if (!valid_label_name(r.target_label)) return bad_target();
      break;
    case Action::LabelDrop:
    case Action::LabelKeep:
      if (!r.source_labels.empty() || !r.target_label.empty() || r.modulus != 0 ||
          r.separator != ";" || r.replacement != "$1")
        return RuleError{"action", "\"" + act + "\" takes only regex (found other options)"};
      break;
    case Action::Keep:
    case Action::Drop:
    case Action::LabelMap:
      break;
  }
  if ((r.action == Action::Keep || r.action == Action::Drop || r.action == Action::HashMod ||
       r.action == Action::Lowercase || r.action == Action::Uppercase ||
       r.action == Action::KeepEqual || r.action == Action::DropEqual) &&
      r.source_labels.empty())
    return RuleError{"action", "\"" + act + "\" requires source_labels"};
  return std::nullopt;
}

std::vector<Rule> parse_rules(ConfigReader& root, std::string_view key) {
  std::vector<Rule> out;
  auto tables = root.tables(key);
  for (size_t i = 0; i < tables.size(); ++i) {
    ConfigReader& t = tables[i];
    Rule r;
    std::string action = t.string("action", "replace");
    bool known = false;
    for (const auto& a : kActions)
      if (a.name == action) {
        r.action = a.action;
        known = true;
      }
    if (!known) {
      std::string list;
      for (const auto& a : kActions) list += (list.empty() ? "" : ", ") + std::string(a.name);
      t.error(t.raw("action"), "action: \"" + action + "\" is unknown (one of " + list + ")");
    }
    r.source_labels = t.strings("source_labels", {});
    for (const auto& s : r.source_labels)
      if (!valid_label_name(s))
        t.error(t.raw("source_labels"), "source_labels: \"" + s + "\" is not a valid label name");
    r.separator = t.string("separator", ";");
    r.target_label = t.string("target_label", "");
    r.regex_text = t.string("regex", "(.*)");
    r.modulus = static_cast<uint64_t>(t.integer("modulus", 0, 0));
    r.replacement = t.string("replacement", "$1");
    // Every fault is reported at the key that holds it (the table when the
    // key is absent), the regex even when the action is unknown.
    auto report = [&](const RuleError& e) {
      t.error(t.raw(e.key), std::string(e.key) + ": " + e.message);
    };
    if (auto e = compile_regex(r)) report(*e);
    if (known)
      if (auto e = check_action(r)) report(*e);
    out.push_back(std::move(r));
  }
  return out;
}

bool apply(const std::vector<Rule>& rules, LabelSet& ls) {
  std::string val;
  std::vector<std::string_view> groups;
  for (const Rule& r : rules) {
    val.clear();
    for (size_t i = 0; i < r.source_labels.size(); ++i) {
      if (i) val += r.separator;
      val += get(ls, r.source_labels[i]);
    }
    const re2::RE2& re = *r.regex;
    switch (r.action) {
      case Action::Drop:
        if (matches(re, val)) return false;
        break;
      case Action::Keep:
        if (!matches(re, val)) return false;
        break;
      case Action::DropEqual:
        if (get(ls, r.target_label) == val) return false;
        break;
      case Action::KeepEqual:
        if (get(ls, r.target_label) != val) return false;
        break;
      case Action::Replace: {
        if (!full_match(re, val, groups)) break;
        std::string target = expand(re, r.target_label, groups);
        if (!valid_label_name(target)) break;
        std::string res = expand(re, r.replacement, groups);
        set(ls, target, res);  // empty deletes
        break;
      }
      case Action::Lowercase:
      case Action::Uppercase: {
        std::string v = val;
        for (char& c : v)
          c = static_cast<char>(r.action == Action::Lowercase
                                    ? std::tolower(static_cast<unsigned char>(c))
                                    : std::toupper(static_cast<unsigned char>(c)));
        set(ls, r.target_label, v);
        break;
      }
      case Action::HashMod: {
        auto h = md5(val);
        uint64_t s = 0;
        for (int i = 8; i < 16; ++i) s = (s << 8) | h[static_cast<size_t>(i)];
        set(ls, r.target_label, std::to_string(s % r.modulus));
        break;
      }
      case Action::LabelMap: {
        LabelSet orig = ls;
        for (const auto& l : orig) {
          if (!full_match(re, l.name, groups)) continue;
          set(ls, expand(re, r.replacement, groups), l.value);
        }
        break;
      }
      case Action::LabelDrop:
      case Action::LabelKeep: {
        bool keep_matching = r.action == Action::LabelKeep;
        ls.erase(std::remove_if(ls.begin(), ls.end(),
                                [&](const Label& l) { return matches(re, l.name) != keep_matching; }),
                 ls.end());
        break;
      }
    }
  }
  return !ls.empty();
}

}  // namespace moni::relabel
