#pragma once
// Shared checks of the protocol fuzz targets. libFuzzer reports a crash on
// abort(), so a broken invariant aborts with a one-line reason.

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "protocol/encoder.hpp"
#include "protocol/framer.hpp"
#include "protocol/parser.hpp"

namespace pgwarden::protocol::fuzz {

[[noreturn]] inline void fail(const char* what) {
  std::fprintf(stderr, "invariant broken: %s\n", what);
  std::abort();
}

inline void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

/// A message the parser accepted encodes back to exactly its bytes and parses
/// again to an equal value.
template <class Message, class Parse>
void check_round_trip(std::string_view bytes, const Message& parsed, Parse parse_again) {
  std::string encoded;
  encode(parsed, encoded);
  check(encoded == bytes, "encode(parse(m)) != m");
  Message again;
  check(!parse_again(std::string_view(encoded), again), "re-encoded message does not parse");
  check(again == parsed, "parse(encode(parse(m))) != parse(m)");
}

}  // namespace pgwarden::protocol::fuzz
