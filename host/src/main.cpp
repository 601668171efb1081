// The moni command line: run, check-config, plugins, offline storage
// commands, version and help.
#include <moni/plugin_abi.h>

#include <malloc.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <moni/version.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "log.hpp"
#include "offline_commands.hpp"
#include "runtime.hpp"

namespace {

constexpr const char* kUsage = R"(usage: moni <command> [options]

commands:
  run --config FILE [--listen ADDR:PORT] [--data-dir DIR]
                       run the pipelines of FILE until SIGTERM/SIGINT
                       (SIGHUP reloads FILE)
  check-config FILE [--data-dir DIR]
                       validate FILE: syntax, plugins, every instance's options
  plugins [--config FILE]
                       list the plugins found (name, kind, version, ABI, file)
  backup|restore|import --config FILE [--data-dir DIR] [--storage NAME] ARGS...
                       run an offline command of a storage instance (not started)
  rules import FILE.yml [--out FILE.toml] [--config FILE]
                       convert a Prometheus YAML rule file to moni's TOML rules
  rules test FILE... [--config FILE]
                       run rule unit tests (promtool test rules' file format)
  version, --version   print the version
  help, --help         print this help
)";

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "moni: %s\n(run `moni help` for usage)\n", msg.c_str());
  return 2;
}

struct Args {
  std::optional<std::string> config, listen, data_dir, storage;
  std::vector<std::string> positional;
};

// Host options anywhere before "--"; with `pass_unknown`, other arguments
// (including unknown --flags) are kept for a plugin's command.
std::optional<std::string> parse(int argc, char** argv, int from, Args& a, bool pass_unknown,
                                 std::initializer_list<std::string_view> allowed) {
  bool rest = false;
  for (int i = from; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (rest) {
      a.positional.emplace_back(arg);
      continue;
    }
    if (arg == "--") {
      rest = true;
      continue;
    }
    std::optional<std::string>* dst = nullptr;
    std::string_view key = arg, value;
    bool inline_value = false;
    if (arg.starts_with("--") && arg.find('=') != std::string_view::npos) {
      key = arg.substr(0, arg.find('='));
      value = arg.substr(arg.find('=') + 1);
      inline_value = true;
    }
    bool known = false;
    for (auto k : allowed) known = known || k == key;
    if (known) {
      if (key == "--config")
        dst = &a.config;
      else if (key == "--listen")
        dst = &a.listen;
      else if (key == "--data-dir")
        dst = &a.data_dir;
      else if (key == "--storage")
        dst = &a.storage;
    }
    if (dst) {
      if (!inline_value) {
        if (i + 1 >= argc) return std::string(key) + " needs a value";
        value = argv[++i];
      }
      if (value.empty()) return std::string(key) + " needs a non-empty value";
      *dst = std::string(value);
    } else if (arg.starts_with("-") && arg != "-" && !pass_unknown) {
      return "unknown option '" + std::string(arg) + "'";
    } else {
      a.positional.emplace_back(arg);
    }
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  std::string_view cmd = argv[1];
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (cmd == "version" || cmd == "--version" || cmd == "-V") {
    std::printf("moni %s (plugin ABI %d.%d)\n", MONI_VERSION_STRING, MONI_ABI_MAJOR,
                MONI_ABI_MINOR);
    return 0;
  }
  Args a;
  if (cmd == "run") {
    if (auto e = parse(argc, argv, 2, a, false, {"--config", "--listen", "--data-dir"}))
      return usage_error("run: " + *e);
    if (!a.positional.empty())
      return usage_error("run: unexpected argument '" + a.positional[0] + "'");
    if (!a.config) return usage_error("run: --config FILE is required");
    // glibc gives each thread that allocates an arena of its own (up to
    // 8 per core); moni allocates little and off the hot path, so one
    // arena keeps about 0.5 MiB of RSS away (MALLOC_ARENA_MAX overrides).
    if (!std::getenv("MALLOC_ARENA_MAX")) mallopt(M_ARENA_MAX, 1);
    return moni::host::run_host({*a.config, a.listen, a.data_dir});
  }
  if (cmd == "check-config") {
    if (auto e = parse(argc, argv, 2, a, false, {"--config", "--data-dir"}))
      return usage_error("check-config: " + *e);
    if (a.config) a.positional.insert(a.positional.begin(), *a.config);
    if (a.positional.size() != 1) return usage_error("check-config: expects exactly one FILE");
    return moni::host::check_config(a.positional[0], a.data_dir);
  }
  if (cmd == "plugins") {
    if (auto e = parse(argc, argv, 2, a, false, {"--config"})) return usage_error("plugins: " + *e);
    if (!a.positional.empty())
      return usage_error("plugins: unexpected argument '" + a.positional[0] + "'");
    return moni::host::list_plugins(a.config);
  }
  if (cmd == "backup" || cmd == "restore" || cmd == "import") {
    std::string c(cmd);
    if (auto e = parse(argc, argv, 2, a, true, {"--config", "--data-dir", "--storage"}))
      return usage_error(c + ": " + *e);
    if (!a.config) return usage_error(c + ": --config FILE is required");
    return moni::host::storage_command(c, *a.config, a.data_dir, a.storage, a.positional);
  }
  if (cmd == "rules") {
    if (auto e = parse(argc, argv, 2, a, true, {"--config"})) return usage_error("rules: " + *e);
    return moni::host::plugin_command("rules", "rules", a.config, a.positional);
  }
  return usage_error("unknown command '" + std::string(cmd) + "'");
}
