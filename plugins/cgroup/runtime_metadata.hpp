// RuntimeMetadata: a container's name, image, labels and creation time from
// the runtime's own state on disk (no daemon needed): Docker's
// containers/<id>/config.v2.json, Podman's containers.json (containers/storage)
// and containerd's OCI bundle config.json (annotations).
#pragma once

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "container_id.hpp"

namespace moni_cgroup {

struct ContainerMeta {
  bool found = false;
  Runtime runtime = Runtime::None;  // where it was found
  std::string name;
  std::string image;
  std::vector<std::pair<std::string, std::string>> labels;  // runtime labels, raw keys
  int64_t created_s = 0;                                    // 0: unknown
};

/// Thread-safety: none; used by the collecting thread only.
class RuntimeMetadata {
 public:
  RuntimeMetadata(std::string docker_root, std::string containers_storage,
                  std::string containerd_state)
      : docker_root_(std::move(docker_root)),
        containers_storage_(std::move(containers_storage)),
        containerd_state_(std::move(containerd_state)) {}

  /// Looks `id` up in the runtime's state (UnknownHex tries Docker, then
  /// containerd, then Podman). Not found: found == false, every field empty.
  ContainerMeta lookup(Runtime runtime, std::string_view id);

 private:
  ContainerMeta docker(std::string_view id);
  ContainerMeta podman(std::string_view id);
  ContainerMeta containerd(std::string_view id);
  void reload_podman();

  std::string docker_root_, containers_storage_, containerd_state_;
  // containers.json is one file for all Podman containers: parsed when its
  // mtime changes.
  struct timespec podman_mtime_ {};
  std::unordered_map<std::string, ContainerMeta> podman_;
};

/// Seconds since the epoch of an RFC 3339 time ("2024-03-01T10:00:00.5Z",
/// "...+02:00"); 0 when malformed.
int64_t parse_rfc3339(std::string_view s);

}  // namespace moni_cgroup
