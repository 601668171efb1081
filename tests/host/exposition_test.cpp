// The host's own /metrics rendering (text format 0.0.4).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <moni/batch.hpp>

#include "exposition_text.hpp"

TEST(ExpositionText, GroupsFamiliesEscapesAndFormatsSpecialValues) {
  moni::Batch b;
  b.set_default_timestamp(1000);
  b.describe("lat_seconds", moni::MetricType::Histogram, "Latency.\nSecond line \\ done.");
  b.add("lat_seconds_bucket", {{"le", "0.5"}}, 3);
  b.describe("up", moni::MetricType::Gauge, "Up.");
  b.add("up", {{"job", "a\"b\\c\nd"}}, 1);
  b.add("lat_seconds_bucket", {{"le", "+Inf"}}, 4);
  b.add("lat_seconds_sum", {}, 1.25);
  b.add("lat_seconds_count", {}, 4);
  b.add("untyped_thing", {}, std::numeric_limits<double>::infinity());
  b.add("up", {{"job", "nan"}}, std::nan(""));
  b.add("up", {{"job", "nan"}}, 7);  // a series appears once
  std::string text = moni::host::render_prometheus_text(b.view());
  EXPECT_EQ(text,
            "# HELP lat_seconds Latency.\\nSecond line \\\\ done.\n"
            "# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{le=\"0.5\"} 3\n"
            "lat_seconds_bucket{le=\"+Inf\"} 4\n"
            "lat_seconds_sum 1.25\n"
            "lat_seconds_count 4\n"
            "# HELP up Up.\n"
            "# TYPE up gauge\n"
            "up{job=\"a\\\"b\\\\c\\nd\"} 1\n"
            "up{job=\"nan\"} NaN\n"
            "# TYPE untyped_thing untyped\n"
            "untyped_thing +Inf\n");
}
