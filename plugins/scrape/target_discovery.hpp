// Scrape targets: static groups from the config and file-based discovery
// (Prometheus file_sd JSON, or the same shape in TOML), re-read when a
// file's size or modification time changes.
#pragma once

#include <moni/sdk.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace moni::scrape {

/// A group of addresses sharing labels, as in Prometheus's static_configs
/// and file_sd target groups. Labels may include __metrics_path__,
/// __scheme__, __scrape_interval__ and __scrape_timeout__ to override the
/// job's settings.
struct TargetGroup {
  std::vector<std::string> targets;
  std::map<std::string, std::string> labels;
  std::string source;  // "static_configs[0]" or the file path
};

/// Reads target group files; remembers what it read to notice changes.
/// Thread-safety: none (used from collect() only).
class FileDiscovery {
 public:
  explicit FileDiscovery(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {}

  /// Re-reads files whose size/mtime changed (and notices new and removed
  /// files matching the glob patterns). Returns true when the groups
  /// changed. A file that fails to parse keeps its previous groups; the
  /// error is appended to `errors`.
  bool refresh(std::vector<std::string>& errors);
  /// All groups of all files, in path order.
  std::vector<TargetGroup> groups() const;

 private:
  struct File {
    int64_t mtime_ns = -1;
    int64_t size = -1;
    std::vector<TargetGroup> groups;
  };
  std::vector<std::string> patterns_;
  std::map<std::string, File> files_;
};

/// Parses a target group file body (format by extension: .json, .toml).
Result<std::vector<TargetGroup>> parse_target_file(const std::string& path,
                                                  const std::string& body);

}  // namespace moni::scrape
