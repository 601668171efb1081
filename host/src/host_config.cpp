#include "host_config.hpp"

#include <moni/plugin_abi.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <moni/duration.hpp>
#include <set>
#include <sstream>

#include "basic_auth.hpp"
#include "plugin_loader.hpp"
#include "tls_server_context.hpp"

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

namespace moni::host {
namespace {

std::string pos(const toml::source_region& src) {
  std::string f = src.path ? *src.path : std::string();
  return f + ":" + std::to_string(src.begin.line) + ":" + std::to_string(src.begin.column);
}
std::string pos(const toml::node& n) { return pos(n.source()); }

std::string_view type_word(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "table";
    case toml::node_type::array:
      return "array";
    case toml::node_type::string:
      return "string";
    case toml::node_type::integer:
      return "integer";
    case toml::node_type::floating_point:
      return "float";
    case toml::node_type::boolean:
      return "boolean";
    default:
      return "date-time";
  }
}

struct Section {
  std::string_view table;  // "collectors"
  uint32_t kind;
  std::string_view noun;  // "collector"
};
constexpr Section kSections[] = {{"collectors", MONI_KIND_COLLECTOR, "collector"},
                                 {"processors", MONI_KIND_PROCESSOR, "processor"},
                                 {"storage", MONI_KIND_STORAGE, "storage"},
                                 {"outputs", MONI_KIND_OUTPUT, "output"}};

std::string with_article(std::string_view noun) {
  bool vowel = !noun.empty() && std::string_view("aeiou").find(noun[0]) != std::string_view::npos;
  return (vowel ? "an " : "a ") + std::string(noun);
}

std::string_view section_of(uint32_t kind) {
  for (const auto& s : kSections)
    if (s.kind == kind) return s.table;
  return "?";
}

class Parser {
 public:
  Parser(HostConfig& cfg) : cfg_(cfg) {}

  void run(const toml::table& root) {
    for (auto&& [k, v] : root) {
      std::string key(k.str());
      if (key == "host")
        host(v);
      else if (key == "pipelines")
        pipelines(v);
      else if (section(key))
        instances(*section(key), v);
      else
        err(v, "unknown table '" + key +
                   "' (expected host, collectors, processors, storage, outputs or pipelines)");
    }
    add_implicit_self();
    check_pipelines();
  }
  std::vector<std::string> errors;

 private:
  const Section* section(std::string_view name) {
    for (const auto& s : kSections)
      if (s.table == name) return &s;
    return nullptr;
  }
  void err(const toml::node& n, const std::string& m) { errors.push_back(pos(n) + ": " + m); }

  const toml::table* as_table(const toml::node& n, const std::string& what) {
    if (auto* t = n.as_table()) return t;
    err(n, what + " must be a table, got " + std::string(type_word(n)));
    return nullptr;
  }
  std::optional<std::string> str(const toml::node& n, const std::string& key) {
    if (auto* s = n.as_string()) return s->get();
    err(n, key + " must be a string, got " + std::string(type_word(n)));
    return std::nullopt;
  }
  std::optional<std::vector<std::string>> strings(const toml::node& n, const std::string& key) {
    auto* a = n.as_array();
    if (!a) {
      err(n, key + " must be an array of strings, got " + std::string(type_word(n)));
      return std::nullopt;
    }
    std::vector<std::string> out;
    for (size_t i = 0; i < a->size(); ++i) {
      const toml::node& e = *a->get(i);
      if (auto* s = e.as_string())
        out.push_back(s->get());
      else
        err(e,
            key + "[" + std::to_string(i) + "] must be a string, got " + std::string(type_word(e)));
    }
    return out;
  }
  std::optional<int64_t> duration(const toml::node& n, const std::string& key) {
    auto s = str(n, key);
    if (!s) return std::nullopt;
    auto d = parse_duration_ms(*s);
    if (!d) {
      err(n, key + ": " + d.error().message);
      return std::nullopt;
    }
    return *d;
  }

