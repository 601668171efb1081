#include "container_id.hpp"

namespace moni_cgroup {
namespace {

bool is_hex64(std::string_view s) {
  if (s.size() != 64) return false;
  for (char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// "<prefix><hex64><suffix>" -> the hex part, or empty.
std::string_view wrapped(std::string_view leaf, std::string_view prefix, std::string_view suffix) {
  if (leaf.size() != prefix.size() + 64 + suffix.size()) return {};
  if (leaf.substr(0, prefix.size()) != prefix) return {};
  if (leaf.substr(leaf.size() - suffix.size()) != suffix) return {};
  std::string_view id = leaf.substr(prefix.size(), 64);
  return is_hex64(id) ? id : std::string_view{};
}

}  // namespace

ContainerRef classify(std::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == std::string_view::npos) return {};
  std::string_view leaf = path.substr(slash + 1);
  std::string_view parent_path = path.substr(0, slash);
  std::string_view parent = parent_path.substr(parent_path.rfind('/') + 1);

  struct Rule {
    std::string_view prefix, suffix;
    Runtime runtime;
  };
  static constexpr Rule kRules[] = {
      {"docker-", ".scope", Runtime::Docker},
      {"libpod-", ".scope", Runtime::Podman},
      {"libpod-", "", Runtime::Podman},  // podman's cgroupfs manager: /libpod_parent/libpod-<id>
      {"cri-containerd-", ".scope", Runtime::Containerd},
      {"nerdctl-", ".scope", Runtime::Containerd},
      {"crio-", ".scope", Runtime::Crio},
  };
  for (const auto& r : kRules) {
    std::string_view id = wrapped(leaf, r.prefix, r.suffix);
    if (!id.empty()) return {r.runtime, id};
  }
  if (is_hex64(leaf)) {
    if (parent == "docker") return {Runtime::Docker, leaf};
    return {Runtime::UnknownHex, leaf};
  }
  return {};
}

}  // namespace moni_cgroup
