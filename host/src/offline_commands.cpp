#include "offline_commands.hpp"

#include <moni/plugin_abi.h>

#include <cstdio>
#include <iostream>

#include "graph.hpp"
#include "host_config.hpp"
#include "log.hpp"
#include "plugin_loader.hpp"

#define TOML_EXCEPTIONS 1
#include <toml++/toml.h>

namespace moni::host {
namespace {

std::vector<std::string> plugin_dirs(const HostConfig* cfg) {
  std::vector<std::string> dirs{builtin_plugin_dir()};
  if (cfg) dirs.insert(dirs.end(), cfg->plugin_dirs.begin(), cfg->plugin_dirs.end());
  return dirs;
}

void print_failures(const PluginRegistry& reg) {
  for (const auto& f : reg.failures()) std::cerr << "moni: plugin " << f << "\n";
}

// Creates (does not start) an instance and runs its offline command `name`.
int instance_command(const InstanceConfig& ic, std::shared_ptr<const toml::table> doc,
                     std::shared_ptr<LoadedPlugin> lp, const std::string& data_dir,
                     const std::string& name, const std::vector<std::string>& args,
                     bool with_context = true) {
  auto inst = std::make_shared<Instance>(ic, std::move(doc), std::move(lp), data_dir, nullptr);
  if (auto r = inst->create(); !r) {
    std::cerr << r.error().message << "\n";
    return 1;
  }
  if (auto r = inst->command(name, args, with_context); !r) {
    std::cerr << "moni " << name << ": " << r.error().message << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

int check_config(const std::string& path, const std::optional<std::string>& data_dir) {
  auto cfg = parse_config_file(path);
  if (!cfg) {
    std::cerr << cfg.error().message << "\n";
    return 1;
  }
  if (data_dir) cfg->data_dir = *data_dir;
  PluginRegistry reg;
  reg.scan(plugin_dirs(&*cfg));
  size_t n_inst = cfg->instances.size(), n_pipe = cfg->pipelines.size();
  std::string dir = cfg->data_dir;
  PipelineCounters counters;
  auto g = build_graph(std::move(*cfg), reg, dir, nullptr, nullptr, counters);
  if (!g) {
    print_failures(reg);
    std::cerr << g.error().message << "\n";
    return 1;
  }
  g->reset();           // destroys every instance while the plugins are still loaded
  print_failures(reg);  // files tried on the way to a plugin whose file is named otherwise
  std::cout << path << ": OK (" << n_inst << " instance(s), " << n_pipe << " pipeline(s))\n";
  return 0;
}

int list_plugins(const std::optional<std::string>& config_path) {
  std::optional<HostConfig> cfg;
  if (config_path) {
    auto r = parse_config_file(*config_path);
    if (!r) {
      std::cerr << r.error().message << "\n";
      return 1;
    }
    cfg = std::move(r.value());
  }
  PluginRegistry reg;
  reg.scan(plugin_dirs(cfg ? &*cfg : nullptr));
  reg.load_all();  // the one command that loads every plugin file
  std::printf("%-16s %-10s %-10s %-4s %s\n", "NAME", "KIND", "VERSION", "ABI", "FILE");
  for (const auto& p : reg.plugins())
    std::printf("%-16s %-10s %-10s %u.%u  %s\n", p->name.c_str(),
                std::string(kind_name(p->kind)).c_str(), p->version.c_str(), p->desc.abi_major,
                p->desc.abi_minor, p->path.c_str());
  std::fflush(stdout);
  print_failures(reg);
  return reg.failures().empty() ? 0 : 1;
}

int storage_command(const std::string& name, const std::string& config_path,
                    const std::optional<std::string>& data_dir,
                    const std::optional<std::string>& storage,
                    const std::vector<std::string>& args) {
  auto cfg = parse_config_file(config_path);
  if (!cfg) {
    std::cerr << cfg.error().message << "\n";
    return 1;
  }
  if (data_dir) cfg->data_dir = *data_dir;
  const InstanceConfig* target = nullptr;
  std::string names;
  for (const auto& ic : cfg->instances) {
    if (ic.kind != MONI_KIND_STORAGE) continue;
    names += (names.empty() ? "" : ", ") + ic.name;
    if (storage ? ic.name == *storage : true) {
      if (target && !storage) {
        std::cerr << "moni " << name << ": several storage instances (" << names
                  << "...); choose one with --storage NAME\n";
        return 2;
      }
      target = &ic;
    }
  }
  if (!target) {
    if (storage)
      std::cerr << "moni " << name << ": no storage instance '" << *storage << "' in "
                << config_path << (names.empty() ? "" : " (there is: " + names + ")") << "\n";
    else
      std::cerr << "moni " << name << ": " << config_path
                << " declares no [storage.NAME] instance\n";
    return 1;
  }
  PluginRegistry reg;
  reg.scan(plugin_dirs(&*cfg));
  auto lp = reg.find(target->plugin);
  if (!lp || lp->kind != MONI_KIND_STORAGE) {
    print_failures(reg);
    std::cerr << target->plugin_where << ": storage." << target->name << ": "
              << (lp ? "plugin '" + target->plugin + "' is not a storage plugin"
                     : "unknown plugin '" + target->plugin +
                           "': " + reg.explain_missing(target->plugin))
              << "\n";
    return 1;
  }
  return instance_command(*target, cfg->doc, lp, cfg->data_dir, name, args);
}

int plugin_command(const std::string& plugin, const std::string& name,
                   const std::optional<std::string>& config_path,
                   const std::vector<std::string>& args) {
  std::optional<HostConfig> cfg;
  if (config_path) {
    auto r = parse_config_file(*config_path);
    if (!r) {
      std::cerr << r.error().message << "\n";
      return 1;
    }
    cfg = std::move(*r);
  }
  PluginRegistry reg;
  reg.scan(plugin_dirs(cfg ? &*cfg : nullptr));
  auto lp = reg.find(plugin);
  if (!lp) {
    print_failures(reg);
    std::cerr << "moni " << name << ": no plugin '" << plugin
              << "': " << reg.explain_missing(plugin) << "\n";
    return 1;
  }
  InstanceConfig ic;
  std::shared_ptr<const toml::table> doc = std::make_shared<const toml::table>();
  std::string data_dir = "/var/lib/moni";
  if (cfg) {
    doc = cfg->doc;
    data_dir = cfg->data_dir;
    for (const auto& c : cfg->instances)
      if (c.plugin == plugin) {
        ic = c;
        break;
      }
  }
  if (ic.name.empty()) {
    doc = std::make_shared<const toml::table>();  // no table of its own: the plugin's defaults
    ic.name = plugin;
    ic.plugin = plugin;
    ic.kind = lp->kind;
    ic.table = doc.get();
    ic.where = "(command line)";
    ic.plugin_where = ic.where;
  }
  return instance_command(ic, doc, lp, data_dir, name, args, false);
}

}  // namespace moni::host
