// The host's logger: one line per message on stderr, "ts level component: msg".
// Thread-safety: every function may be called from any thread.
#pragma once

#include <string_view>

namespace moni::host {

enum class Level { Debug = 0, Info = 1, Warn = 2, Error = 3 };

/// Parses "debug"/"info"/"warn"/"error"; false when unknown.
bool parse_level(std::string_view s, Level& out);
void set_log_level(Level l);
Level log_level();
void log(Level l, std::string_view component, std::string_view message);

inline void log_debug(std::string_view c, std::string_view m) { log(Level::Debug, c, m); }
inline void log_info(std::string_view c, std::string_view m) { log(Level::Info, c, m); }
inline void log_warn(std::string_view c, std::string_view m) { log(Level::Warn, c, m); }
inline void log_error(std::string_view c, std::string_view m) { log(Level::Error, c, m); }

}  // namespace moni::host
