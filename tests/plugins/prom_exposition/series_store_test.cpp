// SeriesStore on raw ABI batches: a series is recognised whether its label
// text is one run (as moni::Batch lays it out) or scattered (as any other
// producer of a moni_batch may pass it), and equal lengths with different
// bytes are different series.
#include "series_store.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <moni/text_format.hpp>
#include <string>
#include <vector>

namespace {

moni_str s(const std::string& x) { return {x.data(), x.size()}; }

std::vector<std::pair<std::string, double>> live(const moni::expo::SeriesStore& st) {
  std::vector<std::pair<std::string, double>> out;
  st.snapshot(1000, [&](std::span<const moni_sample> smp, std::span<const moni_metadata>) {
    for (const auto& x : smp) {
      std::string k;
      for (uint32_t i = 0; i < x.label_count; ++i)
        k.append(x.labels[i].name.ptr, x.labels[i].name.len)
            .append("=")
            .append(x.labels[i].value.ptr, x.labels[i].value.len)
            .append(";");
      out.emplace_back(k, x.value);
    }
  });
  return out;
}

}  // namespace

TEST(SeriesStore, SameSeriesWhetherLabelTextIsOneRunOrScattered) {
  moni::expo::SeriesStore st(60'000);
  // One run: "__name__" "up" "job" "a" back to back.
  std::string run = "__name__upjoba";
  moni_label l1[2] = {{{run.data(), 8}, {run.data() + 8, 2}},
                      {{run.data() + 10, 3}, {run.data() + 13, 1}}};
  moni_sample a{l1, 2, 1.0, 100};
  moni_batch b1{&a, 1, nullptr, 0};
  st.write(moni::BatchView(b1), 1000);
  st.write(moni::BatchView(b1), 1000);  // predicted path

  // Scattered: the same labels in separate strings.
  std::string n0 = "__name__", v0 = "up", n1 = "job", v1 = "a";
  moni_label l2[2] = {{s(n0), s(v0)}, {s(n1), s(v1)}};
  moni_sample b{l2, 2, 2.0, 200};
  moni_batch b2{&b, 1, nullptr, 0};
  st.write(moni::BatchView(b2), 1000);
  auto got = live(st);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "__name__=up;job=a;");
  EXPECT_EQ(got[0].second, 2.0);

  // Same lengths, one byte different, in either layout: a new series.
  std::string v1b = "b";
  moni_label l3[2] = {{s(n0), s(v0)}, {s(n1), s(v1b)}};
  moni_sample c{l3, 2, 3.0, 300};
  moni_batch b3{&c, 1, nullptr, 0};
  st.write(moni::BatchView(b3), 1000);
  std::string run2 = "__name__upjobc";
  moni_label l4[2] = {{{run2.data(), 8}, {run2.data() + 8, 2}},
                      {{run2.data() + 10, 3}, {run2.data() + 13, 1}}};
  moni_sample d{l4, 2, 4.0, 400};
  moni_batch b4{&d, 1, nullptr, 0};
  st.write(moni::BatchView(b4), 1000);
  st.write(moni::BatchView(b1), 1000);  // back to job="a" in one run
  got = live(st);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].first, "__name__=up;job=a;");
  EXPECT_EQ(got[0].second, 2.0);  // the older sample (ts 100 < 200) is ignored
  EXPECT_EQ(got[1].first, "__name__=up;job=b;");
  EXPECT_EQ(got[1].second, 3.0);
  EXPECT_EQ(got[2].first, "__name__=up;job=c;");
  EXPECT_EQ(got[2].second, 4.0);
  EXPECT_EQ(st.size(), 3u);
}

