#include "log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <string>

namespace moni::host {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::Info)};
std::mutex g_mu;
const char* name_of(Level l) {
  switch (l) {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warn:
      return "warn";
    default:
      return "error";
  }
}
}  // namespace

bool parse_level(std::string_view s, Level& out) {
  if (s == "debug")
    out = Level::Debug;
  else if (s == "info")
    out = Level::Info;
  else if (s == "warn" || s == "warning")
    out = Level::Warn;
  else if (s == "error")
    out = Level::Error;
  else
    return false;
  return true;
}

void set_log_level(Level l) { g_level = static_cast<int>(l); }
Level log_level() { return static_cast<Level>(g_level.load()); }

void log(Level l, std::string_view component, std::string_view message) {
  if (static_cast<int>(l) < g_level.load()) return;
  auto now = std::chrono::system_clock::now();
  std::time_t t = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char ts[32];
  std::strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
  std::string line;
  line.reserve(message.size() + component.size() + 48);
  line.append(ts).append(".");
  char msbuf[8];
  std::snprintf(msbuf, sizeof msbuf, "%03dZ ", ms);
  line.append(msbuf).append(name_of(l)).append(" ");
  if (!component.empty()) line.append(component).append(": ");
  line.append(message).append("\n");
  std::lock_guard lock(g_mu);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace moni::host
