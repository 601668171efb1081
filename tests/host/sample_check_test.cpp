// The host's check of emitted samples (sample_check.cpp): its word-at-a-time
// name and UTF-8 checks against the SDK's byte-at-a-time ones on every
// 1- and 2-byte string and on random strings around the character classes'
// edges, and BatchCheck's filtering of a batch.
#include "sample_check.hpp"

#include <gtest/gtest.h>

#include <moni/text_format.hpp>
#include <random>
#include <string>
#include <vector>

using namespace moni::host;

namespace {

// Bytes at the edges of [a-zA-Z0-9_:] (and those that land there with
// 0x20 set, as the word check lowercases), controls, DEL and non-ASCII.
const std::string kEdgeBytes =
    std::string("/09:;@AZ[^_`az{~ -\x7f\x10\x1a\x01\x3b\x41\x5a\x60") +
    std::string("\x00\x80\xbf\xc0\xc2\xdf\xe0\xed\xef\xf0\xf4\xf5\xff\x9f\xa0", 15);

std::string random_string(std::mt19937& rng, size_t len) {
  std::string s(len, 'a');
  std::uniform_int_distribution<int> pick(0, 3);
  std::uniform_int_distribution<int> edge(0, static_cast<int>(kEdgeBytes.size()) - 1);
  std::uniform_int_distribution<int> any(0, 255);
  const std::string plain = "abcxyzABCXYZ0189_:";
  std::uniform_int_distribution<int> pl(0, static_cast<int>(plain.size()) - 1);
  for (char& c : s) {
    int k = pick(rng);
    c = k == 0   ? kEdgeBytes[static_cast<size_t>(edge(rng))]
        : k == 1 ? static_cast<char>(any(rng))
                 : plain[static_cast<size_t>(pl(rng))];
  }
  return s;
}

void expect_same(const std::string& s) {
  // Copied to a buffer of exactly its size, so ASan reports a read past it.
  std::vector<char> buf(s.begin(), s.end());
  std::string_view v(buf.data(), buf.size());
  ASSERT_EQ(valid_metric_name(v), moni::text::valid_metric_name(s)) << quote_for_log(s);
  ASSERT_EQ(valid_label_name(v), moni::text::valid_label_name(s)) << quote_for_log(s);
  ASSERT_EQ(valid_utf8(v), moni::text::detail::valid_utf8(s)) << quote_for_log(s);
}

moni_label L(std::string_view n, std::string_view v) {
  return {{n.data(), n.size()}, {v.data(), v.size()}};
}

}  // namespace

TEST(SampleCheck, AgreesWithTheSdkOnEveryShortString) {
  expect_same("");
  for (int a = 0; a < 256; ++a) {
    expect_same(std::string(1, static_cast<char>(a)));
    for (int b = 0; b < 256; ++b)
      expect_same(std::string{static_cast<char>(a), static_cast<char>(b)});
  }
}

TEST(SampleCheck, AgreesWithTheSdkOnRandomStrings) {
  std::mt19937 rng(20261126);
  for (int i = 0; i < 200000; ++i) {
    size_t len = static_cast<size_t>(i % 41);
    std::string s = random_string(rng, len);
    expect_same(s);
    // Mostly-valid names with one byte changed, at every position.
    std::string name = "node_" + std::string(len, 'x');
    name[static_cast<size_t>(i) % name.size()] =
        kEdgeBytes[static_cast<size_t>(i) % kEdgeBytes.size()];
    expect_same(name);
  }
}