  void host(const toml::node& n) {
    auto* t = as_table(n, "host");
    if (!t) return;
    for (auto&& [k, v] : *t) {
      std::string key(k.str());
      if (key == "listen") {
        if (auto s = str(v, "host.listen")) {
          std::string h;
          uint16_t p;
          if (!split_listen(*s, h, p))
            err(v, "host.listen must be \"ADDRESS:PORT\" or \"[IPv6]:PORT\" (got \"" + *s + "\")");
          else
            cfg_.listen = *s;
        }
      } else if (key == "data_dir") {
        if (auto s = str(v, "host.data_dir")) cfg_.data_dir = *s;
      } else if (key == "log_level") {
        if (auto s = str(v, "host.log_level")) {
          if (*s != "debug" && *s != "info" && *s != "warn" && *s != "error")
            err(v,
                "host.log_level must be one of \"debug\", \"info\", \"warn\", \"error\" (got \"" +
                    *s + "\")");
          else
            cfg_.log_level = *s;
        }
      } else if (key == "plugin_dirs") {
        if (auto l = strings(v, "host.plugin_dirs")) {
          std::filesystem::path base = std::filesystem::path(cfg_.file).parent_path();
          for (auto& d : *l)
            cfg_.plugin_dirs.push_back(std::filesystem::path(d).is_absolute()
                                           ? d
                                           : (base / d).lexically_normal().string());
        }
      } else if (key == "web") {
        web(v);
      } else {
        err(v, "unknown option 'host." + key + "'");
      }
    }
  }

  void web(const toml::node& n) {
    auto* t = as_table(n, "host.web");
    if (!t) return;
    for (auto&& [k, v] : *t) {
      std::string key(k.str());
      if (key == "tls") {
        tls(v);
        continue;
      }
      if (key != "basic_auth_users") {
        err(v, "unknown option 'host.web." + key + "' (host.web has basic_auth_users and tls)");
        continue;
      }
      auto* users = as_table(v, "host.web.basic_auth_users");
      if (!users) continue;
      for (auto&& [uk, uv] : *users) {
        std::string user(uk.str());
        auto hash = str(uv, "host.web.basic_auth_users." + user);
        if (!hash) continue;
        if (auto why = BasicAuth::validate_hash(*hash); !why.empty())
          err(uv, "host.web.basic_auth_users." + user + " " + why);
        else if (auto missing = BasicAuth::load_crypt(); !missing.empty())
          err(uv, "host.web.basic_auth_users." + user + ": " + missing);
        else
          cfg_.basic_auth_users[user] = *hash;
      }
    }
  }

  // [host.web.tls]: Prometheus web config's tls_server_config. The files
  // are loaded here so that check-config and a reload reject bad ones.
  void tls(const toml::node& n) {
    auto* t = as_table(n, "host.web.tls");
    if (!t) return;
    TlsServerOptions o;
    std::map<std::string, const toml::node*> at;
    size_t before = errors.size();
    std::filesystem::path base = std::filesystem::path(cfg_.file).parent_path();
    auto path_of = [&](const std::string& p) {
      return std::filesystem::path(p).is_absolute() ? p : (base / p).lexically_normal().string();
    };
    for (auto&& [k, v] : *t) {
      std::string key(k.str()), full = "host.web.tls." + key;
      at[key] = &v;
      if (key == "cert_file" || key == "key_file" || key == "client_ca_file") {
        auto s = str(v, full);
        if (s && s->empty()) err(v, full + " must not be empty");
        if (!s || s->empty()) continue;
        (key == "cert_file" ? o.cert_file : key == "key_file" ? o.key_file : o.client_ca_file) =
            path_of(*s);
      } else if (key == "client_auth") {
        auto s = str(v, full);
        if (!s) continue;
        if (*s == "none")
          o.client_auth = ClientAuth::None;
        else if (*s == "request")
          o.client_auth = ClientAuth::Request;
        else if (*s == "require")
          o.client_auth = ClientAuth::Require;
        else
          err(v, full + " must be \"none\", \"request\" (verify a certificate when the client "
                        "sends one) or \"require\" (got \"" + *s + "\")");
      } else if (key == "min_version") {
        auto s = str(v, full);
        if (!s) continue;
        if (*s == "TLS12" || *s == "TLS13")
          o.tls13_only = *s == "TLS13";
        else
          err(v, full + " must be \"TLS12\" or \"TLS13\" (got \"" + *s + "\")");
      } else if (key == "handshake_timeout") {
        auto d = duration(v, full);
        if (d && *d <= 0) err(v, full + " must be > 0");
        if (d && *d > 0) o.handshake_timeout_ms = *d;
      } else {
        err(v, "unknown option '" + full +
                   "' (host.web.tls has cert_file, key_file, client_ca_file, client_auth, "
                   "min_version and handshake_timeout)");
      }
    }
    if (o.cert_file.empty() && !at.count("cert_file")) err(*t, "host.web.tls.cert_file is required");
    if (o.key_file.empty() && !at.count("key_file")) err(*t, "host.web.tls.key_file is required");
    if (o.client_auth != ClientAuth::None && !at.count("client_ca_file"))
      err(*at["client_auth"], "host.web.tls.client_auth needs client_ca_file (the CA that signs "
                              "client certificates)");
    if (o.client_auth == ClientAuth::None && at.count("client_ca_file"))
      err(*at["client_ca_file"],
          "host.web.tls.client_ca_file is set but client_auth is \"none\"; set client_auth = "
          "\"require\" (or \"request\")");
    if (errors.size() != before) return;
    TlsServerContext::Error e;
    cfg_.tls = TlsServerContext::load(o, e);
    if (!cfg_.tls) err(*at[e.key], "host.web.tls." + e.key + ": " + e.message);
  }

