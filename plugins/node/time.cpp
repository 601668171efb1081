// time: node_time_seconds, node_time_zone_offset_seconds and the clock
// sources from <sysfs>/devices/system/clocksource.
#include "sub_collector.hpp"
#include "text_parse.hpp"

#include <ctime>

namespace moni::node {
namespace {

class Time : public SubCollector {
 public:
  explicit Time(const Options& o) {
    join(dir_, o.sysfs, "devices/system/clocksource");
    ::tzset();  // once: localtime_r() does not re-read the zone
  }
  Result<void> collect(Batch& out) override {
    struct timespec ts;
    ::clock_gettime(CLOCK_REALTIME, &ts);
    describe(out, "node_time_seconds", MetricType::Gauge,
                 "System time in seconds since epoch (1970).");
    add_sample(out, "node_time_seconds", {}, static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9);
    struct tm tm;
    ::localtime_r(&ts.tv_sec, &tm);
    describe(out, "node_time_zone_offset_seconds", MetricType::Gauge,
                 "System time zone offset in seconds.");
    add_sample(out, "node_time_zone_offset_seconds", {{"time_zone", tm.tm_zone ? tm.tm_zone : ""}},
            static_cast<double>(tm.tm_gmtoff));

    // Clock sources: missing directory means none (containers, other OSes).
    // The directory (clocksource0 on Linux) is listed again only when its
    // link count changed, or after a read failed; an fstat of the kept
    // descriptor otherwise.
    unsigned long links = dir_links(dirs_.fd());
    if (links == 0 || links != listed_links_) {
      listed_links_ = 0;
      devices_used_ = 0;
      bool listed = dirs_.list(dir_, [&](std::string_view name) {
        if (!starts_with(name, "clocksource")) return;
        if (devices_used_ == devices_.size()) devices_.emplace_back();
        devices_[devices_used_++].assign(name.substr(11));
      }, true);
      if (!listed) return {};
      listed_links_ = links;  // 0 (not open before the first listing): list again
    }
    for (int pass = 0; pass < 2; ++pass) {
      std::string_view family = pass == 0 ? "node_time_clocksource_available_info"
                                          : "node_time_clocksource_current_info";
      bool described = false;
      for (size_t d = 0; d < devices_used_; ++d) {
        join(path_, dir_, "clocksource");
        path_.append(devices_[d]).append(pass == 0 ? "/available_clocksource"
                                                   : "/current_clocksource");
        std::string_view text;
        if (!reader_.read(path_, text, true)) {
          listed_links_ = 0;
          return io_error("time", path_);
        }
        for (std::string_view cs = next_field(text); !cs.empty(); cs = next_field(text)) {
          if (!described) {
            describe(out, family, MetricType::Gauge,
                         pass == 0 ? "Available clocksources read from "
                                     "'/sys/devices/system/clocksource'."
                                   : "Current clocksource read from "
                                     "'/sys/devices/system/clocksource'.");
            described = true;
          }
          add_sample(out, family, {{"device", devices_[d]}, {"clocksource", cs}}, 1.0);
        }
      }
    }
    return {};
  }

 private:
  std::string dir_;
  DirLister dirs_;
  std::vector<std::string> devices_;
  size_t devices_used_ = 0;
  unsigned long listed_links_ = 0;  // the directory's link count when listed; 0: list again
};

}  // namespace
std::unique_ptr<SubCollector> make_time(const Options& o) { return std::make_unique<Time>(o); }
}  // namespace moni::node
