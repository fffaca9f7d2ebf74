// Framer and frame_startup: every message of a realistic stream comes out the
// same however the bytes are split across reads; bad lengths are errors, not
// allocations; streamed messages come out in pieces with the right flags.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/encoder.hpp"
#include "protocol/error.hpp"
#include "protocol/framer.hpp"
#include "protocol/messages.hpp"
#include "protocol/parser.hpp"
#include "wire_bytes.hpp"

namespace pgwarden::protocol {
namespace {

using namespace std::string_view_literals;
using test_wire::Bytes;
using test_wire::encoded;

// --- tiny byte builders ------------------------------------------------------


/// A header announcing `length` (which counts itself), then `body`.
std::string with_length(char type, std::int64_t length, std::string_view body = {}) {
  return Bytes{}.u8(static_cast<unsigned char>(type)).i32(length).raw(body).s;
}


/// What a server sends for `SELECT id, name FROM t` with three rows, after login.
std::vector<std::string> backend_messages() {
  return {
      encoded(AuthenticationOk{}),
      encoded(ParameterStatus{"server_version", "15.6"}),
      encoded(BackendKeyData{4242, "\1\2\3\4"sv}),
      encoded(ReadyForQuery{'I'}),
      encoded(RowDescription{{{"id", 16384, 1, 23, 4, -1, 0}, {"name", 16384, 2, 25, -1, -1, 0}}}),
      encoded(DataRow{{"1"sv, "alice"sv}}),
      encoded(DataRow{{"2"sv, std::nullopt}}),
      encoded(DataRow{{"3"sv, "a long name that spans many reads"sv}}),
      encoded(CommandComplete{"SELECT 3"}),
      encoded(NoticeResponse{{{'S', "NOTICE"}, {'M', "hi"}}}),
      encoded(CopyOutResponse{0, {0, 0}}),
      encoded(CopyData{"1\talice\n"}),
      encoded(CopyData{""}),
      encoded(CopyDone{}),
      encoded(ReadyForQuery{'T'}),
  };
}

/// A pipelined extended-protocol batch, a simple query and a COPY FROM STDIN.
std::vector<std::string> frontend_messages() {
  return {
      encoded(Parse{"s1", "SELECT * FROM t WHERE id = $1", {23}}),
      encoded(Bind{"", "s1", {}, {"42"sv}, {}}),
      encoded(Describe{'P', ""}),
      encoded(Execute{"", 0}),
      encoded(Sync{}),
      encoded(Query{"COPY t FROM STDIN"}),
      encoded(CopyData{"1\talice\n2\tbob\n"}),
      encoded(CopyDone{}),
      encoded(Flush{}),
      encoded(Terminate{}),
  };
}

std::string concat(const std::vector<std::string>& messages) {
  std::string all;
  for (const auto& m : messages) all += m;
  return all;
}

/// One message as the caller saw it: whole, or streamed pieces put together.
struct Seen {
  char type;
  std::string bytes;
  bool whole;
  friend bool operator==(const Seen&, const Seen&) = default;
};

struct Outcome {
  std::vector<Seen> messages;
  std::error_code ec;
  std::size_t pending = 0;  ///< bytes fed but not consumed at the end
};

/// Plays the proxy's part: keeps unconsumed bytes and presents them again with
/// the next read, puts streamed pieces back together, and checks every
/// frame's invariants on the way.
class Caller {
 public:
  explicit Caller(Framer& framer) : framer_(framer) {}

  Outcome run(const std::vector<std::string_view>& chunks) {
    for (std::string_view chunk : chunks) {
      pending_ += chunk;
      std::string_view input = pending_;
      for (Frame f = framer_.put(input); f.kind != FrameKind::NeedMore; f = framer_.put(input)) {
        take(f, input);
        input.remove_prefix(f.bytes.size());
      }
      if (const Frame f = framer_.put(input); f.ec) {
        out_.ec = f.ec;
        return out_;
      }
      pending_.erase(0, pending_.size() - input.size());
    }
    out_.pending = pending_.size() + (in_streamed_ ? 1 : 0);
    return out_;
  }

