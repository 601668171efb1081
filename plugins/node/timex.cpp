// timex: the kernel clock discipline state from adjtimex(2) as node_exporter
// 1.5's node_timex_* (sync status, offset, errors, PPS counters).
#include "sub_collector.hpp"

#include <sys/timex.h>

namespace moni::node {
namespace {

// adjtimex's frequencies are parts per million with a 16-bit fraction.
constexpr double kPpm16Frac = 1000000.0 * 65536.0;

class Timex : public SubCollector {
 public:
  Result<void> collect(Batch& out) override {
    struct timex tx {};
    int state = ::adjtimex(&tx);
    if (state < 0) return io_error("timex", "adjtimex");
    // Offset and PPS jitter are in ns with STA_NANO, in us otherwise.
    double divisor = (tx.status & STA_NANO) ? 1e9 : 1e6;
    g(out, "node_timex_sync_status", "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
      state == TIME_ERROR ? 0.0 : 1.0);
    g(out, "node_timex_offset_seconds",
      "Time offset in between local system and reference clock.", tx.offset / divisor);
    g(out, "node_timex_frequency_adjustment_ratio", "Local clock frequency adjustment.",
      1.0 + static_cast<double>(tx.freq) / kPpm16Frac);
    g(out, "node_timex_maxerror_seconds", "Maximum error in seconds.", tx.maxerror / 1e6);
    g(out, "node_timex_estimated_error_seconds", "Estimated error in seconds.",
      tx.esterror / 1e6);
    g(out, "node_timex_status", "Value of the status array bits.", tx.status);
    g(out, "node_timex_loop_time_constant", "Phase-locked loop time constant.", tx.constant);
    g(out, "node_timex_tick_seconds", "Seconds between clock ticks.", tx.tick / 1e6);
    g(out, "node_timex_pps_frequency_hertz", "Pulse per second frequency.",
      static_cast<double>(tx.ppsfreq) / kPpm16Frac);
    g(out, "node_timex_pps_jitter_seconds", "Pulse per second jitter.", tx.jitter / divisor);
    g(out, "node_timex_pps_shift_seconds", "Pulse per second interval duration.", tx.shift);
    g(out, "node_timex_pps_stability_hertz",
      "Pulse per second stability, average of recent frequency changes.",
      static_cast<double>(tx.stabil) / kPpm16Frac);
    c(out, "node_timex_pps_jitter_total",
      "Pulse per second count of jitter limit exceeded events.", tx.jitcnt);
    c(out, "node_timex_pps_calibration_total",
      "Pulse per second count of calibration intervals.", tx.calcnt);
    c(out, "node_timex_pps_error_total", "Pulse per second count of calibration errors.",
      tx.errcnt);
    c(out, "node_timex_pps_stability_exceeded_total",
      "Pulse per second count of stability limit exceeded events.", tx.stbcnt);
    g(out, "node_timex_tai_offset_seconds", "International Atomic Time (TAI) offset.", tx.tai);
    return {};
  }

 private:
  static void g(Batch& out, std::string_view name, std::string_view help, double v) {
    describe(out, name, MetricType::Gauge, help);
    add_sample(out, name, {}, v);
  }
  static void c(Batch& out, std::string_view name, std::string_view help, double v) {
    describe(out, name, MetricType::Counter, help);
    add_sample(out, name, {}, v);
  }
};

}  // namespace
std::unique_ptr<SubCollector> make_timex(const Options&) { return std::make_unique<Timex>(); }
}  // namespace moni::node
