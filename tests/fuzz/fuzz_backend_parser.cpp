// libFuzzer target: every server message parser on untrusted bytes.
// Input: Byte1 selector, then the bytes. Selector bit 0 runs the framer over
// the bytes and parses every whole frame; otherwise the bytes are one message.

#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

namespace pq = pgwarden::protocol;
namespace fz = pgwarden::protocol::fuzz;

namespace {

void parse_one(std::string_view bytes) {
  pq::BackendMessage m;
  if (pq::parse_backend(bytes, m)) return;
  fz::check_round_trip(bytes, m, [](std::string_view b, pq::BackendMessage& out) {
    return pq::parse_backend(b, out);
  });
  // The helpers the proxy reads errors with never read outside the message.
  if (const auto* e = std::get_if<pq::ErrorResponse>(&m)) {
    const std::string_view sqlstate = e->field(pq::pg_diag_sqlstate);
    fz::check(sqlstate.empty() || (sqlstate.data() >= bytes.data() &&
                                   sqlstate.data() + sqlstate.size() <= bytes.data() + bytes.size()),
              "ErrorResponse field outside its message");
  }
}

void parse_stream(std::string_view bytes) {
  pq::Framer framer(pq::TypeSet::all_except({}), 1 << 16);
  for (;;) {
    const pq::Frame f = framer.put(bytes);
    if (f.kind != pq::FrameKind::Whole) return;
    parse_one(f.bytes);
    bytes.remove_prefix(f.bytes.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] & 1) {
    parse_stream(bytes);
  } else {
    parse_one(bytes);
  }
  return 0;
}
