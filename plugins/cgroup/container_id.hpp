// Recognises container runtimes from cgroup paths: Docker (cgroupfs and
// systemd drivers), Podman, containerd (CRI, nerdctl) and CRI-O.
#pragma once

#include <string_view>

namespace moni_cgroup {

enum class Runtime : unsigned char {
  None,  // a plain cgroup (systemd service/slice/scope, anything else)
  Docker,
  Podman,
  Containerd,
  Crio,
  UnknownHex,  // a bare 64-hex leaf (kubepods cgroupfs driver, containerd cgroupfs)
};

struct ContainerRef {
  Runtime runtime = Runtime::None;
  std::string_view id;  // the 64-hex container id, a view into the path
};

/// Classifies a cgroup path such as "/system.slice/docker-<id>.scope".
ContainerRef classify(std::string_view cgroup_path);

}  // namespace moni_cgroup
