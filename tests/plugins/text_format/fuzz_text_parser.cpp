// libFuzzer target for moni::text::Parser (both formats) with a round-trip
// property: whatever parses, once rendered, parses again to the same
// samples; whatever fails, fails with a message that is valid UTF-8.
#include <moni/text_format.hpp>

#include <bit>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // The first byte picks the format and the duplicate policy.
  const uint8_t mode = data[0];
  std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  moni::text::ParseOptions o;
  o.format = (mode & 1) ? moni::text::Format::OpenMetrics : moni::text::Format::Text;
  o.duplicates = static_cast<moni::text::Duplicates>((mode >> 1) % 3);
  o.max_label_value_length = (mode & 8) ? 16 : 0;
  o.default_timestamp_ms = 1000;
  moni::text::Parser p;
  auto r = p.parse(body, o);
  if (!r) {
    if (p.size() != 0) std::abort();  // all-or-nothing
    if (!moni::text::detail::valid_utf8(r.error().message)) std::abort();  // loggable as is
    return 0;
  }
  moni::Batch b;
  p.append_to(b);
  for (auto f : {moni::text::Format::Text, moni::text::Format::OpenMetrics}) {
    std::string out;
    moni::text::RenderOptions ro;
    ro.format = f;
    ro.timestamps = true;
    ro.skip_stale = false;
    auto st = moni::text::render(b.view(), out, ro);
    moni::text::Parser q;
    moni::text::ParseOptions qo;
    qo.format = f;
    auto r2 = q.parse(out, qo);
    if (!r2) std::abort();  // the renderer wrote something the parser rejects
    if (q.size() != st.samples) std::abort();
  }
  return 0;
}
