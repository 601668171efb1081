// Chunk codec: bit-exact round trips of random and adversarial series.
#include "chunk_codec.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <map>
#include <moni/sample.hpp>
#include <random>
#include <set>

#include "head_pool.hpp"

using namespace moni::tsdb;

namespace {

uint64_t bits(double v) { return std::bit_cast<uint64_t>(v); }
constexpr int64_t kBase = 1700000000000;

// Encodes incrementally and with encode_chunk_best; both must decode to the
// exact input. Returns the incremental chunk's size.
size_t round_trip(const std::vector<int64_t>& ts, const std::vector<double>& vs) {
  ChunkEncoder enc;
  for (size_t i = 0; i < ts.size(); ++i) enc.append(ts[i], vs[i]);
  std::string blob;
  enc.serialize(blob);
  std::vector<int64_t> dt;
  std::vector<double> dv;
  EXPECT_TRUE(decode_chunk(ts[0], blob, dt, dv));
  EXPECT_EQ(dt, ts);
  EXPECT_EQ(dv.size(), vs.size());
  for (size_t i = 0; i < vs.size() && i < dv.size(); ++i)
    EXPECT_EQ(bits(dv[i]), bits(vs[i])) << "sample " << i;
  ChunkInfo ci;
  EXPECT_TRUE(chunk_info(ts[0], blob, ci));
  EXPECT_EQ(ci.count, ts.size());
  EXPECT_EQ(ci.maxt, ts.back());

  std::string best, ref, pairs;
  encode_chunk_best(ts.data(), vs.data(), ts.size(), best);
  EXPECT_LE(best.size(), blob.size());
  // The fast encoder writes the reference encoder's bytes, from arrays and
  // from (t, v) pairs.
  encode_chunk_reference(ts.data(), vs.data(), ts.size(), ref);
  EXPECT_EQ(best, ref);
  std::vector<HeadSample> hs;
  for (size_t i = 0; i < ts.size(); ++i) hs.push_back({ts[i], vs[i]});
  encode_chunk_best(hs.data(), hs.size(), pairs);
  EXPECT_EQ(pairs, ref);
  dt.clear();
  dv.clear();
  EXPECT_TRUE(decode_chunk(ts[0], best, dt, dv));
  EXPECT_EQ(dt, ts);
  for (size_t i = 0; i < vs.size() && i < dv.size(); ++i) EXPECT_EQ(bits(dv[i]), bits(vs[i]));

  // A head reloaded from its bytes continues exactly like the original.
  ChunkEncoder re;
  EXPECT_TRUE(re.load(ts[0], blob));
  std::string again;
  re.serialize(again);
  EXPECT_EQ(again, blob);
  return blob.size();
}

}  // namespace

TEST(ChunkCodec, RandomBitsAndTimestamps) {
  std::mt19937_64 rng(42);
  for (int round = 0; round < 200; ++round) {
    size_t n = 1 + rng() % 300;
    std::vector<int64_t> ts;
    std::vector<double> vs;
    int64_t t = static_cast<int64_t>(rng()) >> (rng() % 64);
    for (size_t i = 0; i < n; ++i) {
      ts.push_back(t);
      vs.push_back(std::bit_cast<double>(rng()));
      uint64_t step = 1 + (rng() >> (rng() % 63 + 1)) % 1000000000000ULL;
      if (t > INT64_MAX - static_cast<int64_t>(step)) break;
      t += static_cast<int64_t>(step);
    }
    vs.resize(ts.size());
    round_trip(ts, vs);
  }
}

