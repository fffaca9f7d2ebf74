// libFuzzer target: every client message parser on untrusted bytes.
// Input: Byte1 selector, then the bytes. Selector bits 0-1 choose what a 'p'
// message means (PasswordKind); bit 2 parses a startup-phase packet instead;
// bit 3 runs the framer over the bytes and parses every whole frame.

#include <cstddef>
#include <cstdint>

#include "fuzz_common.hpp"

namespace pq = pgwarden::protocol;
namespace fz = pgwarden::protocol::fuzz;

namespace {

void parse_one(std::string_view bytes, pq::PasswordKind kind) {
  pq::FrontendMessage m;
  if (pq::parse_frontend(bytes, m, kind)) return;
  fz::check_round_trip(bytes, m, [kind](std::string_view b, pq::FrontendMessage& out) {
    return pq::parse_frontend(b, out, kind);
  });
}

void parse_startup_packet(std::string_view bytes) {
  const pq::StartupFrame f = pq::frame_startup(bytes);
  pq::StartupPacket packet;
  const std::error_code ec = pq::parse_startup(bytes, packet);
  if (f.complete && f.bytes.size() == bytes.size()) {
    // What the framer accepts whole, the parser accepts too, except a
    // StartupMessage whose parameter list is malformed.
    fz::check(!ec || f.kind == pq::StartupKind::Startup, "framed request packet does not parse");
  }
  if (ec) return;
  fz::check_round_trip(bytes, packet, [](std::string_view b, pq::StartupPacket& out) {
    return pq::parse_startup(b, out);
  });
}

void parse_stream(std::string_view bytes, pq::PasswordKind kind) {
  pq::Framer framer(pq::TypeSet::all_except({}), 1 << 16);
  for (;;) {
    const pq::Frame f = framer.put(bytes);
    if (f.kind != pq::FrameKind::Whole) return;
    parse_one(f.bytes, kind);
    bytes.remove_prefix(f.bytes.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t selector = data[0];
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const auto kind = static_cast<pq::PasswordKind>(selector & 3);
  if (selector & 4) {
    parse_startup_packet(bytes);
  } else if (selector & 8) {
    parse_stream(bytes, kind);
  } else {
    parse_one(bytes, kind);
  }
  return 0;
}