 private:
  void take(const Frame& f, std::string_view input) {
    EXPECT_FALSE(f.ec);
    EXPECT_EQ(f.bytes.data(), input.data()) << "a frame is a prefix of the input";
    EXPECT_FALSE(f.bytes.empty());
    if (f.kind == FrameKind::Whole) {
      EXPECT_FALSE(in_streamed_);
      out_.messages.push_back({f.type, std::string(f.bytes), true});
      return;
    }
    EXPECT_EQ(f.starts_message, !in_streamed_);
    if (f.starts_message) partial_.clear();
    partial_ += f.bytes;
    in_streamed_ = !f.ends_message;
    EXPECT_EQ(framer_.in_message(), in_streamed_);
    if (f.ends_message) out_.messages.push_back({f.type, partial_, false});
  }

  Framer& framer_;
  Outcome out_;
  std::string pending_;
  std::string partial_;
  bool in_streamed_ = false;
};

Outcome run(Framer& framer, const std::vector<std::string_view>& chunks) { return Caller(framer).run(chunks); }

/// What `run` must produce: each message whole, or streamed if its type is not in `whole`.
std::vector<Seen> expected(const std::vector<std::string>& messages, TypeSet whole) {
  std::vector<Seen> seen;
  for (const auto& m : messages) seen.push_back({m[0], m, whole.contains(m[0])});
  return seen;
}

struct StreamCase {
  const char* name;
  std::vector<std::string> messages;
  TypeSet whole;
};

std::vector<StreamCase> stream_cases() {
  const TypeSet all = TypeSet::all_except({});
  const TypeSet rows_streamed = TypeSet::all_except({'D', 'd'});
  return {
      {"BackendAllWhole", backend_messages(), all},
      {"BackendRowsStreamed", backend_messages(), rows_streamed},
      {"BackendAllStreamed", backend_messages(), TypeSet{}},
      {"FrontendAllWhole", frontend_messages(), all},
      {"FrontendCopyDataStreamed", frontend_messages(), TypeSet::all_except({'d'})},
      {"FrontendAllStreamed", frontend_messages(), TypeSet{}},
  };
}

class FramerStream : public testing::TestWithParam<StreamCase> {};

// The whole stream in one read: every message comes out once, in order.
TEST_P(FramerStream, OneReadGivesEveryMessage) {
  const StreamCase& c = GetParam();
  const std::string all = concat(c.messages);
  Framer framer(c.whole, 1 << 20);
  const Outcome o = run(framer, {all});
  EXPECT_FALSE(o.ec);
  EXPECT_EQ(o.pending, 0u);
  EXPECT_EQ(o.messages, expected(c.messages, c.whole));
}

// The stream split into two reads at every possible point: same messages.
TEST_P(FramerStream, EverySplitPointGivesTheSameMessages) {
  const StreamCase& c = GetParam();
  const std::string all = concat(c.messages);
  const std::string_view view = all;
  for (std::size_t at = 0; at <= all.size(); ++at) {
    Framer framer(c.whole, 1 << 20);
    const Outcome o = run(framer, {view.substr(0, at), view.substr(at)});
    ASSERT_FALSE(o.ec) << "split at " << at;
    EXPECT_EQ(o.pending, 0u) << "split at " << at;
    ASSERT_EQ(o.messages, expected(c.messages, c.whole)) << "split at " << at;
  }
}

// One byte per read, the worst a slow network can do: same messages.
TEST_P(FramerStream, ByteByByteGivesTheSameMessages) {
  const StreamCase& c = GetParam();
  const std::string all = concat(c.messages);
  std::vector<std::string_view> bytes;
  for (std::size_t i = 0; i < all.size(); ++i) bytes.push_back(std::string_view(all).substr(i, 1));
  Framer framer(c.whole, 1 << 20);
  const Outcome o = run(framer, bytes);
  EXPECT_FALSE(o.ec);
  EXPECT_EQ(o.pending, 0u);
  EXPECT_EQ(o.messages, expected(c.messages, c.whole));
}

// Whole messages parse: what the framer cuts is exactly what the parser takes.
TEST_P(FramerStream, WholeFramesParse) {
  const StreamCase& c = GetParam();
  const bool backend = std::string_view(c.name).starts_with("Backend");
  Framer framer(TypeSet::all_except({}), 1 << 20);
  for (const Seen& s : run(framer, {concat(c.messages)}).messages) {
    BackendMessage bm;
    FrontendMessage fm;
    EXPECT_EQ(backend ? parse_backend(s.bytes, bm) : parse_frontend(s.bytes, fm), std::error_code{}) << s.type;
  }
}

INSTANTIATE_TEST_SUITE_P(Streams, FramerStream, testing::ValuesIn(stream_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// --- boundaries and bad lengths ----------------------------------------------------

const TypeSet kAllWhole = TypeSet::all_except({});

// A message that exactly fills the input is Whole; one byte short is NeedMore
// and no error, and the missing byte completes it.
TEST(Framer, ExactFitAndOneByteShort) {
  const std::string q = encoded(Query{"SELECT 1"});
  Framer framer(kAllWhole, 1 << 20);
  EXPECT_EQ(framer.put(q.substr(0, q.size() - 1)).kind, FrameKind::NeedMore);
  EXPECT_FALSE(framer.put(q.substr(0, q.size() - 1)).ec);
  const Frame f = framer.put(q);
  EXPECT_EQ(f.kind, FrameKind::Whole);
  EXPECT_EQ(f.type, 'Q');
  EXPECT_EQ(f.bytes, q);
  EXPECT_EQ(f.body(), "SELECT 1\0"sv);
}

// Fewer than five bytes cannot hold a header: NeedMore, even for garbage.
TEST(Framer, ShortHeaderNeedsMore) {
  Framer framer(kAllWhole, 1 << 20);
  EXPECT_EQ(framer.put(""sv).kind, FrameKind::NeedMore);
  EXPECT_EQ(framer.put("Q\xff\xff\xff"sv).kind, FrameKind::NeedMore);
  EXPECT_FALSE(framer.put("Q\xff\xff\xff"sv).ec);
}

// The smallest valid length is 4 (an empty body); 0..3 are BadLength.
TEST(Framer, LengthBelowFourIsBadLength) {
  for (int length = 0; length < 4; ++length) {
    Framer framer(kAllWhole, 1 << 20);
    EXPECT_EQ(framer.put(with_length('S', length)).ec, Error::BadLength) << length;
  }
  Framer framer(kAllWhole, 1 << 20);
  EXPECT_EQ(framer.put(with_length('S', 4)).kind, FrameKind::Whole);
}

// A negative length, and the 2 GiB length a hostile client sends, are
// BadLength at once, for whole and for streamed types alike.
TEST(Framer, NegativeAndTwoGibLengthsAreBadLength) {
  for (const TypeSet whole : {kAllWhole, TypeSet{}}) {
    Framer a(whole, 1 << 20);
    EXPECT_EQ(a.put(with_length('Q', -1)).ec, Error::BadLength);
    Framer b(whole, 1 << 20);
    EXPECT_EQ(b.put(with_length('Q', 0x80000000)).ec, Error::BadLength);
  }
}

// Just under 2 GiB is above PostgreSQL's own 1 GiB limit: MessageTooLarge
// from the header alone, without waiting for (or buffering) the body.
TEST(Framer, AboveProtocolMaximumIsTooLarge) {
  for (const TypeSet whole : {kAllWhole, TypeSet{}}) {
    Framer framer(whole, max_protocol_message + 1);
    EXPECT_EQ(framer.put(with_length('D', 0x7fffffff)).ec, Error::MessageTooLarge);
  }
}

// A whole-type message over the configured cap is refused from its header;
// exactly at the cap (type byte included) it is accepted.
TEST(Framer, OverConfiguredMaximumIsTooLarge) {
  const std::string q = encoded(Query{std::string_view("SELECT 1")});
  Framer at_cap(kAllWhole, q.size());
  EXPECT_EQ(at_cap.put(q).kind, FrameKind::Whole);
  Framer below_cap(kAllWhole, q.size() - 1);
  EXPECT_EQ(below_cap.put(q.substr(0, header_size)).ec, Error::MessageTooLarge);
}

// A streamed type is not bounded by the cap: a 10 MB DataRow announced in its
// header streams through in the pieces that arrive.
TEST(Framer, StreamedTypeIgnoresTheCapAndComesInPieces) {
  Framer framer(TypeSet::all_except({'D'}), 1024);
  const std::string header = with_length('D', 10'000'004);
  Frame f = framer.put(header + "abc");
  ASSERT_EQ(f.kind, FrameKind::Streamed);
  EXPECT_TRUE(f.starts_message);
  EXPECT_FALSE(f.ends_message);
  EXPECT_EQ(f.bytes.size(), header.size() + 3);
  EXPECT_TRUE(framer.in_message());
  EXPECT_EQ(framer.put(""sv).kind, FrameKind::NeedMore);
  const std::string chunk(9'999'997, 'x');
  f = framer.put(chunk + "Z");
  ASSERT_EQ(f.kind, FrameKind::Streamed);
  EXPECT_FALSE(f.starts_message);
  EXPECT_TRUE(f.ends_message);
  EXPECT_EQ(f.type, 'D');
  EXPECT_EQ(f.bytes.size(), chunk.size());
  EXPECT_FALSE(framer.in_message());
}

// Garbage after a complete message: the message still comes out whole, then
// the garbage header is reported.
TEST(Framer, GarbageAfterAMessage) {
  const std::string stream = encoded(Sync{}) + with_length('X', 2);
  Framer framer(kAllWhole, 1 << 20);
  const Frame f = framer.put(stream);
  ASSERT_EQ(f.kind, FrameKind::Whole);
  EXPECT_EQ(framer.put(std::string_view(stream).substr(f.bytes.size())).ec, Error::BadLength);
}

// Garbage inside a message (its length covers extra bytes) is invisible to the
// framer and caught by the parser.
TEST(Framer, GarbageInsideAMessageIsTheParsersJob) {
  const std::string q = with_length('Q', 4 + 9 + 3, "SELECT 1\0abc"sv);
  Framer framer(kAllWhole, 1 << 20);
  const Frame f = framer.put(q);
  ASSERT_EQ(f.kind, FrameKind::Whole);
  Query parsed;
  EXPECT_EQ(parse(f.bytes, parsed), Error::TrailingBytes);
}

// --- startup phase ----------------------------------------------------------------

/// Int32 length (of the whole packet) then `body`.
std::string packet(const Bytes& body, std::int64_t length_delta = 0) {
  return Bytes{}.i32(std::int64_t(body.s.size()) + 4 + length_delta).raw(body.s).s;
}

struct StartupCase {
  const char* name;
  std::string bytes;
  StartupKind kind;
};

std::vector<StartupCase> startup_cases() {
  return {
      {"StartupMessage",
       packet(Bytes{}.i32(196608).str("user").str("alice").str("database").str("app").u8(0)), StartupKind::Startup},
      {"StartupMessageMinor2", packet(Bytes{}.i32(196610).str("user").str("a").u8(0)), StartupKind::Startup},
      {"SslRequest", packet(Bytes{}.i32(80877103)), StartupKind::SslRequest},
      {"GssEncRequest", packet(Bytes{}.i32(80877104)), StartupKind::GssEncRequest},
      {"CancelRequest30", packet(Bytes{}.i32(80877102).i32(4242).raw("\1\2\3\4"sv)), StartupKind::Cancel},
      {"CancelRequest32", packet(Bytes{}.i32(80877102).i32(4242).raw(std::string(32, 'k'))), StartupKind::Cancel},
      {"CancelRequest32MaxKey", packet(Bytes{}.i32(80877102).i32(4242).raw(std::string(256, 'k'))),
       StartupKind::Cancel},
  };
}

class StartupFraming : public testing::TestWithParam<StartupCase> {};

// Every prefix of a startup packet needs more (no error); the whole packet is
// complete, of the right kind, and parses.
TEST_P(StartupFraming, EveryPrefixNeedsMoreThenTheWholeIsComplete) {
  const StartupCase& c = GetParam();
  for (std::size_t n = 0; n < c.bytes.size(); ++n) {
    const StartupFrame f = frame_startup(std::string_view(c.bytes).substr(0, n));
    EXPECT_FALSE(f.complete) << n;
    EXPECT_FALSE(f.ec) << n;
  }
  const std::string followed = c.bytes + "next";
  const StartupFrame f = frame_startup(followed);
  ASSERT_TRUE(f.complete);
  EXPECT_EQ(f.kind, c.kind);
  EXPECT_EQ(f.bytes, c.bytes);
  StartupPacket parsed;
  EXPECT_EQ(parse_startup(f.bytes, parsed), std::error_code{});
  EXPECT_EQ(encoded(parsed), c.bytes);
}

INSTANTIATE_TEST_SUITE_P(Packets, StartupFraming, testing::ValuesIn(startup_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

// Lengths below 8 (no room for the code) or negative are BadLength; above
// PostgreSQL's 10000-byte startup limit is MessageTooLarge.
TEST(StartupFraming, BadPacketLengths) {
  EXPECT_EQ(frame_startup(Bytes{}.i32(7).i32(196608).s).ec, Error::BadLength);
  EXPECT_EQ(frame_startup(Bytes{}.i32(0).s).ec, Error::BadLength);
  EXPECT_EQ(frame_startup(Bytes{}.i32(-1).s).ec, Error::BadLength);
  EXPECT_EQ(frame_startup(Bytes{}.i32(0x80000000).s).ec, Error::BadLength);
  EXPECT_EQ(frame_startup(Bytes{}.i32(10001).s).ec, Error::MessageTooLarge);
  EXPECT_FALSE(frame_startup(Bytes{}.i32(10000).i32(196608).s).ec);
}

// SSLRequest and GSSENCRequest are exactly 8 bytes; CancelRequest carries a
// 4..256-byte key. A wrong length fails from the first 8 bytes, without
// waiting for the body it announces.
TEST(StartupFraming, FixedSizeRequestsWithWrongLength) {
  EXPECT_EQ(frame_startup(packet(Bytes{}.i32(80877103).u8(0))).ec, Error::BadLength);
  EXPECT_EQ(frame_startup(Bytes{}.i32(9000).i32(80877103).s).ec, Error::BadLength);
  EXPECT_EQ(frame_startup(Bytes{}.i32(9).i32(80877104).s).ec, Error::BadLength);
  EXPECT_EQ(frame_startup(packet(Bytes{}.i32(80877102).i32(1).raw("abc"))).ec, Error::BadLength);
  EXPECT_EQ(frame_startup(packet(Bytes{}.i32(80877102).i32(1).raw(std::string(257, 'k')))).ec, Error::BadLength);
}

// Protocol 2.0, a future 4.0, and unknown 1234.xxxx request codes.
TEST(StartupFraming, UnsupportedProtocolVersions) {
  EXPECT_EQ(frame_startup(packet(Bytes{}.i32(2 << 16).u8(0))).ec, Error::UnsupportedProtocol);
  EXPECT_EQ(frame_startup(packet(Bytes{}.i32(4 << 16).u8(0))).ec, Error::UnsupportedProtocol);
  EXPECT_EQ(frame_startup(packet(Bytes{}.i32((1234 << 16) | 5681))).ec, Error::UnsupportedProtocol);
}

// After an SSLRequest the framer hands back only the request; the bytes that
// follow are the caller's to reject before the TLS handshake.
TEST(StartupFraming, SslRequestDoesNotSwallowFollowingBytes) {
  const std::string ssl = packet(Bytes{}.i32(80877103));
  const std::string followed = ssl + "\x16\x03\x01";
  const StartupFrame f = frame_startup(followed);
  ASSERT_TRUE(f.complete);
  EXPECT_EQ(f.bytes.size(), 8u);
}

// --- TypeSet -------------------------------------------------------------------

// all_except holds every byte value but the listed ones, including the high half.
TEST(TypeSetTest, AllExceptAndInsert) {
  const TypeSet s = TypeSet::all_except({'D', 'd'});
  EXPECT_FALSE(s.contains('D'));
  EXPECT_FALSE(s.contains('d'));
  EXPECT_TRUE(s.contains('Q'));
  EXPECT_TRUE(s.contains('\xff'));
  EXPECT_TRUE(s.contains('\0'));
  TypeSet t{'Q', 'P'};
  EXPECT_TRUE(t.contains('P'));
  EXPECT_FALSE(t.contains('B'));
  t.erase('P');
  EXPECT_FALSE(t.contains('P'));
}

}  // namespace
}  // namespace pgwarden::protocol