TEST(ChunkCodec, SpecialFloatsStayBitExact) {
  const double nan_payload = std::bit_cast<double>(0x7ff8dead00000001ULL);
  const double neg_nan = std::bit_cast<double>(0xfff8000000000000ULL);
  std::vector<double> vs = {moni::stale_nan(),
                            std::numeric_limits<double>::quiet_NaN(),
                            nan_payload,
                            neg_nan,
                            std::numeric_limits<double>::infinity(),
                            -std::numeric_limits<double>::infinity(),
                            0.0,
                            -0.0,
                            std::numeric_limits<double>::denorm_min(),
                            std::numeric_limits<double>::max(),
                            std::numeric_limits<double>::lowest(),
                            1.0,
                            moni::stale_nan(),
                            moni::stale_nan()};
  std::vector<int64_t> ts;
  for (size_t i = 0; i < vs.size(); ++i) ts.push_back(1700000000000 + 15000 * int64_t(i));
  round_trip(ts, vs);
  // The stale marker must not come back as an ordinary NaN.
  ChunkEncoder enc;
  enc.append(1, 5.0);
  enc.append(2, moni::stale_nan());
  std::string blob;
  enc.serialize(blob);
  std::vector<int64_t> dt;
  std::vector<double> dv;
  ASSERT_TRUE(decode_chunk(1, blob, dt, dv));
  EXPECT_TRUE(moni::is_stale_nan(dv[1]));
}

TEST(ChunkCodec, ExtremeTimestamps) {
  round_trip({INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX}, {1, 2, 3, 4, 5, 6, 7});
  round_trip({INT64_MIN, INT64_MAX}, {1.5, -2.25});
  round_trip({-86400000LL * 365 * 100, -1000, -999}, {0.1, 0.2, 0.3});
  round_trip({42}, {moni::stale_nan()});
}

TEST(ChunkCodec, EqualValuesAndSteadyIntervalsAreTiny) {
  std::vector<int64_t> ts;
  std::vector<double> vs;
  for (int i = 0; i < 120; ++i) {
    ts.push_back(1700000000000 + 15000LL * i);
    vs.push_back(8589934592.0);
  }
  size_t n = round_trip(ts, vs);
  EXPECT_LT(n, 60u) << "constant series: ~2 bits per sample";
}

TEST(ChunkCodec, IntegerAndDecimalCountersUseScaledIntegers) {
  std::mt19937_64 rng(7);
  std::vector<int64_t> ts;
  std::vector<double> bytes_counter, cpu_seconds;
  double b = 123456789, c = 5123.45;
  for (int i = 0; i < 120; ++i) {
    ts.push_back(1700000000000 + 15000LL * i + static_cast<int64_t>(rng() % 3));
    b += static_cast<double>(rng() % 5000);
    c = std::round((c + static_cast<double>(rng() % 300) / 100.0) * 100) / 100;
    bytes_counter.push_back(b);
    cpu_seconds.push_back(c);
  }
  auto xor_size = [&](const std::vector<double>& vs) {
    std::string out;
    ChunkEncoder e;
    e.reencode(kModeXor, ts, vs);
    e.serialize(out);
    return out.size();
  };
  size_t nb = round_trip(ts, bytes_counter);
  size_t nc = round_trip(ts, cpu_seconds);
  EXPECT_LT(nc * 10, xor_size(cpu_seconds) * 7) << "decimal scaling beats XOR by > 30%";
  EXPECT_LT(nb * 10, xor_size(bytes_counter) * 9);
  // Random increments of up to 13 bits plus 0-2 ms of jitter.
  EXPECT_LT(nb / 120.0, 3.5);
  EXPECT_LT(nc / 120.0, 3.0);
}

TEST(ChunkCodec, ModeSwitchesMidChunk) {
  // Integers, then decimals, then a float with no short decimal form, then NaN.
  std::vector<double> vs = {1, 2, 3, 3.5, 3.75, 1.0 / 3.0, 7, moni::stale_nan(), -0.0, 1e300};
  std::vector<int64_t> ts;
  for (size_t i = 0; i < vs.size(); ++i) ts.push_back(1000 * int64_t(i));
  round_trip(ts, vs);
  // Large integers beyond 2^53 fall back to XOR.
  round_trip({1, 2, 3}, {9007199254740993.0, 18014398509481984.0, -9007199254740992.0});
  // Big value jumps in integer mode.
  round_trip({1, 2, 3, 4}, {0, 4e15, -4e15, 1});
}

