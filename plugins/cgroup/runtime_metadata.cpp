#include "runtime_metadata.hpp"

#include <dirent.h>
#include <sys/stat.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace moni_cgroup {
namespace {

using nlohmann::json;

bool slurp(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = std::move(ss).str();
  return true;
}

std::string str_field(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

int digits(std::string_view s, size_t pos, size_t n, int& out) {
  if (pos + n > s.size()) return 0;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return 0;
    v = v * 10 + (s[i] - '0');
  }
  out = v;
  return 1;
}

}  // namespace

int64_t parse_rfc3339(std::string_view s) {
  int Y, M, D, h, m, sec;
  if (!digits(s, 0, 4, Y) || !digits(s, 5, 2, M) || !digits(s, 8, 2, D) || !digits(s, 11, 2, h) ||
      !digits(s, 14, 2, m) || !digits(s, 17, 2, sec))
    return 0;
  if (s.size() < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
      s[13] != ':' || s[16] != ':')
    return 0;
  size_t i = 19;
  if (i < s.size() && s[i] == '.')
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
    }
  int64_t offset = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    int oh, om;
    if (!digits(s, i + 1, 2, oh) || !digits(s, i + 4, 2, om)) return 0;
    offset = (oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
  } else if (i >= s.size() || (s[i] != 'Z' && s[i] != 'z')) {
    return 0;
  }
  struct tm t {};
  t.tm_year = Y - 1900;
  t.tm_mon = M - 1;
  t.tm_mday = D;
  t.tm_hour = h;
  t.tm_min = m;
  t.tm_sec = sec;
  int64_t epoch = static_cast<int64_t>(timegm(&t));
  // Docker writes "0001-01-01T00:00:00Z" for never: treat pre-epoch as unknown.
  return epoch > 0 ? epoch - offset : 0;
}

ContainerMeta RuntimeMetadata::lookup(Runtime runtime, std::string_view id) {
  switch (runtime) {
    case Runtime::Docker:
      return docker(id);
    case Runtime::Podman:
      return podman(id);
    case Runtime::Containerd:
      return containerd(id);
    case Runtime::UnknownHex: {
      ContainerMeta m = docker(id);
      if (!m.found) m = containerd(id);
      if (!m.found) m = podman(id);
      return m;
    }
    default:
      return {};
  }
}

ContainerMeta RuntimeMetadata::docker(std::string_view id) {
  ContainerMeta meta;
  if (docker_root_.empty()) return meta;
  std::string text;
  if (!slurp(docker_root_ + "/containers/" + std::string(id) + "/config.v2.json", text))
    return meta;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return meta;
  meta.found = true;
  meta.runtime = Runtime::Docker;
  meta.name = str_field(j, "Name");
  if (!meta.name.empty() && meta.name[0] == '/') meta.name.erase(0, 1);
  meta.created_s = parse_rfc3339(str_field(j, "Created"));
  auto cfg = j.find("Config");
  if (cfg != j.end() && cfg->is_object()) {
    meta.image = str_field(*cfg, "Image");
    auto labels = cfg->find("Labels");
    if (labels != cfg->end() && labels->is_object())
      for (auto it = labels->begin(); it != labels->end(); ++it)
        if (it->is_string()) meta.labels.emplace_back(it.key(), it->get<std::string>());
  }
  return meta;
}

void RuntimeMetadata::reload_podman() {
  if (containers_storage_.empty()) return;
  // Podman's default driver is overlay; vfs and others keep the same layout.
  static constexpr const char* kDrivers[] = {"overlay", "vfs", "btrfs", "zfs"};
  for (const char* driver : kDrivers) {
    std::string path = containers_storage_ + "/" + driver + "-containers/containers.json";
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) continue;
    if (st.st_mtim.tv_sec == podman_mtime_.tv_sec && st.st_mtim.tv_nsec == podman_mtime_.tv_nsec)
      return;
    std::string text;
    if (!slurp(path, text)) return;
    json j = json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return;
    podman_mtime_ = st.st_mtim;
    podman_.clear();
    for (const auto& c : j) {
      if (!c.is_object()) continue;
      ContainerMeta m;
      m.found = true;
      m.runtime = Runtime::Podman;
      auto names = c.find("names");
      if (names != c.end() && names->is_array() && !names->empty() && (*names)[0].is_string())
        m.name = (*names)[0].get<std::string>();
      m.created_s = parse_rfc3339(str_field(c, "created"));
      // "metadata" is a JSON document in a string; it carries the image name.
      std::string md = str_field(c, "metadata");
      if (!md.empty()) {
        json mj = json::parse(md, nullptr, false);
        if (!mj.is_discarded() && mj.is_object()) {
          m.image = str_field(mj, "image-name");
          if (m.name.empty()) m.name = str_field(mj, "name");
        }
      }
      podman_[str_field(c, "id")] = std::move(m);
    }
    return;
  }
}

ContainerMeta RuntimeMetadata::podman(std::string_view id) {
  reload_podman();
  auto it = podman_.find(std::string(id));
  return it == podman_.end() ? ContainerMeta{} : it->second;
}

ContainerMeta RuntimeMetadata::containerd(std::string_view id) {
  ContainerMeta meta;
  if (containerd_state_.empty()) return meta;
  // One bundle directory per namespace ("k8s.io", "default", ...).
  std::string tasks = containerd_state_ + "/io.containerd.runtime.v2.task";
  DIR* d = ::opendir(tasks.c_str());
  if (!d) return meta;
  std::string text;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    if (slurp(tasks + "/" + e->d_name + "/" + std::string(id) + "/config.json", text)) break;
  }
  ::closedir(d);
  if (text.empty()) return meta;
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return meta;
  meta.found = true;
  meta.runtime = Runtime::Containerd;
  auto ann = j.find("annotations");
  if (ann != j.end() && ann->is_object()) {
    meta.name = str_field(*ann, "nerdctl/name");
    if (meta.name.empty()) meta.name = str_field(*ann, "io.kubernetes.cri.container-name");
    meta.image = str_field(*ann, "io.kubernetes.cri.image-name");
  }
  return meta;
}

}  // namespace moni_cgroup
