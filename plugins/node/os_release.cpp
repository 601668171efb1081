// os: node_os_info and node_os_version from <rootfs>/etc/os-release (or
// <rootfs>/usr/lib/os-release).
#include "change_watch.hpp"
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <array>
#include <sys/stat.h>

namespace moni::node {
namespace {

// Label name and os-release key, sorted by label name.
constexpr std::array<std::pair<std::string_view, std::string_view>, 12> kKeys = {{
    {"build_id", "BUILD_ID"},
    {"id", "ID"},
    {"id_like", "ID_LIKE"},
    {"image_id", "IMAGE_ID"},
    {"image_version", "IMAGE_VERSION"},
    {"name", "NAME"},
    {"pretty_name", "PRETTY_NAME"},
    {"variant", "VARIANT"},
    {"variant_id", "VARIANT_ID"},
    {"version", "VERSION"},
    {"version_codename", "VERSION_CODENAME"},
    {"version_id", "VERSION_ID"},
}};

// Shell-style unquoting of an os-release value into `out`.
void unquote(std::string_view v, std::string& out) {
  out.clear();
  char quote = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quote == 0 && (c == '"' || c == '\'')) quote = c;
    else if (quote != 0 && c == quote) quote = 0;
    else if (c == '\\' && quote != '\'' && i + 1 < v.size()) out += v[++i];
    else out += c;
  }
}

class OsRelease : public SubCollector {
 public:
  explicit OsRelease(const Options& o)
      : etc_(joined(o.rootfs, "etc/os-release")),
        usr_(joined(o.rootfs, "usr/lib/os-release")),
        watch_({etc_, usr_}) {}
  Result<void> collect(Batch& out) override {
    // inotify says when the files or their directories saw any change;
    // only then are they stat()ed (a path walk each) as before.
    if (!(parsed_ && watch_.quiet()) && !unchanged()) {
      watch_.rearm();  // a replaced file or retargeted link: watch the new ones
      auto r = parse();
      if (!r) return r;
    }
    LabelRef labels[kKeys.size()];
    for (size_t i = 0; i < kKeys.size(); ++i) labels[i] = {kKeys[i].first, values_[i]};
    describe(out, "node_os_info", MetricType::Gauge,
                 "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, "
                 "image_version, name, pretty_name, variant, variant_id, version, "
                 "version_codename, version_id.");
    add_sample(out, "node_os_info", std::span<const LabelRef>(labels, kKeys.size()), 1.0);
    describe(out, "node_os_version", MetricType::Gauge,
                 "Metric containing the major.minor part of the OS version.");
    add_sample(out, "node_os_version", {{"id", values_[1]}, {"id_like", values_[2]}, {"name", values_[5]}},
            version_number(values_[11]));
    return {};
  }

 private:
  // The file is parsed again only when it was replaced or modified (a
  // stat() instead of open, read, close and parse every cycle).
  bool unchanged() {
    struct stat st;
    if (::stat(etc_.c_str(), &st) != 0 && ::stat(usr_.c_str(), &st) != 0) {
      parsed_ = false;
      return false;
    }
    FileId id{st.st_dev, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
    bool same = parsed_ && id == id_;
    id_ = id;
    return same;
  }

  Result<void> parse() {
    parsed_ = false;
    std::string_view text;
    if (!reader_.read(etc_, text) && !reader_.read(usr_, text))
      return io_error("os: no os-release file found; last tried", usr_);
    for (auto& v : values_) v.clear();
    while (!text.empty()) {
      std::string_view line = trim(next_line(text));
      size_t eq = line.find('=');
      if (line.empty() || line.front() == '#' || eq == std::string_view::npos) continue;
      std::string_view key = line.substr(0, eq);
      for (size_t i = 0; i < kKeys.size(); ++i)
        if (kKeys[i].second == key) unquote(line.substr(eq + 1), values_[i]);
    }
    parsed_ = true;
    return {};
  }

  struct FileId {
    dev_t dev;
    ino_t ino;
    off_t size;
    time_t sec;
    long nsec;
    bool operator==(const FileId&) const = default;
  };
  FileId id_{};
  bool parsed_ = false;

  // The leading "major[.minor]" of VERSION_ID as a number; 0 when none.
  static double version_number(std::string_view v) {
    size_t i = 0;
    while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    if (i == 0) return 0;
    if (i < v.size() && v[i] == '.') {
      ++i;
      while (i < v.size() && v[i] >= '0' && v[i] <= '9') ++i;
    }
    double d = 0;
    parse_double(v.substr(0, i), d);
    return d;
  }
  static std::string joined(std::string_view root, std::string_view rel) {
    std::string s;
    join(s, root, rel);
    return s;
  }
  std::string etc_, usr_;
  ChangeWatch watch_;
  std::array<std::string, kKeys.size()> values_;
};

}  // namespace
std::unique_ptr<SubCollector> make_os(const Options& o) { return std::make_unique<OsRelease>(o); }
}  // namespace moni::node