  void instances(const Section& s, const toml::node& n) {
    auto* t = as_table(n, std::string(s.table));
    if (!t) return;
    for (auto&& [k, v] : *t) {
      std::string name(k.str());
      std::string path = std::string(s.table) + "." + name;
      auto* it = as_table(v, "[" + path + "]");
      if (!it) continue;
      InstanceConfig ic;
      ic.name = name;
      ic.kind = s.kind;
      ic.plugin = name;
      ic.table = it;
      ic.where = pos(*it);
      ic.plugin_where = ic.where;
      bool has_timeout = false;
      if (auto* p = it->get("plugin")) {
        if (auto ps = str(*p, path + ".plugin")) ic.plugin = *ps;
        ic.plugin_where = pos(*p);
      }
      for (std::string_view hk : {"interval", "timeout", "jitter"}) {
        const toml::node* hn = it->get(hk);
        if (!hn) continue;
        if (s.kind != MONI_KIND_COLLECTOR) {
          err(*hn, path + ": '" + std::string(hk) + "' applies to collectors only");
          continue;
        }
        auto d = duration(*hn, path + "." + std::string(hk));
        if (!d) continue;
        if (hk == "interval") {
          if (*d <= 0)
            err(*hn, path + ".interval must be > 0");
          else
            ic.interval_ms = *d;
        } else if (hk == "timeout") {
          ic.timeout_ms = *d;
          has_timeout = true;
        } else {
          ic.jitter_ms = *d;
        }
      }
      if (!has_timeout) ic.timeout_ms = ic.interval_ms;
      if (has_timeout && (ic.timeout_ms <= 0 || ic.timeout_ms > ic.interval_ms))
        err(*it->get("timeout"), path + ".timeout must be > 0 and <= interval (" +
                                     format_duration_ms(ic.interval_ms) + ")");
      if (ic.jitter_ms < 0 || ic.jitter_ms >= ic.interval_ms) {
        if (auto* j = it->get("jitter"))
          err(*j, path + ".jitter must be < interval (" + format_duration_ms(ic.interval_ms) + ")");
      }
      if (name == kSelfInstance || ic.plugin == kSelfInstance) {
        if (s.kind != MONI_KIND_COLLECTOR || (name != kSelfInstance)) {
          err(*it, path + ": '" + std::string(kSelfInstance) +
                       "' is the built-in collector of moni's own metrics; use it only as "
                       "[collectors.self]");
          continue;
        }
        if (ic.plugin != kSelfInstance) {
          err(*it->get("plugin"), path + ": 'self' is reserved for the built-in collector");
          continue;
        }
        for (auto&& [sk, sv_] : *it) {
          std::string_view skey = sk.str();
          if (skey != "plugin" && skey != "interval" && skey != "timeout" && skey != "jitter")
            err(sv_, "unknown option '" + path + "." + std::string(skey) +
                         "' (the built-in self collector takes interval, timeout and jitter only)");
        }
        ic.builtin_self = true;
      }
      std::ostringstream fp;
      fp << ic.plugin << "\n" << kind_name(ic.kind) << "\n" << toml::toml_formatter(*it);
      ic.fingerprint = fp.str();
      if (auto prev = seen_.find(name); prev != seen_.end()) {
        err(*it, "duplicate instance name '" + name + "' (also declared at " + prev->second +
                     "); instance names are unique across all sections");
        continue;
      }
      seen_[name] = ic.where;
      cfg_.instances.push_back(std::move(ic));
    }
  }

