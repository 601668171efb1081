// Throughput of moni::text: parse MB/s and samples/s on a large real
// exposition body (node_exporter output recorded on a build machine,
// bench/exposition/node_exporter.prom, replicated to ~64 MB), and render
// time for 100,000 series (text and OpenMetrics). Goals (issue 6): parse
// >= 300 MB/s, render 100k series < 30 ms on one core.
//
// Usage: exposition_bench [node_exporter.prom]
// The peer figure for comparison: promtool offers no parse benchmark, so
// none is printed here (see the final report for the Go parser's published
// numbers, not measured on this machine).
#include <moni/text_format.hpp>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

// Thread CPU time: the build machine is shared (load ~18 on 2 cores), so
// wall time would measure the neighbours.
double now_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

template <class F>
double best_of(int runs, F&& f) {
  double best = 1e9;
  for (int i = 0; i < runs; ++i) {
    double t0 = now_s();
    f();
    best = std::min(best, now_s() - t0);
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path = argc > 1 ? argv[1] : MONI_BENCH_DIR "/node_exporter.prom";
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    std::fprintf(stderr, "cannot read %s\n", path.c_str());
    return 1;
  }
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string one = ss.str();
  std::string body;
  while (body.size() < (64u << 20)) body += one;

  moni::text::Parser p;
  moni::text::ParseOptions o;
  o.default_timestamp_ms = 1700000000000;
  size_t samples = 0;
  double t = best_of(5, [&] {
    auto r = p.parse(body, o);
    if (!r) {
      std::fprintf(stderr, "parse failed: %s\n", r.error().message.c_str());
      std::exit(1);
    }
    samples = r->samples;
  });
  std::printf("parse (Parser, text 0.0.4): %.1f MB in %.1f ms: %.0f MB/s, %.2f M samples/s (%zu samples)\n",
              body.size() / 1e6, t * 1e3, body.size() / 1e6 / t, samples / 1e6 / t, samples);

  moni::Batch batch;
  t = best_of(3, [&] {
    batch.clear();
    auto r = moni::text::parse(body, batch, o);
    if (!r) std::exit(1);
  });
  std::printf("parse into a moni::Batch:   %.0f MB/s, %.2f M samples/s\n", body.size() / 1e6 / t,
              samples / 1e6 / t);

  o.duplicates = moni::text::Duplicates::DropLater;
  std::string unique_body = one;
  t = best_of(20, [&] { (void)p.parse(unique_body, o); });
  std::printf("parse with duplicate check (one node_exporter body, %zu bytes): %.0f MB/s\n",
              unique_body.size(), unique_body.size() / 1e6 / t);

  // 100,000 series in 1,000 families of 100 series with 4 labels each.
  moni::Batch b;
  b.set_default_timestamp(1700000000000);
  for (int fam = 0; fam < 1000; ++fam) {
    std::string name = "bench_family_" + std::to_string(fam) + (fam % 2 ? "_total" : "_bytes");
    b.describe(name, fam % 2 ? moni::MetricType::Counter : moni::MetricType::Gauge,
               "Help text of a benchmark family.");
    for (int s = 0; s < 100; ++s) {
      std::string i = std::to_string(s);
      b.add(name, {{"instance", "host-" + std::to_string(fam % 17) + ":9100"}, {"job", "node"},
                   {"device", "dev" + i}, {"mode", s % 3 ? "user" : "system"}},
            fam * 1000.0 + s * 0.25);
    }
  }
  const moni_batch& view = b.view();
  moni::text::Renderer r;
  std::string out;
  for (auto fmt : {moni::text::Format::Text, moni::text::Format::OpenMetrics}) {
    moni::text::RenderOptions ro;
    ro.format = fmt;
    t = best_of(10, [&] {
      out.clear();
      r.render(view, out, ro);
    });
    std::printf("render 100,000 series (%s): %.2f ms, %.1f MB\n",
                fmt == moni::text::Format::Text ? "text 0.0.4" : "OpenMetrics", t * 1e3, out.size() / 1e6);
  }
  return 0;
}
