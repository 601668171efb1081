// The chunk codec on realistic data: the recorded node_exporter scrapes
// (tests/data/lmdb_tsdb/node_exporter_scrapes.txt.xz) replayed as
// bench_lmdb_tsdb replays them (10 targets, 15 s grid with the recorded
// jitter), cut into 240-sample chunks and encoded in the order the chunk
// thread meets them: per cut round, target by target, series by series.
//
//   codec_bench [--replay FILE] [--targets N] [--scrapes N] [--no-verify]
//               [benchmark flags]
//
// Without --replay the recording is decompressed (xz) into a temporary file.
// At the start every chunk is encoded with encode_chunk_best (arrays and
// pairs) and encode_chunk_reference and the bytes compared (--no-verify
// skips it); the chunks per kind are listed. Counters: ns per sample, chunk
// bytes per sample (without keys and B-tree pages: 1.054 here, 1.344 in
// bench_lmdb_tsdb's compacted copy); a checksum of every chunk's bytes goes
// to stderr (equal checksums: identical output).
//
// 2026-11-26 11:52 UTC, load 6-7, Release, BM_EncodeReplay CPU time per
// sample, 3 alternating runs of 3 repetitions: the encoder before (471f046)
// 33.9-34.0 ns, this one 7.7-8.3 ns; same bytes. By kind: constant chunks
// (20,369 of 30,420) 2.4 ns, scaled integers (9,075) 20 ns, XOR (976) 15 ns.
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "chunk_codec.hpp"
#include "head_pool.hpp"
#include "scrape_replay.hpp"

namespace {

struct Chunk {
  std::vector<int64_t> ts;
  std::vector<double> vs;
  std::vector<moni::tsdb::HeadSample> pairs;
};

std::string g_replay;
int g_targets = 10;
int g_scrapes = 1440;
bool g_verify = true;
std::vector<Chunk> g_chunks;
size_t g_samples = 0;
std::vector<size_t> g_by_kind[3];  // chunk indices: constant, scaled integers, XOR

void load_chunks() {
  if (!g_chunks.empty()) return;
  std::string path = g_replay;
  if (path.empty()) {
    char tmpl[] = "/tmp/codec_bench_XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0) {
      std::perror("mkstemp");
      std::exit(1);
    }
    path = tmpl;
    std::string cmd = std::string("xz -dc '") + MONI_REPLAY_XZ + "' > '" + path + "'";
    if (std::system(cmd.c_str()) != 0) {
      std::fprintf(stderr, "cannot decompress %s\n", MONI_REPLAY_XZ);
      std::exit(1);
    }
  }
  ScrapeReplay rp;
  std::string err;
  if (!rp.load(path, err)) {
    std::fprintf(stderr, "%s\n", err.c_str());
    std::exit(1);
  }
  if (g_replay.empty()) std::remove(path.c_str());
  const size_t nser = rp.series().size();
  const int64_t t0 = 1700000000000;
  // Per target, per series: all samples.
  std::vector<std::vector<Chunk>> all(static_cast<size_t>(g_targets), std::vector<Chunk>(nser));
  for (int ti = 0; ti < g_targets; ++ti) {
    ScrapeReplay r = rp;
    int64_t phase = ti * 97;
    for (int s = 0; s < g_scrapes; ++s) {
      int64_t ts = t0 + s * 15000LL + r.jitter(s + phase);
      for (size_t gi = 0; gi < nser; ++gi) {
        double v;
        if (!r.value(gi, s + phase, v)) continue;
        all[static_cast<size_t>(ti)][gi].ts.push_back(ts);
        all[static_cast<size_t>(ti)][gi].vs.push_back(v);
      }
    }
  }
  // Chunks of 240 samples, round by round.
  const size_t kChunk = 240;
  for (size_t round = 0;; ++round) {
    bool any = false;
    for (auto& tgt : all)
      for (auto& s : tgt) {
        size_t lo = round * kChunk;
        if (lo >= s.ts.size()) continue;
        size_t hi = std::min(s.ts.size(), lo + kChunk);
        Chunk c;
        c.ts.assign(s.ts.begin() + static_cast<std::ptrdiff_t>(lo),
                    s.ts.begin() + static_cast<std::ptrdiff_t>(hi));
        c.vs.assign(s.vs.begin() + static_cast<std::ptrdiff_t>(lo),
                    s.vs.begin() + static_cast<std::ptrdiff_t>(hi));
        for (size_t i = 0; i < c.ts.size(); ++i) c.pairs.push_back({c.ts[i], c.vs[i]});
        g_samples += c.ts.size();
        g_chunks.push_back(std::move(c));
        any = true;
      }
    if (!any) break;
  }
  std::fprintf(stderr, "%zu chunks, %zu samples (%d targets x %zu series x %d scrapes)\n",
               g_chunks.size(), g_samples, g_targets, nser, g_scrapes);
  // The fast encoder must write the reference encoder's bytes.
  size_t differ = 0, pairs_differ = 0;
  size_t kinds[3] = {}, kind_samples[3] = {}, kind_bytes[3] = {};
  std::string a, b, c;
  for (const Chunk& ch : g_chunks) {
    if (g_verify) moni::tsdb::encode_chunk_reference(ch.ts.data(), ch.vs.data(), ch.ts.size(), a);
    moni::tsdb::encode_chunk_best(ch.ts.data(), ch.vs.data(), ch.ts.size(), b);
    if (g_verify) {
      moni::tsdb::encode_chunk_best(ch.pairs.data(), ch.pairs.size(), c);
      differ += a != b;
      pairs_differ += a != c;
    }
    uint8_t mode = static_cast<uint8_t>(b[0]);
    int kind = mode == moni::tsdb::kModeConst ? 0 : mode == moni::tsdb::kModeXor ? 2 : 1;
    ++kinds[kind];
    g_by_kind[kind].push_back(static_cast<size_t>(&ch - g_chunks.data()));
    kind_samples[kind] += ch.ts.size();
    kind_bytes[kind] += b.size();
  }
  std::fprintf(stderr, "chunks differing from encode_chunk_reference: %zu (pairs: %zu)\n", differ,
               pairs_differ);
  const char* names[3] = {"constant", "scaled integers", "XOR floats"};
  for (int k = 0; k < 3; ++k)
    std::fprintf(stderr, "%s: %zu chunks, %zu samples, %.3f bytes/sample\n", names[k], kinds[k],
                 kind_samples[k],
                 kind_samples[k] ? static_cast<double>(kind_bytes[k]) / kind_samples[k] : 0.0);
}

