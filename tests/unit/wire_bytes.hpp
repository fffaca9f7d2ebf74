#pragma once
// Tiny builders for protocol bytes in codec tests: big-endian fields as the
// PostgreSQL protocol docs list them, and any message's encoding.

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/encoder.hpp"

namespace pgwarden::protocol::test_wire {

/// Appends big-endian fields, as the protocol docs list them.
struct Bytes {
  std::string s;
  Bytes& u8(unsigned v) { s.push_back(static_cast<char>(v)); return *this; }
  Bytes& i16(int v) { return u8((v >> 8) & 0xff).u8(v & 0xff); }
  Bytes& i32(std::int64_t v) { return u8((v >> 24) & 0xff).u8((v >> 16) & 0xff).u8((v >> 8) & 0xff).u8(v & 0xff); }
  Bytes& str(std::string_view v) { s.append(v); s.push_back('\0'); return *this; }
  Bytes& raw(std::string_view v) { s.append(v); return *this; }
};

/// The wire bytes of one message.
template <class T>
std::string encoded(const T& m) {
  std::string out;
  encode(m, out);
  return out;
}

}  // namespace pgwarden::protocol::test_wire