TEST(ChunkCodec, CommonFactorOfStepsIsFactoredOut) {
  std::mt19937_64 rng(3);
  std::vector<int64_t> ts;
  std::vector<double> mem;
  double m = 4096.0 * 123456;
  for (int i = 0; i < 480; ++i) {
    ts.push_back(kBase + 15000LL * i);
    m += 4096.0 * static_cast<double>(static_cast<int>(rng() % 200) - 100);
    mem.push_back(m);
  }
  round_trip(ts, mem);
  std::string best;
  encode_chunk_best(ts.data(), mem.data(), ts.size(), best);
  // 8-bit steps instead of 20-bit ones.
  EXPECT_LT(best.size(), 480u * 12 / 8);
}

TEST(ChunkCodec, MalformedInputIsRejectedNotCrashed) {
  ChunkEncoder enc;
  for (int i = 0; i < 50; ++i) enc.append(i * 1000, i * 0.37);
  std::string blob;
  enc.serialize(blob);
  std::vector<int64_t> ts;
  std::vector<double> vs;
  for (size_t cut = 0; cut < blob.size(); ++cut) {
    ts.clear();
    vs.clear();
    EXPECT_FALSE(decode_chunk(0, std::string_view(blob).substr(0, cut), ts, vs)) << cut;
    EXPECT_TRUE(ts.empty());
  }
  EXPECT_FALSE(decode_chunk(0, "\x33\x01\x00", ts, vs));  // unknown mode
}

TEST(ChunkCodec, GridTimestampsWithJitterGapsAndOutliers) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 100; ++round) {
    std::vector<int64_t> ts;
    std::vector<double> vs;
    int64_t k = 0;
    for (int i = 0; i < 240; ++i) {
      int64_t t = kBase + k * 15000 + static_cast<int64_t>(rng() % 4);
      if (rng() % 50 == 0) t += static_cast<int64_t>(rng() % 20000);  // outlier
      if (!ts.empty() && t <= ts.back()) t = ts.back() + 1;           // same grid cell
      ts.push_back(t);
      vs.push_back(static_cast<double>(rng() % 3));
      k += rng() % 30 == 0 ? 2 + static_cast<int64_t>(rng() % 5) : 1;  // missed scrapes
    }
    round_trip(ts, vs);
  }
  // Jitter of a few ms on a steady 15 s ticker: about 3 bits per timestamp,
  // where delta-of-delta needs about 6.
  std::vector<int64_t> ts;
  std::vector<double> vs;
  for (int i = 0; i < 240; ++i) {
    ts.push_back(kBase + 15000LL * i + static_cast<int64_t>((i * 7919) % 4));
    vs.push_back(5);
  }
  std::string best;
  encode_chunk_best(ts.data(), vs.data(), ts.size(), best);
  EXPECT_LT(best.size(), 240u * 4 / 8 + 20) << "grid-coded timestamps (delta-of-delta: ~180 B)";
  round_trip(ts, vs);
}

TEST(ChunkCodec, ConstantChunksStoreTheValueOnce) {
  for (double c :
       {0.0, 1.0, -0.0, moni::stale_nan(), std::numeric_limits<double>::infinity(), 1.0 / 3.0}) {
    std::vector<int64_t> ts;
    std::vector<double> vs(240, c);
    for (int i = 0; i < 240; ++i) ts.push_back(kBase + 15000LL * i);
    std::string best;
    encode_chunk_best(ts.data(), vs.data(), ts.size(), best);
    EXPECT_EQ(static_cast<uint8_t>(best[0]), kModeConst);
    EXPECT_LT(best.size(), 240u / 8 + 20) << "1 bit per timestamp, none per value";
    std::vector<int64_t> dt;
    std::vector<double> dv;
    ASSERT_TRUE(decode_chunk(ts[0], best, dt, dv));
    EXPECT_EQ(dt, ts);
    for (double v : dv) EXPECT_EQ(bits(v), bits(c));
    // A loaded constant chunk takes a different value by re-encoding.
    ChunkEncoder e;
    ASSERT_TRUE(e.load(ts[0], best));
    e.append(ts.back() + 15000, 42.5);
    std::string blob;
    e.serialize(blob);
    dt.clear();
    dv.clear();
    ASSERT_TRUE(decode_chunk(ts[0], blob, dt, dv));
    ASSERT_EQ(dv.size(), 241u);
    EXPECT_EQ(bits(dv[239]), bits(c));
    EXPECT_EQ(dv[240], 42.5);
    EXPECT_EQ(dt[240], ts.back() + 15000);
  }
}