uint64_t fnv(uint64_t h, const std::string& s) {
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

enum class Enc { kArrays, kPairs, kCopied, kReference };

template <Enc kE>
void encode(const Chunk& c, std::string& out) {
  if constexpr (kE == Enc::kPairs)
    moni::tsdb::encode_chunk_best(c.pairs.data(), c.pairs.size(), out);
  else if constexpr (kE == Enc::kCopied) {
    // What store_cuts does with a head's pairs: split them, then encode.
    thread_local std::vector<int64_t> tv;
    thread_local std::vector<double> vv;
    tv.resize(c.pairs.size());
    vv.resize(c.pairs.size());
    for (size_t i = 0; i < c.pairs.size(); ++i) {
      tv[i] = c.pairs[i].t;
      vv[i] = c.pairs[i].v;
    }
    moni::tsdb::encode_chunk_best(tv.data(), vv.data(), tv.size(), out);
  } else if constexpr (kE == Enc::kReference)
    moni::tsdb::encode_chunk_reference(c.ts.data(), c.vs.data(), c.ts.size(), out);
  else
    moni::tsdb::encode_chunk_best(c.ts.data(), c.vs.data(), c.ts.size(), out);
}

const char* name(Enc e) {
  switch (e) {
    case Enc::kArrays:
      return "arrays";
    case Enc::kPairs:
      return "pairs";
    case Enc::kCopied:
      return "copied";
    default:
      return "reference";
  }
}

template <Enc kE>
void run(benchmark::State& state) {
  load_chunks();
  std::string out;
  uint64_t bytes = 0, sum = 0xcbf29ce484222325ULL;
  for (auto _ : state) {
    bytes = 0;
    for (const Chunk& c : g_chunks) {
      encode<kE>(c, out);
      bytes += out.size();
      benchmark::DoNotOptimize(out.data());
    }
  }
  for (const Chunk& c : g_chunks) {
    encode<kE>(c, out);
    sum = fnv(sum, out);
  }
  std::fprintf(stderr, "%s: output checksum %016llx\n", name(kE),
               static_cast<unsigned long long>(sum));
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * g_samples));
  state.counters["ns_per_sample"] =
      benchmark::Counter(static_cast<double>(state.iterations() * g_samples),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  // Chunk bytes only (the bench_lmdb_tsdb figure adds keys and B-tree pages).
  state.counters["chunk_bytes_per_sample"] =
      static_cast<double>(bytes) / static_cast<double>(g_samples);
}

