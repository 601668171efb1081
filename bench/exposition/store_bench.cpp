// What prom_exposition spends per collection cycle and per scrape, on a real
// node_exporter body (bench/exposition/node_exporter.prom): SeriesStore
// write of the cycle's batch (steady state: every series already held),
// snapshot + render of /metrics (text and OpenMetrics), and gzip of the body.
// Thread CPU time, best of many runs (the build machine is shared).
//
// Usage: expo_store_bench [body.prom]
#include <algorithm>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <moni/text_format.hpp>
#include <sstream>
#include <string>

#include "gzip.hpp"
#include "series_store.hpp"

namespace {

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

// Best per-call time of `reps` calls, over `runs` runs.
template <class F>
double per_call_us(int runs, int reps, F&& f) {
  double best = 1e9;
  for (int i = 0; i < runs; ++i) {
    double t0 = now_s();
    for (int k = 0; k < reps; ++k) f(k);
    best = std::min(best, (now_s() - t0) / reps);
  }
  return best * 1e6;
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
  moni::Batch batch;
  moni::text::ParseOptions po;
  po.default_timestamp_ms = 1700000000000;
  if (auto r = moni::text::parse(ss.str(), batch, po); !r) {
    std::fprintf(stderr, "parse: %s\n", r.error().message.c_str());
    return 1;
  }
  const size_t n = batch.view().sample_count;

  moni::expo::SeriesStore store(5 * 60 * 1000);
  int64_t now = 1700000000000;
  store.write(moni::BatchView(batch.view()), now);
  double write_us =
      per_call_us(20, 200, [&](int k) { store.write(moni::BatchView(batch.view()), now + k); });

  std::string body;
  moni::text::Renderer r;
  double render_us[2];
  for (int fmt = 0; fmt < 2; ++fmt) {
    moni::text::RenderOptions ro;
    ro.format = fmt ? moni::text::Format::OpenMetrics : moni::text::Format::Text;
    render_us[fmt] = per_call_us(20, 200, [&](int) {
      body.clear();
      store.snapshot(now, [&](std::span<const moni_sample> s, std::span<const moni_metadata> m) {
        moni_batch b{s.data(), s.size(), m.data(), m.size()};
        r.render(b, body, ro);
      });
    });
  }
  body.clear();
  store.snapshot(now, [&](std::span<const moni_sample> s, std::span<const moni_metadata> m) {
    moni_batch b{s.data(), s.size(), m.data(), m.size()};
    r.render(b, body, {});
  });
  size_t zsize = 0;
  double gzip_us = per_call_us(10, 100, [&](int) { zsize = moni::expo::gzip(body).size(); });

  std::printf("prom_exposition per cycle and per scrape, %zu series (%zu-byte text body)\n", n,
              body.size());
  std::printf("  store write (one cycle's batch)   %8.1f us  %6.1f ns/sample\n", write_us,
              write_us * 1e3 / static_cast<double>(n));
  std::printf("  snapshot + render, text 0.0.4     %8.1f us  %6.1f ns/sample\n", render_us[0],
              render_us[0] * 1e3 / static_cast<double>(n));
  std::printf("  snapshot + render, OpenMetrics    %8.1f us  %6.1f ns/sample\n", render_us[1],
              render_us[1] * 1e3 / static_cast<double>(n));
  std::printf("  gzip (level 1) of the text body   %8.1f us  -> %zu bytes\n", gzip_us, zsize);
  return 0;
}
