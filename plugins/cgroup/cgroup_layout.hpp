// CgroupLayout: which cgroup hierarchies exist (v2 unified, v1 controllers,
// or the hybrid of both) and where, as read from a mount table.
#pragma once

#include <array>
#include <moni/result.hpp>
#include <string>
#include <string_view>

namespace moni_cgroup {

/// The v1 controllers the collector reads.
enum Controller : int { kCpu = 0, kCpuacct, kMemory, kBlkio, kPids, kControllerCount };

/// Thread-safety: a value type.
struct CgroupLayout {
  enum class Mode { V1, V2, Hybrid };
  Mode mode = Mode::V2;
  /// Directory of the cgroup2 mount (the whole tree for V2; the PSI-only
  /// "unified" tree for Hybrid); empty when absent.
  std::string unified;
  /// Directory of each v1 controller's hierarchy; empty when not mounted.
  /// Co-mounted controllers ("cpu,cpuacct") share one directory.
  std::array<std::string, kControllerCount> v1;

  std::string_view mode_name() const {
    return mode == Mode::V1 ? "v1" : mode == Mode::V2 ? "v2" : "hybrid";
  }
};

/// Detects the layout from /proc/<pid>/mountinfo text. Mount points are taken
/// relative to the directory holding the cgroup mounts (normally
/// /sys/fs/cgroup) and re-rooted at `root`, so a host's mount table works with
/// the host's cgroupfs mounted elsewhere (and fixtures can point anywhere).
moni::Result<CgroupLayout> detect_layout(std::string_view mountinfo, const std::string& root);

}  // namespace moni_cgroup