// encode_chunk_best on separate ts/vs arrays.
void BM_EncodeReplay(benchmark::State& state) { run<Enc::kArrays>(state); }
BENCHMARK(BM_EncodeReplay)->Unit(benchmark::kMillisecond);

// encode_chunk_best on (t, v) pairs, as the chunk thread holds a head.
void BM_EncodeReplayPairs(benchmark::State& state) { run<Enc::kPairs>(state); }
BENCHMARK(BM_EncodeReplayPairs)->Unit(benchmark::kMillisecond);

// One kind of chunk only (arg: 0 constant, 1 scaled integers, 2 XOR), in
// replay order (the timestamp memo still hits within a target).
void BM_EncodeKind(benchmark::State& state) {
  load_chunks();
  const auto& idx = g_by_kind[state.range(0)];
  size_t samples = 0;
  for (size_t i : idx) samples += g_chunks[i].ts.size();
  std::string out;
  for (auto _ : state)
    for (size_t i : idx) {
      const Chunk& c = g_chunks[i];
      moni::tsdb::encode_chunk_best(c.ts.data(), c.vs.data(), c.ts.size(), out);
      benchmark::DoNotOptimize(out.data());
    }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * samples));
  state.counters["ns_per_sample"] =
      benchmark::Counter(static_cast<double>(state.iterations() * samples),
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}
BENCHMARK(BM_EncodeKind)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

// store_cuts today: the pairs copied into two arrays, then encoded.
void BM_EncodeReplayCopied(benchmark::State& state) { run<Enc::kCopied>(state); }
BENCHMARK(BM_EncodeReplayCopied)->Unit(benchmark::kMillisecond);

// The reference encoder (the session-6 algorithm: every candidate encoded
// through ChunkEncoder, no timestamp memo).
void BM_EncodeReference(benchmark::State& state) { run<Enc::kReference>(state); }
BENCHMARK(BM_EncodeReference)->Unit(benchmark::kMillisecond);

void BM_DecodeReplay(benchmark::State& state) {
  load_chunks();
  std::vector<std::string> blobs;
  for (const Chunk& c : g_chunks) {
    blobs.emplace_back();
    moni::tsdb::encode_chunk_best(c.ts.data(), c.vs.data(), c.ts.size(), blobs.back());
  }
  std::vector<int64_t> ts;
  std::vector<double> vs;
  for (auto _ : state) {
    for (size_t i = 0; i < blobs.size(); ++i) {
      ts.clear();
      vs.clear();
      if (!moni::tsdb::decode_chunk(g_chunks[i].ts[0], blobs[i], ts, vs))
        state.SkipWithError("decode failed");
      benchmark::DoNotOptimize(vs.data());
    }
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * g_samples));
}
BENCHMARK(BM_DecodeReplay)->Unit(benchmark::kMillisecond);

}  // namespace

int main(int argc, char** argv) {
  std::vector<char*> rest{argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--replay" && i + 1 < argc)
      g_replay = argv[++i];
    else if (a == "--targets" && i + 1 < argc)
      g_targets = std::atoi(argv[++i]);
    else if (a == "--no-verify")
      g_verify = false;
    else if (a == "--scrapes" && i + 1 < argc)
      g_scrapes = std::atoi(argv[++i]);
    else
      rest.push_back(argv[i]);
  }
  int n = static_cast<int>(rest.size());
  benchmark::Initialize(&n, rest.data());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
