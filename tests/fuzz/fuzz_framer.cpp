// libFuzzer target: the framer and frame_startup on untrusted byte streams.
// Input: Byte1 config (bits 0-1 which types arrive whole, bits 2-3 the size
// cap), Byte1 seed for read sizes, then the stream. The stream is framed in
// one read and again in reads of pseudo-random sizes; both must yield the
// same messages and the same error, and every frame must be a prefix of the
// input it was cut from.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_common.hpp"

namespace pq = pgwarden::protocol;
namespace fz = pgwarden::protocol::fuzz;

namespace {

struct Result {
  std::vector<std::string> messages;  // whole, or streamed pieces put together
  std::error_code ec;
  bool operator==(const Result&) const = default;
};

/// Frames `stream` in reads of sizes drawn from `seed` (0 = one read),
/// keeping unconsumed bytes for the next read as the proxy does.
Result frame(pq::Framer framer, std::string_view stream, std::uint32_t seed) {
  Result r;
  std::string pending, partial;
  std::size_t fed = 0;
  while (fed < stream.size()) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t n = seed == 12345u ? stream.size() : 1 + (seed >> 16) % 64;
    pending.append(stream.substr(fed, n));
    fed += std::min(n, stream.size() - fed);
    std::string_view input = pending;
    for (pq::Frame f = framer.put(input);; f = framer.put(input)) {
      if (f.ec) {
        r.ec = f.ec;
        return r;
      }
      if (f.kind == pq::FrameKind::NeedMore) break;
      fz::check(f.bytes.data() == input.data() && !f.bytes.empty() && f.bytes.size() <= input.size(),
                "frame is not a non-empty prefix of the input");
      if (f.kind == pq::FrameKind::Whole || f.starts_message) partial.clear();
      partial.append(f.bytes);
      if (f.kind == pq::FrameKind::Whole || f.ends_message) r.messages.push_back(partial);
      input.remove_prefix(f.bytes.size());
    }
    pending.erase(0, pending.size() - input.size());
  }
  return r;
}

pq::TypeSet whole_types(std::uint8_t config) {
  switch (config & 3) {
    case 0: return pq::TypeSet::all_except({});
    case 1: return pq::TypeSet::all_except({'D', 'd'});
    case 2: return pq::TypeSet{};
    default: return pq::TypeSet{'Q', 'P', 'B', 'E', 'F'};
  }
}

std::size_t max_bytes(std::uint8_t config) {
  static constexpr std::size_t caps[] = {16, 256, 1 << 16, pq::max_protocol_message};
  return caps[(config >> 2) & 3];
}

/// frame_startup decides from a prefix what it decides from the whole.
void check_startup(std::string_view stream) {
  const pq::StartupFrame full = pq::frame_startup(stream);
  if (full.complete) fz::check(full.bytes.data() == stream.data() && full.bytes.size() >= 8, "bad startup frame");
  for (std::size_t n = 0; n < stream.size() && n < 300; ++n) {
    const pq::StartupFrame part = pq::frame_startup(stream.substr(0, n));
    if (part.ec) fz::check(part.ec == full.ec, "startup error differs between prefix and whole");
    if (full.complete && n < full.bytes.size()) fz::check(!part.complete && !part.ec, "prefix of a packet decided");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::uint8_t config = data[0];
  const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);
  const pq::Framer framer(whole_types(config), max_bytes(config));
  const Result one_read = frame(framer, stream, 0);
  const Result many_reads = frame(framer, stream, data[1] | 1u);
  fz::check(one_read == many_reads, "framing depends on how the stream is split");
  check_startup(stream);
  return 0;
}