TEST(ChunkCodec, NanosecondDurationsUseNineDecimals) {
  // Go's Duration.Seconds(): whole nanoseconds, e.g. 4.6269e-05.
  std::mt19937_64 rng(3);
  std::vector<int64_t> ts;
  std::vector<double> vs;
  for (int i = 0; i < 240; ++i) {
    ts.push_back(kBase + 15000LL * i);
    vs.push_back(static_cast<double>(10000 + rng() % 200000) / 1e9);
  }
  round_trip(ts, vs);
  std::string best;
  encode_chunk_best(ts.data(), vs.data(), ts.size(), best);
  EXPECT_NE(static_cast<uint8_t>(best[0]), kModeXor);
  EXPECT_LT(best.size(), 240u * 24 / 8) << "about 20 bits per sample, XOR needs ~50";
}

// Chunks with the timestamps of the previous chunk (the series of one
// target, cut together) reuse its timestamp coding: the result is the same
// bytes as a fresh encoding, and decodes bit for bit.
TEST(ChunkCodec, ReusedTimestampCodingGivesTheSameBytes) {
  std::vector<int64_t> ts, other;
  for (int i = 0; i < 240; ++i) {
    ts.push_back(1700000000000 + i * 15000LL + (i * 7) % 4);
    other.push_back(1700000000000 + i * 30000LL);
  }
  const double stale = std::bit_cast<double>(uint64_t{MONI_STALE_NAN_BITS});
  std::vector<std::vector<double>> values = {std::vector<double>(240, 1.0),
                                             std::vector<double>(240, -0.0),
                                             std::vector<double>(240, stale),
                                             std::vector<double>(240, 4096.0 * 12345),
                                             {},
                                             std::vector<double>(240, 2.5)};
  for (int i = 0; i < 240; ++i) values[4].push_back(i * 0.25);  // a counter
  values[5][100] = std::numeric_limits<double>::infinity();
  std::vector<std::string> reused;
  for (const auto& vs : values) {  // same timestamps one after another
    std::string blob;
    encode_chunk_best(ts.data(), vs.data(), ts.size(), blob);
    reused.push_back(blob);
  }
  for (size_t k = 0; k < values.size(); ++k) {
    std::string blob, fresh;
    std::vector<double> ov(other.size(), 3.0);
    encode_chunk_best(other.data(), ov.data(), other.size(), blob);  // other timestamps between
    encode_chunk_best(ts.data(), values[k].data(), ts.size(), fresh);
    EXPECT_EQ(reused[k], fresh) << "values " << k;
    std::vector<int64_t> dt;
    std::vector<double> dv;
    ASSERT_TRUE(decode_chunk(ts[0], reused[k], dt, dv)) << k;
    EXPECT_EQ(dt, ts);
    ASSERT_EQ(dv.size(), values[k].size());
    for (size_t i = 0; i < dv.size(); ++i)
      EXPECT_EQ(std::bit_cast<uint64_t>(dv[i]), std::bit_cast<uint64_t>(values[k][i]))
          << k << " " << i;
  }
}