TEST(SampleCheck, KnownNamesAndUtf8) {
  EXPECT_TRUE(valid_metric_name("node_cpu_seconds_total"));
  EXPECT_TRUE(valid_metric_name("job:rate5m:sum"));
  EXPECT_TRUE(valid_metric_name(":a"));
  EXPECT_FALSE(valid_metric_name("0abc"));
  EXPECT_FALSE(valid_metric_name("node-cpu"));
  EXPECT_FALSE(valid_metric_name(""));
  EXPECT_FALSE(valid_metric_name("caf\xc3\xa9_total"));
  EXPECT_TRUE(valid_label_name("__reserved"));
  EXPECT_TRUE(valid_label_name("_"));
  EXPECT_FALSE(valid_label_name("a:b"));
  EXPECT_FALSE(valid_label_name("9"));
  EXPECT_FALSE(valid_label_name("a b"));
  EXPECT_TRUE(
      valid_utf8("Gr\xc3\xbc\xc3\x9f"
                 "e \xe2\x9c\x93 \xf0\x9f\x98\x80"));
  EXPECT_TRUE(valid_utf8(std::string_view("nul\0inside", 10)));  // valid UTF-8, as in Go
  EXPECT_TRUE(valid_utf8("\xf4\x8f\xbf\xbf"));                   // U+10FFFF
  EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));                  // above U+10FFFF
  EXPECT_FALSE(valid_utf8("\xc0\xaf"));                          // overlong '/'
  EXPECT_FALSE(valid_utf8("\xe0\x80\xaf"));                      // overlong '/'
  EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));                      // surrogate U+D800
  EXPECT_FALSE(valid_utf8("/mnt/\xff\xfe"));
  EXPECT_FALSE(valid_utf8("abcdefgh\xe2\x9c"));  // truncated at the end
  EXPECT_EQ(quote_for_log("a\"b\\c\xff\n"), "\"a\\\"b\\\\c\\xff\\x0a\"");
  EXPECT_EQ(quote_for_log("abcdef", 3), "\"abc\"...");
}

TEST(SampleCheck, SamplesNeedOneValidNameAndValidLabels) {
  auto check = [](std::vector<moni_label> l) {
    moni_sample s{l.data(), static_cast<uint32_t>(l.size()), 1.0, 0};
    return check_sample(s);
  };
  EXPECT_EQ(check({L("__name__", "up"), L("job", "x")}), DropReason::None);
  EXPECT_EQ(check({L("Zone", "a"), L("__name__", "up"), L("__x", "y"), L("a", "")}),
            DropReason::None);
  EXPECT_EQ(check({L("job", "x")}), DropReason::InvalidName);  // no name
  EXPECT_EQ(check({}), DropReason::InvalidName);
  EXPECT_EQ(check({L("__name__", "")}), DropReason::InvalidName);
  EXPECT_EQ(check({L("__name__", "a"), L("__name__", "b")}), DropReason::InvalidName);  // two
  EXPECT_EQ(check({L("__name__", "a-b")}), DropReason::InvalidName);
  EXPECT_EQ(check({L("__name__", "up"), L("", "x")}), DropReason::InvalidName);
  EXPECT_EQ(check({L("__name__", "up"), L("dev-ice", "x")}), DropReason::InvalidName);
  EXPECT_EQ(check({L("__name__", "up"), L("path", "/mnt/\xff")}), DropReason::InvalidUtf8);
  EXPECT_EQ(check({L("job", "x"), L("__name__", "up")}), DropReason::None);  // sorted by BatchCheck
}

TEST(SampleCheck, UnsortedLabelsAreSortedAndRepeatedNamesDropped) {
  std::vector<std::vector<moni_label>> labels = {
      {L("__name__", "ok"), L("a", "1"), L("b", "2")},
      {L("mode", "idle"), L("cpu", "0"), L("__name__", "unsorted")},
      {L("__name__", "dup"), L("x", "1"), L("x", "2")},
      {L("x", "1"), L("__name__", "dup_unsorted"), L("x", "2")},
      {L("__name__", "prefix"), L("ab", "1"), L("a", "2")},  // "a" < "ab"
  };
  std::vector<moni_sample> samples;
  for (auto& l : labels) samples.push_back({l.data(), static_cast<uint32_t>(l.size()), 1.0, 5});
  moni_batch in{samples.data(), samples.size(), nullptr, 0};
  BatchCheck c;
  const moni_batch& out = c.check(in);
  ASSERT_EQ(out.sample_count, 3u);
  EXPECT_EQ(c.dropped[static_cast<size_t>(DropReason::InvalidName)], 2u);
  EXPECT_EQ(c.samples_sorted, 2u);
  auto names = [](const moni_sample& s) {
    std::string n;
    for (uint32_t i = 0; i < s.label_count; ++i) n += std::string(moni::sv(s.labels[i].name)) + ";";
    return n;
  };
  EXPECT_EQ(names(out.samples[0]), "__name__;a;b;");
  EXPECT_EQ(names(out.samples[1]), "__name__;cpu;mode;");
  EXPECT_EQ(moni::sv(out.samples[1].labels[1].value), "0");
  EXPECT_EQ(names(out.samples[2]), "__name__;a;ab;");
  EXPECT_EQ(moni::sv(out.samples[2].labels[1].value), "2");
  EXPECT_EQ(out.samples[0].labels, labels[0].data());  // a sorted sample keeps its labels
  EXPECT_EQ(c.example,
            "metric \"unsorted\": labels not sorted by name (\"mode,cpu,__name__\"), sorted");
  moni_batch dup{samples.data() + 2, 1, nullptr, 0};
  c.check(dup);
  EXPECT_EQ(c.example, "metric \"dup\": label name \"x\" twice");
}

