// textfile: the samples of the *.prom files in one directory (cron jobs and
// scripts write them), node_textfile_mtime_seconds{file} of each file read
// and node_textfile_scrape_error, with node_exporter 1.5's rules: a file
// that cannot be opened or parsed, or that carries timestamps, is skipped
// whole and sets the error to 1; the other files are still exported. Across
// files a family keeps the type of its first file (later samples of another
// type are dropped), the first HELP, or "Metric read from <files>" without
// one; a series seen twice keeps its first value.
// Why a file was skipped is logged as a warning naming the file (like
// node_exporter's error log), but only when that file's problem first
// appears or changes, so a file that stays broken is not logged every cycle;
// its recovery is logged once at info.
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <moni/text_format.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

namespace moni::node {
namespace {

// One *.prom file read this cycle; the parser's views point into `body`.
struct PromFile {
  std::string path, body;
  text::Parser parser;
  double mtime = 0;
  bool ok = false;
};

// Reads a whole file; a directory named *.prom reads as empty, as in
// node_exporter.
bool read_file(const std::string& path, std::string& body, double& mtime) {
  body.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int e = errno;
    ::close(fd);
    errno = e;
    return false;
  }
  mtime = static_cast<double>(st.st_mtim.tv_sec);
  if (!S_ISDIR(st.st_mode)) {
    char buf[65536];
    for (;;) {
      ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int e = errno;
        ::close(fd);
        errno = e;
        return false;
      }
      if (n == 0) break;
      body.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  return true;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// The family a sample named `name` belongs to, given its file's metadata:
// a histogram's _bucket/_sum/_count and a summary's _sum/_count belong to
// the TYPE'd family, everything else is its own family (as the text
// format's parsers group them).
std::string_view family_of(std::string_view name, std::span<const text::ParsedMetadata> meta,
                           const text::ParsedMetadata*& md) {
  md = nullptr;
  for (const auto& m : meta) {
    if (m.family == name) {
      md = &m;
      return name;
    }
  }
  for (const auto& m : meta) {
    if (m.type != MetricType::Histogram && m.type != MetricType::Summary) continue;
    if (!starts_with(name, m.family)) continue;
    std::string_view suffix = name.substr(m.family.size());
    if (suffix == "_sum" || suffix == "_count" ||
        (suffix == "_bucket" && m.type == MetricType::Histogram)) {
      md = &m;
      return m.family;
    }
  }
  return name;
}

class Textfile : public SubCollector {
 public:
  explicit Textfile(const Options& o) : dir_(o.textfile_directory), log_(o.log) {}

  Result<void> collect(Batch& out) override {
    bool errored = false;
    used_ = 0;
    ++cycle_;
    if (!dir_.empty()) {
      names_.clear();
      if (!dirs_.list(dir_, [&](std::string_view n) {
            if (ends_with(n, ".prom")) names_.emplace_back(n);
          })) {
        errored = true;
        report(dir_, std::string("cannot read the directory: ") + std::strerror(errno));
      } else {
        report(dir_, {});
      }
      std::sort(names_.begin(), names_.end());
      for (const auto& n : names_) {
        if (used_ == files_.size()) files_.push_back(std::make_unique<PromFile>());
        PromFile& f = *files_[used_++];
        join(f.path, dir_, n);
        f.ok = false;
        f.parser.clear();
        if (!read_file(f.path, f.body, f.mtime)) {
          errored = true;
          report(f.path, std::string("skipped, cannot read: ") + std::strerror(errno));
          continue;
        }
        if (auto r = f.parser.parse(f.body); !r.ok()) {
          errored = true;
          // The parser's message is valid UTF-8 already (bytes as \xNN).
          report(f.path, "skipped, cannot parse: " + r.error().message);
          continue;
        }
        bool has_ts = false;
        for (size_t i = 0; i < f.parser.size() && !has_ts; ++i)
          has_ts = f.parser.sample(i).has_timestamp;
        if (has_ts) {  // node_exporter skips such a file whole
          f.parser.clear();
          errored = true;
          report(f.path, "skipped, has client-side timestamps (not supported)");
          continue;
        }
        f.ok = true;
        report(f.path, {});
      }
    }
    forget_gone();
    merge(out);

    bool any_mtime = false;
    for (size_t i = 0; i < used_; ++i) {
      const PromFile& f = *files_[i];
      if (!f.ok) continue;
      if (!any_mtime) {
        describe(out, "node_textfile_mtime_seconds", MetricType::Gauge,
                 "Unixtime mtime of textfiles successfully read.");
        any_mtime = true;
      }
      add_sample(out, "node_textfile_mtime_seconds", {{"file", f.path}}, f.mtime);
    }
    describe(out, "node_textfile_scrape_error", MetricType::Gauge,
             "1 if there was an error opening or reading a file, 0 otherwise");
    add_sample(out, "node_textfile_scrape_error", {}, errored ? 1.0 : 0.0);
    return {};
  }

 private:
  struct Family {
    MetricType type = MetricType::Unknown;
    std::string help;
    bool has_help = false;
    std::vector<std::string> files;
  };

  // Logs `path`'s problem `msg` when it is new or differs from the one
  // logged last for that path; an empty `msg` (the path was fine this
  // cycle) logs the recovery of a path whose problem was logged.
  void report(const std::string& path, std::string msg) {
    if (msg.empty()) {
      if (reported_.empty()) return;  // the usual case: nothing to look up
      auto it = reported_.find(path);
      if (it == reported_.end()) return;
      reported_.erase(it);
      log(MONI_LOG_INFO, "node: textfile: " + text::escape_for_log(path) + ": read fine again");
      return;
    }
    auto [it, fresh] = reported_.try_emplace(path);
    it->second.cycle = cycle_;
    if (!fresh && it->second.message == msg) return;
    log(MONI_LOG_WARN, "node: textfile: " + text::escape_for_log(path) + ": " + msg);
    it->second.message = std::move(msg);
  }

  // Forgets the problems of paths not seen this cycle (files removed), so
  // a file that comes back broken is logged again.
  void forget_gone() {
    std::erase_if(reported_, [&](const auto& kv) { return kv.second.cycle != cycle_; });
  }

  void log(moni_log_level level, std::string_view m) const {
    if (log_) log_(level, m);
  }

  void note_family(std::string_view name, const text::ParsedMetadata* md, const PromFile& f) {
    auto [it, fresh] = families_.try_emplace(std::string(name));
    Family& fam = it->second;
    if (fresh) {
      order_.push_back(it->first);
      fam.type = md ? md->type : MetricType::Unknown;
    }
    if (fam.files.empty() || fam.files.back() != f.path) fam.files.push_back(f.path);
    if (!fam.has_help && md && !md->help.empty()) {
      fam.help.assign(md->help);
      fam.has_help = true;
    }
  }

  void merge(Batch& out) {
    families_.clear();
    order_.clear();
    seen_.clear();
    kept_.clear();
    for (size_t i = 0; i < used_; ++i) {
      const PromFile& f = *files_[i];
      if (!f.ok) continue;
      auto meta = f.parser.metadata();
      for (const auto& m : meta) note_family(m.family, &m, f);
      for (size_t s = 0; s < f.parser.size(); ++s) {
        text::ParsedSample ps = f.parser.sample(s);
        const text::ParsedMetadata* md;
        std::string_view fam = family_of(ps.name(), meta, md);
        note_family(fam, md, f);
        MetricType type = md ? md->type : MetricType::Unknown;
        if (families_[std::string(fam)].type != type) continue;  // type clash: first file wins
        key_.clear();
        for (const auto& l : ps.labels) key_.append(l.name).append("\x01").append(l.value).append("\x02");
        if (!seen_.insert(key_).second) continue;  // duplicate series: first wins
        kept_.push_back({i, s});
      }
    }
    for (const auto& name : order_) {
      Family& fam = families_[name];
      if (!fam.has_help) {
        fam.help = "Metric read from ";
        for (size_t k = 0; k < fam.files.size(); ++k)
          fam.help.append(k ? ", " : "").append(fam.files[k]);
      }
    }
    // Families without samples (a TYPE line alone) are not exported.
    std::unordered_set<std::string> with_samples;
    for (auto [fi, si] : kept_) {
      const PromFile& f = *files_[fi];
      const text::ParsedMetadata* md;
      with_samples.emplace(family_of(f.parser.sample(si).name(), f.parser.metadata(), md));
    }
    for (const auto& name : order_) {
      if (!with_samples.count(name)) continue;
      const Family& fam = families_[name];
      describe(out, name, fam.type, fam.help);
    }
    for (auto [fi, si] : kept_) {
      text::ParsedSample ps = files_[fi]->parser.sample(si);
      out.add_sorted(ps.labels, ps.value, out.default_timestamp());
    }
  }

  struct Reported {
    std::string message;
    uint64_t cycle = 0;  // last cycle the path had this problem
  };

  std::string dir_;
  std::function<void(moni_log_level, std::string_view)> log_;
  std::unordered_map<std::string, Reported> reported_;  // path -> problem logged
  uint64_t cycle_ = 0;
  DirLister dirs_;
  std::vector<std::string> names_;
  std::vector<std::unique_ptr<PromFile>> files_;
  size_t used_ = 0;
  std::unordered_map<std::string, Family> families_;
  std::vector<std::string> order_;
  std::unordered_set<std::string> seen_;
  std::string key_;
  std::vector<std::pair<size_t, size_t>> kept_;
};

}  // namespace
std::unique_ptr<SubCollector> make_textfile(const Options& o) {
  return std::make_unique<Textfile>(o);
}
}  // namespace moni::node