// BitWriter::bits writes whole bytes at once; its stream must equal one
// written bit by bit, for every width 0-64, across resumed streams.
TEST(ChunkCodec, BitWriterMatchesBitByBit) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::string fast, slow;
    BitWriter fw(&fast), sw(&slow);
    for (int i = 0; i < 300; ++i) {
      unsigned n = static_cast<unsigned>(rng() % 65);
      uint64_t v = rng();  // bits above n must be ignored
      fw.bits(v, n);
      for (unsigned b = n; b-- > 0;) sw.bit((v >> b) & 1);
      ASSERT_EQ(fast, slow) << "round " << round << " write " << i << " width " << n;
      ASSERT_EQ(fw.used(), sw.used());
      if (rng() % 16 == 0) {  // continue in a new writer, as ChunkEncoder does
        uint8_t used = fw.used();
        fw = BitWriter(&fast);
        fw.resume(used);
      }
    }
  }
}

// A value exact at a small decimal scale need not be at the wider scale a
// later value needs (here 12345678.9 * 10^9 is past 2^53): the chunk must
// not be written as scaled integers then (it was, at scale 9, with the
// first value lost).
TEST(ChunkCodec, WiderScaleRechecksEarlierValues) {
  round_trip({kBase, kBase + 15000}, {12345678.9, 1e-9});
  round_trip({kBase, kBase + 15000, kBase + 30000}, {1, 12345678.9, 0.000000001});
  round_trip({kBase, kBase + 15000, kBase + 30000}, {9007199254740.5, 3, 0.25});
  std::vector<int64_t> ts;
  std::vector<double> vs;
  for (int i = 0; i < 240; ++i) {
    ts.push_back(kBase + 15000LL * i);
    vs.push_back(i == 200 ? 0.000001 : 123456789012.5 + i);  // k 1, then 6: past 2^53
  }
  round_trip(ts, vs);
  std::string best;
  encode_chunk_best(ts.data(), vs.data(), ts.size(), best);
  EXPECT_EQ(static_cast<uint8_t>(best[0]), kModeXor);
}

