#include "fixture_tree.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

namespace fs = std::filesystem;

namespace cgroup_test {

FixtureTree::FixtureTree(const std::string& name) {
  char tmpl[] = "/tmp/moni-cgroup-fixture-XXXXXX";
  char* d = ::mkdtemp(tmpl);
  if (!d) throw std::runtime_error("mkdtemp failed");
  dir_ = d;
  fs::copy(fs::path(MONI_TEST_DATA_DIR) / "cgroup" / name, dir_,
           fs::copy_options::recursive | fs::copy_options::copy_symlinks);
  struct timespec ts[2] = {{kMtime, 0}, {kMtime, 0}};
  std::vector<std::string> paths;
  for (const auto& e : fs::recursive_directory_iterator(dir_)) paths.push_back(e.path());
  // Files before their directories: touching a file would not change the
  // directory's mtime, but keep the order obvious anyway.
  for (auto it = paths.rbegin(); it != paths.rend(); ++it)
    ::utimensat(AT_FDCWD, it->c_str(), ts, AT_SYMLINK_NOFOLLOW);
}

FixtureTree::~FixtureTree() {
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string FixtureTree::config(const std::string& extra) const {
  return "root = \"" + dir_ + "/cgroup\"\n" + "mountinfo = \"" + dir_ + "/mountinfo\"\n" +
         "procfs = \"" + dir_ + "/proc\"\n" + "sysfs = \"" + dir_ + "/sys\"\n" +
         "docker_root = \"" + dir_ + "/docker\"\n" + "containers_storage = \"" + dir_ +
         "/containers-storage\"\n" + "containerd_state = \"" + dir_ + "/containerd\"\n" + extra;
}

std::string render(const moni::testing::OwnedBatch& b) {
  std::vector<std::string> lines;
  std::set<std::string> families;
  for (const auto& s : b.samples) {
    std::string line = s.name() + "{";
    bool first = true;
    for (const auto& l : s.labels) {
      if (l.name == "__name__") continue;
      line += (first ? "" : ",") + l.name + "=\"" + l.value + "\"";
      first = false;
    }
    char buf[64];
    // Integers in full (byte counts read better), everything else shortest.
    auto r =
        (s.value == static_cast<double>(static_cast<int64_t>(s.value)) && std::abs(s.value) < 1e15)
            ? std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(s.value))
            : std::to_chars(buf, buf + sizeof buf, s.value);
    line += "} " + std::string(buf, r.ptr);
    lines.push_back(line);
    families.insert(s.name());
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& f : families) {
    const auto* m = b.meta(f);
    if (!m) {
      out += "# MISSING METADATA " + f + "\n";
      continue;
    }
    out += "# HELP " + f + " " + m->help + "\n# TYPE " + f + " " +
           std::string(moni::type_name(m->type)) + "\n";
  }
  for (const auto& l : lines) out += l + "\n";
  return out;
}

void expect_golden(const std::string& file, const std::string& actual) {
  fs::path p = fs::path(MONI_TEST_DATA_DIR) / "cgroup" / file;
  const char* update = std::getenv("MONI_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    std::ofstream(p) << actual;
    return;
  }
  std::ifstream in(p);
  ASSERT_TRUE(in) << "missing golden file " << p << " (MONI_UPDATE_GOLDEN=1 writes it)";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), actual) << "golden mismatch: " << p;
}

}  // namespace cgroup_test