  void pipelines(const toml::node& n) {
    auto* t = as_table(n, "pipelines");
    if (!t) return;
    for (auto&& [k, v] : *t) {
      std::string name(k.str());
      std::string path = "pipelines." + name;
      auto* pt = as_table(v, "[" + path + "]");
      if (!pt) continue;
      PipelineConfig pc;
      pc.name = name;
      pc.where = pos(*pt);
      for (auto&& [pk, pv] : *pt) {
        std::string key(pk.str());
        std::vector<std::string>* dst = nullptr;
        if (key == "collectors")
          dst = &pc.collectors;
        else if (key == "processors")
          dst = &pc.processors;
        else if (key == "sinks")
          dst = &pc.sinks;
        else if (key == "forward")
          dst = &pc.forward;
        if (!dst) {
          err(pv, "unknown option '" + path + "." + key +
                      "' (a pipeline has collectors, processors, sinks and forward)");
          continue;
        }
        if (auto l = strings(pv, path + "." + key)) *dst = *l;
      }
      cfg_.pipelines.push_back(std::move(pc));
      pipeline_nodes_.push_back(pt);
    }
  }

  void add_implicit_self() {
    if (cfg_.instance(kSelfInstance)) return;
    for (size_t i = 0; i < cfg_.pipelines.size(); ++i)
      for (const auto& c : cfg_.pipelines[i].collectors)
        if (c == kSelfInstance) {
          InstanceConfig ic;
          ic.name = ic.plugin = std::string(kSelfInstance);
          ic.kind = MONI_KIND_COLLECTOR;
          ic.builtin_self = true;
          ic.where = ic.plugin_where = cfg_.pipelines[i].where;
          ic.fingerprint = "self\ncollector\n";
          cfg_.instances.push_back(std::move(ic));
          return;
        }
  }

  // References, kinds of slots, duplicates within a list, forward cycles.
  void check_pipelines() {
    std::map<std::string, size_t> index;
    for (size_t i = 0; i < cfg_.pipelines.size(); ++i) index[cfg_.pipelines[i].name] = i;
    for (size_t i = 0; i < cfg_.pipelines.size(); ++i) {
      const auto& p = cfg_.pipelines[i];
      const toml::table& pt = *pipeline_nodes_[i];
      auto check = [&](std::string_view key, const std::vector<std::string>& names,
                       std::initializer_list<uint32_t> kinds, std::string_view want) {
        const toml::array* arr = pt.get(key) ? pt.get(key)->as_array() : nullptr;
        std::set<std::string> dup;
        for (size_t j = 0; j < names.size(); ++j) {
          const toml::node& at =
              arr && j < arr->size() ? *arr->get(j) : static_cast<const toml::node&>(pt);
          std::string ref =
              "pipelines." + p.name + "." + std::string(key) + "[" + std::to_string(j) + "]";
          if (!dup.insert(names[j]).second) {
            err(at, ref + ": '" + names[j] + "' is listed twice");
            continue;
          }
          const InstanceConfig* ic = cfg_.instance(names[j]);
          if (!ic) {
            err(at, ref + ": unknown instance '" + names[j] + "' (declare it as [" +
                        std::string(section_of(*kinds.begin())) + "." + names[j] + "])");
            continue;
          }
          bool ok = false;
          for (auto k : kinds) ok = ok || ic->kind == k;
          if (!ok)
            err(at, ref + ": '" + names[j] + "' is " + with_article(kind_name(ic->kind)) +
                        " instance, expected " + std::string(want));
        }
      };
      check("collectors", p.collectors, {MONI_KIND_COLLECTOR}, "a collector");
      check("processors", p.processors, {MONI_KIND_PROCESSOR}, "a processor");
      check("sinks", p.sinks, {MONI_KIND_STORAGE, MONI_KIND_OUTPUT}, "a storage or an output");
      const toml::array* fwd = pt.get("forward") ? pt.get("forward")->as_array() : nullptr;
      for (size_t j = 0; j < p.forward.size(); ++j)
        if (!index.count(p.forward[j]))
          err(fwd ? *fwd->get(j) : static_cast<const toml::node&>(pt),
              "pipelines." + p.name + ".forward[" + std::to_string(j) + "]: unknown pipeline '" +
                  p.forward[j] + "'");
    }
    // Cycles along forward edges (depth-first, reported once per cycle start).
    std::vector<int> state(cfg_.pipelines.size(), 0);
    std::vector<std::string> stack;
    std::function<void(size_t)> dfs = [&](size_t i) {
      state[i] = 1;
      stack.push_back(cfg_.pipelines[i].name);
      const auto& p = cfg_.pipelines[i];
      for (size_t j = 0; j < p.forward.size(); ++j) {
        auto it = index.find(p.forward[j]);
        if (it == index.end()) continue;
        if (state[it->second] == 1) {
          std::string cyc;
          bool in = false;
          for (const auto& s : stack) {
            if (s == p.forward[j]) in = true;
            if (in) cyc += s + " -> ";
          }
          cyc += p.forward[j];
          const toml::array* fwd = pipeline_nodes_[i]->get("forward")->as_array();
          err(*fwd->get(j), "pipelines." + p.name + ".forward: cycle " + cyc);
        } else if (state[it->second] == 0) {
          dfs(it->second);
        }
      }
      stack.pop_back();
      state[i] = 2;
    };
    for (size_t i = 0; i < cfg_.pipelines.size(); ++i)
      if (state[i] == 0) dfs(i);
  }