namespace {

// Series of many shapes: the fast encoder against the reference, byte for
// byte, with and without the timestamp memo (same timestamps one call after
// another, or not), from arrays and from pairs.
std::vector<double> random_values(std::mt19937_64& rng, int kind, size_t n) {
  const double specials[] = {moni::stale_nan(),
                             std::numeric_limits<double>::quiet_NaN(),
                             std::bit_cast<double>(0x7ff8dead00000001ULL),
                             std::bit_cast<double>(0xfff0000000000001ULL),
                             std::numeric_limits<double>::infinity(),
                             -std::numeric_limits<double>::infinity(),
                             -0.0,
                             0.0,
                             std::numeric_limits<double>::denorm_min(),
                             std::numeric_limits<double>::max(),
                             9007199254740992.0,
                             -9007199254740991.0};
  std::vector<double> vs;
  double x = static_cast<double>(rng() % 1000000);
  int scale = static_cast<int>(rng() % 10);
  const double p10[] = {1, 10, 100, 1000, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9};
  // Common factors of the steps: powers of two, odd ones, mixed.
  const uint64_t factors[] = {2, 4096, 3, 5, 1000, 6, 7 * 4096, 12345, 65537 * 8, 999999937};
  uint64_t factor = rng() % 3 == 0 ? uint64_t{1} << (rng() % 13) : factors[rng() % 10];
  for (size_t i = 0; i < n; ++i) {
    switch (kind) {
      case 0:  // constant
        break;
      case 1:  // integer counter, small or huge steps
        x += static_cast<double>(rng() % (i % 7 == 0 ? 1ULL << 45 : 5000));
        break;
      case 2:  // decimal gauge at a random scale
        x = static_cast<double>(static_cast<int64_t>(rng() % 2000000) - 1000000) / p10[scale];
        break;
      case 3:  // steps (either sign, some zero) with a common factor, which
               // may shrink partway (a multiple first, then the factor)
        x += static_cast<double>(static_cast<int64_t>(factor * (rng() % 300)) *
                                 (rng() % 3 == 0 ? -1 : 1) * (i < n / 2 ? 6 : 1));
        break;
      case 4:  // XOR noise
        x = std::bit_cast<double>(rng());
        break;
      case 5:  // mixed scales: integers, then decimals, then nanoseconds
        x = i < n / 3 ? static_cast<double>(rng() % 100000)
                      : static_cast<double>(rng() % 100000) / p10[(i * 9) / n];
        break;
      case 6:  // mostly constant, one special value
        if (i == n / 2)
          x = specials[rng() % std::size(specials)];
        else if (i == n / 2 + 1)
          x = 1.0;
        break;
      case 7:  // integer steps straddling every bucket width
        x += static_cast<double>((int64_t{1} << (rng() % 52)) * (rng() % 2 ? 1 : -1));
        break;
      case 8:  // integers stepping by one odd factor throughout, decimals
        x = static_cast<double>(static_cast<int64_t>(i * 7 * 4096 * factor % 100000007)) /
            p10[scale % 3];
        break;
      default:  // floats with a few specials and -0.0
        x = rng() % 10 == 0 ? specials[rng() % std::size(specials)]
                            : static_cast<double>(rng() % 1000) / 3.0;
        break;
    }
    vs.push_back(x);
  }
  return vs;
}

std::vector<int64_t> random_timestamps(std::mt19937_64& rng, size_t n) {
  std::vector<int64_t> ts;
  int shape = static_cast<int>(rng() % 5);
  int64_t t = shape == 4 ? INT64_MIN + static_cast<int64_t>(rng() % 1000)
                         : kBase - static_cast<int64_t>(rng() % (kBase * 2));
  for (size_t i = 0; i < n; ++i) {
    ts.push_back(t);
    int64_t step;
    if (shape == 0)  // exact grid
      step = 15000;
    else if (shape == 1)  // jitter
      step = 15000 + static_cast<int64_t>(rng() % 7) - 3;
    else if (shape == 2)  // jitter and missed scrapes
      step = 15000 * (rng() % 20 == 0 ? 3 : 1) + static_cast<int64_t>(rng() % 4);
    else if (shape == 3)  // drift
      step = 1 + static_cast<int64_t>(rng() % 100000000);
    else  // anything up to 2^63
      step = static_cast<int64_t>(1 + (rng() >> (rng() % 63 + 1)));
    if (t > INT64_MAX - step) break;
    t += step;
  }
  return ts;
}

// What the compared chunks were: mode byte -> count, and integer chunks
// with an even / odd common factor.
std::map<uint8_t, int> g_modes;
int g_even_factor = 0, g_odd_factor = 0;

void expect_same_as_reference(const std::vector<int64_t>& ts, const std::vector<double>& vs,
                              const std::string& what) {
  std::string best, ref, pairs;
  encode_chunk_reference(ts.data(), vs.data(), ts.size(), ref);
  encode_chunk_best(ts.data(), vs.data(), ts.size(), best);
  ASSERT_EQ(best, ref) << what;
  auto mode = static_cast<uint8_t>(best[0]);
  ++g_modes[mode];
  if (mode != kModeXor && mode != kModeConst) {
    std::string_view h(best);
    h.remove_prefix(1);
    uint64_t factor = 0;
    ASSERT_TRUE(get_varint(h, factor));
    if (factor > 1) ++(factor % 2 ? g_odd_factor : g_even_factor);
  }
  std::vector<HeadSample> hs;
  for (size_t i = 0; i < ts.size(); ++i) hs.push_back({ts[i], vs[i]});
  encode_chunk_best(hs.data(), hs.size(), pairs);
  ASSERT_EQ(pairs, ref) << what << " (pairs)";
  std::vector<int64_t> dt;
  std::vector<double> dv;
  ASSERT_TRUE(decode_chunk(ts[0], best, dt, dv)) << what;
  ASSERT_EQ(dt, ts) << what;
  ASSERT_EQ(dv.size(), vs.size()) << what;
  for (size_t i = 0; i < vs.size(); ++i) ASSERT_EQ(bits(dv[i]), bits(vs[i])) << what << " " << i;
}

}  // namespace