// The layout key given to snapshot()'s callback stays while only values
// change, and changes when a series comes, goes, or metadata changes.
TEST(SeriesStore, LayoutKeyChangesOnlyWithTheSeriesOrMetadata) {
  moni::expo::SeriesStore st(60'000);
  auto key = [&](int64_t now = 1000) {
    uint64_t k = 0;
    st.snapshot(now, [&](std::span<const moni_sample>, std::span<const moni_metadata>,
                         uint64_t layout) { k = layout; });
    return k;
  };
  moni::Batch b;
  b.add("up", {{"job", "a"}}, 1);
  b.add("up", {{"job", "b"}}, 1);
  b.describe("up", moni::MetricType::Gauge, "Up.");
  st.write(moni::BatchView(b.view()), 1000);
  uint64_t k1 = key();
  EXPECT_NE(k1, 0u);
  moni::Batch v;  // new values, same series
  v.add("up", {{"job", "a"}}, 0);
  v.add("up", {{"job", "b"}}, 0);
  v.describe("up", moni::MetricType::Gauge, "Up.");
  st.write(moni::BatchView(v.view()), 1000);
  EXPECT_EQ(key(), k1);
  moni::Batch n;  // one more series
  n.add("up", {{"job", "a"}}, 0);
  n.add("up", {{"job", "b"}}, 0);
  n.add("up", {{"job", "c"}}, 0);
  n.describe("up", moni::MetricType::Gauge, "Up.");
  st.write(moni::BatchView(n.view()), 1000);
  uint64_t k2 = key();
  EXPECT_NE(k2, k1);
  moni::Batch h;  // new help text
  h.add("up", {{"job", "a"}}, 0);
  h.describe("up", moni::MetricType::Gauge, "Up or not.");
  st.write(moni::BatchView(h.view()), 1000);
  uint64_t k3 = key();
  EXPECT_NE(k3, k2);
  moni::Batch g;  // a series goes away (staleness marker)
  g.add("up", {{"job", "c"}}, moni::stale_nan());
  st.write(moni::BatchView(g.view()), 1000);
  EXPECT_NE(key(), k3);
  // Series left out as stale at read time: no promise.
  EXPECT_EQ(key(1000 + 60'001), 0u);
}

// /metrics renders a snapshot with its layout key: a renderer that saw the
// layout copies each family's header and each sample's name and labels from
// the text it wrote the first time and formats only the values. Whatever
// the values become (integers, fractions, NaN, infinities, a staleness
// marker), with labels that need escaping, in both formats and with
// timestamps, the text is what a fresh render of the same snapshot gives.
TEST(SeriesStore, RendersOfOneLayoutMatchFreshRenders) {
  moni::expo::SeriesStore st(60'000);
  auto batch = [](double x) {
    moni::Batch b;
    b.describe("req_total", moni::MetricType::Counter, "Requests \\ \"served\"\nso far.");
    b.add("req_total", {{"path", "/a\"b\\c\nd"}, {"code", "200"}}, x);
    b.add("req_total", {{"path", "/"}, {"code", "500"}}, x * 3);
    b.describe("lat_seconds", moni::MetricType::Histogram, "Latency.");
    b.add("lat_seconds_bucket", {{"le", "0.1"}}, x);
    b.add("lat_seconds_bucket", {{"le", "+Inf"}}, x + 1);
    b.add("lat_seconds_sum", {}, x / 7);
    b.add("lat_seconds_count", {}, x + 1);
    b.add("untyped_thing", {{"a", ""}}, -x);
    return b;
  };
  namespace t = moni::text;
  for (t::Format f : {t::Format::Text, t::Format::OpenMetrics}) {
    for (bool ts : {false, true}) {
      t::Renderer warm;
      std::vector<moni_sample> scratch;
      int64_t now = 1000;
      for (double x : {1.0, 2.5, 1e21, -0.0, std::nan(""), 1.0 / 0.0, 7.0}) {
        moni::Batch b = batch(x);
        st.write(moni::BatchView(b.view()), now);
        std::string a, fresh;
        uint64_t seen = 0;
        st.snapshot(now, scratch,
                    [&](std::span<const moni_sample> smp, std::span<const moni_metadata> m,
                        uint64_t layout) {
                      seen = layout;
                      moni_batch mb{smp.data(), smp.size(), m.data(), m.size()};
                      t::RenderOptions o;
                      o.format = f;
                      o.timestamps = ts;
                      o.layout_key = layout;
                      warm.render(mb, a, o);
                      o.layout_key = 0;
                      t::render(mb, fresh, o);
                    });
        EXPECT_NE(seen, 0u);
        EXPECT_EQ(a, fresh) << "value " << x;
        EXPECT_NE(a.find("path=\"/a\\\"b\\\\c\\nd\""), std::string::npos) << a;
        now += 10;
      }
      // A staleness marker: the series is gone from the store (a new
      // layout), and the next render of the others still matches.
      moni::Batch gone;
      gone.add("untyped_thing", {{"a", ""}}, moni::stale_nan());
      st.write(moni::BatchView(gone.view()), now);
      std::string a, fresh;
      st.snapshot(
          now, scratch,
          [&](std::span<const moni_sample> smp, std::span<const moni_metadata> m, uint64_t layout) {
            moni_batch mb{smp.data(), smp.size(), m.data(), m.size()};
            t::RenderOptions o;
            o.format = f;
            o.layout_key = layout;
            warm.render(mb, a, o);
            o.layout_key = 0;
            t::render(mb, fresh, o);
          });
      EXPECT_EQ(a, fresh);
      EXPECT_EQ(a.find("untyped_thing"), std::string::npos) << a;
      moni::Batch back = batch(1);  // for the next round
      st.write(moni::BatchView(back.view()), now);
    }
  }
}