  HostConfig& cfg_;
  std::map<std::string, std::string> seen_;
  std::vector<const toml::table*> pipeline_nodes_;
};

Result<HostConfig> finish(HostConfig cfg, std::vector<std::string> errors) {
  if (errors.empty()) return cfg;
  std::string all;
  for (const auto& e : errors) all += (all.empty() ? "" : "\n") + e;
  return make_error(all);
}

}  // namespace

const InstanceConfig* HostConfig::instance(std::string_view name) const {
  for (const auto& i : instances)
    if (i.name == name) return &i;
  return nullptr;
}

bool split_listen(std::string_view listen, std::string& host, uint16_t& port) {
  size_t colon;
  if (listen.starts_with("[")) {
    size_t close = listen.find(']');
    if (close == std::string_view::npos || close + 1 >= listen.size() || listen[close + 1] != ':')
      return false;
    host = std::string(listen.substr(1, close - 1));
    colon = close + 1;
  } else {
    colon = listen.rfind(':');
    if (colon == std::string_view::npos) return false;
    host = std::string(listen.substr(0, colon));
    if (host.find(':') != std::string::npos) return false;
  }
  std::string_view ps = listen.substr(colon + 1);
  if (ps.empty() || ps.size() > 5 || host.empty()) return false;
  unsigned v = 0;
  for (char c : ps) {
    if (c < '0' || c > '9') return false;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v > 65535) return false;
  port = static_cast<uint16_t>(v);
  return true;
}

Result<HostConfig> parse_config_text(std::string_view text, const std::string& path) {
  HostConfig cfg;
  cfg.file = path;
  try {
    cfg.doc = std::make_shared<toml::table>(toml::parse(text, path));
  } catch (const toml::parse_error& e) {
    return make_error(pos(e.source()) + ": " + std::string(e.description()));
  }
  Parser p(cfg);
  p.run(*cfg.doc);
  return finish(std::move(cfg), std::move(p.errors));
}

Result<HostConfig> parse_config_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return make_error(path + ": cannot read the config file: " + std::strerror(errno));
  std::stringstream ss;
  ss << f.rdbuf();
  return parse_config_text(ss.str(), path);
}

std::vector<std::string> check_plugins(const HostConfig& cfg, PluginRegistry& plugins) {
  std::vector<std::string> errors;
  for (const auto& ic : cfg.instances) {
    if (ic.builtin_self) continue;
    std::string path = std::string(section_of(ic.kind)) + "." + ic.name;
    auto lp = plugins.find(ic.plugin);
    if (!lp) {
      errors.push_back(ic.plugin_where + ": " + path + ": unknown plugin '" + ic.plugin +
                       "': " + plugins.explain_missing(ic.plugin));
      continue;
    }
    if (lp->kind != ic.kind)
      errors.push_back(ic.plugin_where + ": " + path + ": plugin '" + ic.plugin + "' is " +
                       with_article(kind_name(lp->kind)) + " plugin, not " +
                       with_article(kind_name(ic.kind)) + "; declare it as [" +
                       std::string(section_of(lp->kind)) + "." + ic.name + "]");
  }
  return errors;
}

}  // namespace moni::host