TEST(ChunkCodec, FastEncoderMatchesReference) {
  std::mt19937_64 rng(2026);
  for (int round = 0; round < 300; ++round) {
    size_t n = 1 + rng() % 300;
    std::vector<int64_t> ts = random_timestamps(rng, n);
    // Several series on these timestamps (memo hits), of every kind.
    for (int s = 0; s < 10; ++s) {
      int kind = static_cast<int>(rng() % 10);
      std::vector<double> vs = random_values(rng, kind, ts.size());
      expect_same_as_reference(ts, vs,
                               "round " + std::to_string(round) + " kind " + std::to_string(kind));
      if (HasFatalFailure()) return;
    }
  }
  // Every value coding was met: constant, XOR, and integers in both orders
  // with each of the three tables, with even and odd factors.
  EXPECT_GT(g_modes[kModeConst], 0);
  EXPECT_GT(g_modes[kModeXor], 0);
  std::set<int> order_table;
  for (auto [m, c] : g_modes)
    if (m != kModeXor && m != kModeConst) order_table.insert(m >> 4);
  EXPECT_EQ(order_table.size(), 6u) << "(order, table) pairs met";
  EXPECT_GT(g_even_factor, 0);
  EXPECT_GT(g_odd_factor, 0);
}

// The memo of the last timestamps must not be used for other timestamps:
// one differing in the last sample only, a prefix, the same ones shifted.
TEST(ChunkCodec, TimestampMemoOnlyForEqualTimestamps) {
  std::vector<int64_t> ts;
  for (int i = 0; i < 240; ++i) ts.push_back(kBase + 15000LL * i + (i * 7) % 4);
  std::vector<double> c(240, 7.0), ramp;
  for (int i = 0; i < 240; ++i) ramp.push_back(i * 1.5);
  std::vector<int64_t> last_moved = ts;
  last_moved.back() += 20000;
  std::vector<int64_t> first_moved = ts;
  first_moved.front() -= 1;
  std::vector<int64_t> prefix(ts.begin(), ts.begin() + 239);
  std::vector<int64_t> shifted;
  for (int64_t t : ts) shifted.push_back(t + 15000);
  for (const auto* other : {&last_moved, &first_moved, &prefix, &shifted}) {
    for (const auto* vs : {&c, &ramp}) {
      expect_same_as_reference(ts, *vs, "before");  // memo holds ts
      std::vector<double> v2(vs->begin(), vs->begin() + static_cast<std::ptrdiff_t>(other->size()));
      expect_same_as_reference(*other, v2, "other timestamps");
      expect_same_as_reference(ts, c, "constant after");
      expect_same_as_reference(ts, ramp, "ramp after");
      if (HasFatalFailure()) return;
    }
  }
  // A constant chunk patched from the memo carries its own value, for every
  // value in turn (and after non-constant chunks on the same timestamps).
  for (double v :
       {1.0, -0.0, 0.0, moni::stale_nan(), std::numeric_limits<double>::infinity(), 1.0 / 3.0}) {
    expect_same_as_reference(ts, std::vector<double>(240, v), "constant");
    expect_same_as_reference(ts, ramp, "ramp");
  }
  // Fewer than three samples (no grid), and a single sample.
  expect_same_as_reference({kBase, kBase + 15000}, {1.0, 2.0}, "two");
  expect_same_as_reference({kBase}, {moni::stale_nan()}, "one");
  expect_same_as_reference({kBase}, {2.5}, "one again");
}

TEST(ChunkCodec, EmptyInputMatchesReference) {
  std::string best, ref;
  encode_chunk_reference(nullptr, nullptr, 0, ref);
  encode_chunk_best(static_cast<const int64_t*>(nullptr), nullptr, 0, best);
  EXPECT_EQ(best, ref);
}