TEST(SampleCheck, BatchCheckKeepsTheValidPart) {
  std::vector<std::vector<moni_label>> labels = {
      {L("__name__", "good_one"), L("path", "/")},
      {L("__name__", "bad_utf8"), L("path", "/mnt/\xff\xfe")},
      {L("__name__", "bad-name")},
      {L("__name__", "good_two"), L("path",
                                    "/mnt/Gr\xc3\xbc\xc3\x9f"
                                    "e")},
      {L("__name__", "bad_label"), L("a:b", "x")},
  };
  std::vector<moni_sample> samples;
  for (auto& l : labels) samples.push_back({l.data(), static_cast<uint32_t>(l.size()), 1.0, 5});
  std::vector<moni_metadata> meta = {
      {{"good_one", 8}, MONI_METRIC_GAUGE, {"fine", 4}, {"", 0}},
      {{"bad-family", 10}, MONI_METRIC_GAUGE, {"x", 1}, {"", 0}},
      {{"good_two", 8}, MONI_METRIC_GAUGE, {"caf\xe9", 4}, {"s e", 3}},
  };
  moni_batch in{samples.data(), samples.size(), meta.data(), meta.size()};
  BatchCheck c;
  const moni_batch& out = c.check(in);
  ASSERT_NE(&out, &in);
  ASSERT_EQ(out.sample_count, 2u);
  EXPECT_EQ(moni::sv(out.samples[0].labels[0].value), "good_one");
  EXPECT_EQ(moni::sv(out.samples[1].labels[0].value), "good_two");
  EXPECT_EQ(c.dropped[static_cast<size_t>(DropReason::InvalidUtf8)], 1u);
  EXPECT_EQ(c.dropped[static_cast<size_t>(DropReason::InvalidName)], 2u);
  EXPECT_EQ(c.dropped_total(), 3u);
  ASSERT_EQ(out.metadata_count, 2u);  // bad-family left out
  EXPECT_EQ(moni::sv(out.metadata[0].help), "fine");
  EXPECT_EQ(moni::sv(out.metadata[1].family), "good_two");
  EXPECT_EQ(out.metadata[1].help.len, 0u);  // not UTF-8: emptied
  EXPECT_EQ(out.metadata[1].unit.len, 0u);  // no name: emptied
  EXPECT_EQ(c.metadata_fixed, 2u);
  EXPECT_EQ(c.example,
            "metric \"bad_utf8\": label \"path\" has a value that is not valid UTF-8: "
            "\"/mnt/\\xff\\xfe\"");

  // A valid batch passes as it is (no copy), and the counts start over.
  moni_batch good{samples.data(), 1, meta.data(), 1};
  EXPECT_EQ(&c.check(good), &good);
  EXPECT_EQ(c.dropped_total(), 0u);
  EXPECT_TRUE(c.example.empty());
  // Only metadata to repair: the samples are the caller's, untouched.
  moni_batch meta_only{samples.data(), 1, meta.data() + 2, 1};
  const moni_batch& m = c.check(meta_only);
  EXPECT_EQ(m.samples, samples.data());
  EXPECT_EQ(m.sample_count, 1u);
  EXPECT_EQ(c.metadata_fixed, 1u);
  EXPECT_NE(c.example.find("HELP of \"good_two\" is not valid UTF-8"), std::string::npos)
      << c.example;
}
