#include "cgroup_layout.hpp"

#include <vector>

namespace moni_cgroup {
namespace {

// mountinfo escapes blanks and backslashes in paths as \ooo.
std::string unescape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7') {
      int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
      out.push_back(static_cast<char>(v));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  size_t pos = 0;
  while (pos <= s.size()) {
    size_t e = s.find(sep, pos);
    if (e == std::string_view::npos) e = s.size();
    if (e > pos) out.push_back(s.substr(pos, e - pos));
    pos = e + 1;
  }
  return out;
}

struct Mount {
  std::string point;
  bool v2 = false;
  std::array<bool, kControllerCount> controllers{};
};

std::string_view dirname(std::string_view p) {
  size_t s = p.rfind('/');
  if (s == std::string_view::npos || s == 0) return "/";
  return p.substr(0, s);
}

}  // namespace

moni::Result<CgroupLayout> detect_layout(std::string_view mountinfo, const std::string& root) {
  static constexpr std::string_view kNames[kControllerCount] = {"cpu", "cpuacct", "memory", "blkio",
                                                                "pids"};
  std::vector<Mount> mounts;
  size_t pos = 0;
  while (pos < mountinfo.size()) {
    size_t nl = mountinfo.find('\n', pos);
    if (nl == std::string_view::npos) nl = mountinfo.size();
    std::string_view line = mountinfo.substr(pos, nl - pos);
    pos = nl + 1;
    size_t dash = line.find(" - ");
    if (dash == std::string_view::npos) continue;
    auto left = split(line.substr(0, dash), ' ');
    auto right = split(line.substr(dash + 3), ' ');
    if (left.size() < 5 || right.size() < 3) continue;
    Mount m;
    m.point = unescape(left[4]);
    if (right[0] == "cgroup2") {
      m.v2 = true;
    } else if (right[0] == "cgroup") {
      bool any = false;
      for (auto opt : split(right[2], ','))
        for (int c = 0; c < kControllerCount; ++c)
          if (opt == kNames[c]) m.controllers[c] = any = true;
      if (!any) continue;  // name=systemd and controllers we do not read
    } else {
      continue;
    }
    mounts.push_back(std::move(m));
  }

  // The base directory: where the v1 controllers hang, else the v2 mount.
  std::string base;
  for (const auto& m : mounts)
    if (!m.v2) {
      base = std::string(dirname(m.point));
      break;
    }
  bool have_v1 = !base.empty();
  if (!have_v1)
    for (const auto& m : mounts)
      if (m.v2) {
        base = m.point;
        break;
      }
  if (base.empty()) return moni::make_error("no cgroup or cgroup2 mount in the mount table");

  auto rerooted = [&](const std::string& point, std::string& out) {
    if (point == base) {
      out = root;
      return true;
    }
    if (point.size() > base.size() && point.compare(0, base.size(), base) == 0 &&
        (base == "/" || point[base.size()] == '/')) {
      out = root + point.substr(base == "/" ? 0 : base.size());
      return true;
    }
    return false;
  };

  CgroupLayout layout;
  for (const auto& m : mounts) {
    std::string dir;
    if (!rerooted(m.point, dir)) continue;  // a cgroup mount elsewhere (bind mount)
    if (m.v2) {
      if (layout.unified.empty()) layout.unified = dir;
      continue;
    }
    for (int c = 0; c < kControllerCount; ++c)
      if (m.controllers[c] && layout.v1[c].empty()) layout.v1[c] = dir;
  }
  if (have_v1)
    layout.mode = layout.unified.empty() ? CgroupLayout::Mode::V1 : CgroupLayout::Mode::Hybrid;
  else
    layout.mode = CgroupLayout::Mode::V2;
  return layout;
}

}  // namespace moni_cgroup
