// Parser and encoder of every PostgreSQL v3 message: round trips, byte-exact
// layouts checked against hand-built messages, and malformed input.

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


/// Byte1 type, Int32 length (body + 4 + `length_delta`), body.
std::string typed(char type, const Bytes& body, int length_delta = 0) {
  return Bytes{}.u8(static_cast<unsigned char>(type)).i32(std::int64_t(body.s.size()) + 4 + length_delta).raw(body.s).s;
}

/// Int32 length (whole packet + `length_delta`), body.
std::string untyped(const Bytes& body, int length_delta = 0) {
  return Bytes{}.i32(std::int64_t(body.s.size()) + 4 + length_delta).raw(body.s).s;
}


/// Parses bytes that die with the full expression: only the error code may be
/// used afterwards, never `out`.
template <class T>
std::error_code error_of(const std::string& wire, T& out) {
  return parse(std::string_view(wire), out);
}
std::error_code error_of_backend(const std::string& wire, BackendMessage& out) {
  return parse_backend(std::string_view(wire), out);
}
std::error_code error_of_frontend(const std::string& wire, FrontendMessage& out) {
  return parse_frontend(std::string_view(wire), out);
}

// --- samples: at least one of every message, with edge values -----------------

struct FrontendSample {
  const char* name;
  FrontendMessage message;
  PasswordKind password_kind = PasswordKind::Password;
};

std::vector<FrontendSample> frontend_samples() {
  return {
      {"Query", Query{"SELECT 1; SELECT 2"}},
      {"EmptyQuery", Query{""}},
      {"Parse", Parse{"s1", "SELECT $1::int, $2", {23, 0}}},
      {"ParseUnnamedNoTypes", Parse{"", "SELECT 1", {}}},
      {"Bind", Bind{"p1", "s1", {0, 1}, {"42"sv, std::nullopt, ""sv, "\0\1\2"sv}, {1}}},
      {"BindEmpty", Bind{}},
      {"DescribeStatement", Describe{'S', "s1"}},
      {"DescribePortal", Describe{'P', ""}},
      {"Execute", Execute{"p1", 100}},
      {"ExecuteAll", Execute{"", 0}},
      {"CloseStatement", Close{'S', "s1"}},
      {"ClosePortal", Close{'P', "p1"}},
      {"Sync", Sync{}},
      {"Flush", Flush{}},
      {"FunctionCall", FunctionCall{764, {1}, {"\0\0\0\1"sv, std::nullopt}, 1}},
      {"CopyData", CopyData{"1\tone\n2\ttwo\n"}},
      {"CopyDataBinary", CopyData{"PGCOPY\n\xff\r\n\0"sv}},
      {"CopyDone", CopyDone{}},
      {"CopyFail", CopyFail{"aborted by user"}},
      {"Terminate", Terminate{}},
      {"PasswordMessage", PasswordMessage{"md5a3556571e93b0d20722ba62be61e8c2d"}},
      {"SaslInitialResponse", SaslInitialResponse{"SCRAM-SHA-256", "n,,n=,r=abc"sv}, PasswordKind::SaslInitialResponse},
      {"SaslInitialResponseNoData", SaslInitialResponse{"SCRAM-SHA-256", std::nullopt},
       PasswordKind::SaslInitialResponse},
      {"SaslResponse", SaslResponse{"c=biws,r=abcdef,p=xyz="}, PasswordKind::SaslResponse},
      {"GssResponse", GssResponse{"\x60\x82\0\1"sv}, PasswordKind::GssResponse},
  };
}

struct BackendSample {
  const char* name;
  BackendMessage message;
};

std::vector<BackendSample> backend_samples() {
  return {
      {"AuthenticationOk", AuthenticationOk{}},
      {"AuthenticationKerberosV5", AuthenticationKerberosV5{}},
      {"AuthenticationCleartextPassword", AuthenticationCleartextPassword{}},
      {"AuthenticationMD5Password", AuthenticationMD5Password{"\x01\0\xfe\x7f"sv}},
      {"AuthenticationGSS", AuthenticationGSS{}},
      {"AuthenticationGSSContinue", AuthenticationGSSContinue{"token\0bytes"sv}},
      {"AuthenticationSSPI", AuthenticationSSPI{}},
      {"AuthenticationSASL", AuthenticationSASL{{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"}}},
      {"AuthenticationSASLContinue", AuthenticationSASLContinue{"r=abc,s=c2FsdA==,i=4096"}},
      {"AuthenticationSASLFinal", AuthenticationSASLFinal{"v=c2lnbmF0dXJl"}},
      {"BackendKeyData", BackendKeyData{4242, "\xde\xad\xbe\xef"sv}},
      {"BackendKeyDataLongKey", BackendKeyData{-1, std::string_view("0123456789abcdef0123456789abcdef")}},
      {"ParameterStatus", ParameterStatus{"server_version", "15.6"}},
      {"ReadyForQueryIdle", ReadyForQuery{'I'}},
      {"ReadyForQueryInTransaction", ReadyForQuery{'T'}},
      {"ReadyForQueryFailed", ReadyForQuery{'E'}},
      {"RowDescription",
       RowDescription{{{"id", 16384, 1, 23, 4, -1, 0}, {"name", 16384, 2, 25, -1, -1, 1}, {"?column?", 0, 0, 1043, -1, 36, 0}}}},
      {"RowDescriptionEmpty", RowDescription{}},
      {"DataRow", DataRow{{"1"sv, std::nullopt, ""sv, "bin\0ary"sv}}},
      {"DataRowEmpty", DataRow{}},
      {"CommandComplete", CommandComplete{"INSERT 0 1"}},
      {"ErrorResponse", ErrorResponse{{{'S', "ERROR"}, {'V', "ERROR"}, {'C', "42501"}, {'M', "permission denied"}}}},
      {"NoticeResponse", NoticeResponse{{{'S', "NOTICE"}, {'C', "00000"}, {'M', "hello"}, {'W', ""}}}},
      {"NotificationResponse", NotificationResponse{777, "jobs", "{\"id\":1}"}},
      {"ParameterDescription", ParameterDescription{{23, 25, 0xffffffffu}}},
      {"ParseComplete", ParseComplete{}},
      {"BindComplete", BindComplete{}},
      {"CloseComplete", CloseComplete{}},
      {"NoData", NoData{}},
      {"PortalSuspended", PortalSuspended{}},
      {"EmptyQueryResponse", EmptyQueryResponse{}},
      {"CopyInResponse", CopyInResponse{0, {0, 0, 0}}},
      {"CopyOutResponse", CopyOutResponse{1, {1, 1}}},
      {"CopyBothResponse", CopyBothResponse{0, {}}},
      {"CopyData", CopyData{"row\n"}},
      {"CopyDone", CopyDone{}},
      {"NegotiateProtocolVersion", NegotiateProtocolVersion{0, {"_pq_.unknown", "_pq_.other"}}},
      {"FunctionCallResponse", FunctionCallResponse{"\0\0\0\7"sv}},
      {"FunctionCallResponseNull", FunctionCallResponse{std::nullopt}},
  };
}

struct StartupSample {
  const char* name;
  StartupPacket packet;
};

std::vector<StartupSample> startup_samples() {
  return {
      {"StartupMessage", StartupMessage{protocol_version_3_0, {{"user", "alice"}, {"database", "app"},
                                                               {"application_name", "psql"}, {"options", ""}}}},
      {"StartupMessageNoParameters", StartupMessage{protocol_version_3_0, {}}},
      {"StartupMessageMinor2", StartupMessage{protocol_version_3_0 | 2, {{"user", "bob"}}}},
      {"SslRequest", SslRequest{}},
      {"GssEncRequest", GssEncRequest{}},
      {"CancelRequest30", CancelRequest{1234, "\0\1\2\3"sv}},
      {"CancelRequest32", CancelRequest{1234, std::string_view("0123456789abcdef0123456789abcdef")}},
  };
}

template <class Sample>
std::string sample_name(const testing::TestParamInfo<Sample>& info) {
  return info.param.name;
}

// --- round trips ---------------------------------------------------------------

class FrontendRoundTrip : public testing::TestWithParam<FrontendSample> {};

// A client message survives encode -> parse_frontend -> encode unchanged, and
// the typed parse overload agrees with the variant dispatch.
TEST_P(FrontendRoundTrip, ParseOfEncodeIsIdentity) {
  const FrontendSample& sample = GetParam();
  const std::string bytes = encoded(sample.message);
  FrontendMessage parsed;
  ASSERT_EQ(parse_frontend(bytes, parsed, sample.password_kind), std::error_code{});
  EXPECT_EQ(parsed, sample.message);
  EXPECT_EQ(encoded(parsed), bytes);
  std::visit(
      [&](const auto& expected) {
        std::decay_t<decltype(expected)> typed_out;
        ASSERT_EQ(parse(bytes, typed_out), std::error_code{});
        EXPECT_EQ(typed_out, expected);
      },
      sample.message);
}

// A frontend message as a framer delivers it: one Whole frame of exactly its bytes.
TEST_P(FrontendRoundTrip, FramerDeliversExactlyTheMessage) {
  const std::string bytes = encoded(GetParam().message);
  Framer framer(TypeSet::all_except({}), max_protocol_message);
  const std::string followed = bytes + "trailing";
  const Frame f = framer.put(followed);
  ASSERT_EQ(f.kind, FrameKind::Whole);
  EXPECT_EQ(f.bytes, bytes);
}

// Every proper prefix of a message with its length field fixed up is either
// rejected or (for trailing byte-string fields) parses to something shorter;
// no prefix is ever read out of bounds (ASan build).
TEST_P(FrontendRoundTrip, ShortenedMessagesNeverReadOutOfBounds) {
  const FrontendSample& sample = GetParam();
  const std::string bytes = encoded(sample.message);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    std::string shorter = bytes.substr(0, cut);
    if (cut >= header_size) shorter = typed(bytes[0], Bytes{}.raw(bytes.substr(header_size, cut - header_size)));
    FrontendMessage parsed;
    const std::error_code ec = parse_frontend(shorter, parsed, sample.password_kind);
    if (!ec) {
      EXPECT_NE(parsed, sample.message) << "cut " << cut;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Every, FrontendRoundTrip, testing::ValuesIn(frontend_samples()), sample_name<FrontendSample>);

class BackendRoundTrip : public testing::TestWithParam<BackendSample> {};

// A server message survives encode -> parse_backend -> encode unchanged, and
// the typed parse overload agrees with the variant dispatch.
TEST_P(BackendRoundTrip, ParseOfEncodeIsIdentity) {
  const BackendSample& sample = GetParam();
  const std::string bytes = encoded(sample.message);
  BackendMessage parsed;
  ASSERT_EQ(parse_backend(bytes, parsed), std::error_code{});
  EXPECT_EQ(parsed, sample.message);
  EXPECT_EQ(encoded(parsed), bytes);
  std::visit(
      [&](const auto& expected) {
        std::decay_t<decltype(expected)> typed_out;
        ASSERT_EQ(parse(bytes, typed_out), std::error_code{});
        EXPECT_EQ(typed_out, expected);
      },
      sample.message);
}

// Shortened server messages are rejected or parse to something else, never
// read out of bounds.
TEST_P(BackendRoundTrip, ShortenedMessagesNeverReadOutOfBounds) {
  const BackendSample& sample = GetParam();
  const std::string bytes = encoded(sample.message);
  for (std::size_t cut = 0; cut < bytes.size(); ++cut) {
    std::string shorter = bytes.substr(0, cut);
    if (cut >= header_size) shorter = typed(bytes[0], Bytes{}.raw(bytes.substr(header_size, cut - header_size)));
    BackendMessage parsed;
    const std::error_code ec = parse_backend(shorter, parsed);
    if (!ec) {
      EXPECT_NE(parsed, sample.message) << "cut " << cut;
    }
  }
}

// The length field disagreeing with the bytes given: one byte short of what
// the header announces is Truncated, one byte more is TrailingBytes.
TEST_P(BackendRoundTrip, LengthFieldMustMatchTheBytes) {
  const std::string bytes = encoded(GetParam().message);
  BackendMessage parsed;
  EXPECT_EQ(parse_backend(std::string_view(bytes).substr(0, bytes.size() - 1), parsed), Error::Truncated);
  EXPECT_EQ(error_of_backend(bytes + 'x', parsed), Error::TrailingBytes);
}

INSTANTIATE_TEST_SUITE_P(Every, BackendRoundTrip, testing::ValuesIn(backend_samples()), sample_name<BackendSample>);

class StartupRoundTrip : public testing::TestWithParam<StartupSample> {};

// A startup-phase packet survives encode -> parse_startup -> encode, and
// frame_startup recognises it whole.
TEST_P(StartupRoundTrip, ParseOfEncodeIsIdentity) {
  const StartupSample& sample = GetParam();
  const std::string bytes = encoded(sample.packet);
  StartupPacket parsed;
  ASSERT_EQ(parse_startup(bytes, parsed), std::error_code{});
  EXPECT_EQ(parsed, sample.packet);
  EXPECT_EQ(encoded(parsed), bytes);
  const StartupFrame f = frame_startup(bytes);
  EXPECT_TRUE(f.complete);
  EXPECT_EQ(f.bytes, bytes);
}

INSTANTIATE_TEST_SUITE_P(Every, StartupRoundTrip, testing::ValuesIn(startup_samples()), sample_name<StartupSample>);

// --- byte-exact layouts (guards against a parser and encoder wrong together) ---

// A Bind as libpq writes it: two text parameters, one NULL, binary results.
TEST(MessageLayout, BindMatchesTheDocumentedLayout) {
  const std::string wire =
      typed('B', Bytes{}.str("portal").str("stmt").i16(1).i16(0).i16(3).i32(2).raw("42").i32(-1).i32(0).i16(1).i16(1));
  Bind b;
  ASSERT_EQ(parse(wire, b), std::error_code{});
  EXPECT_EQ(b, (Bind{"portal", "stmt", {0}, {"42"sv, std::nullopt, ""sv}, {1}}));
  EXPECT_EQ(encoded(b), wire);
}

// A RowDescription of one int4 column from table 16384, then a DataRow.
TEST(MessageLayout, RowDescriptionAndDataRowMatchTheDocumentedLayout) {
  const std::string row_description =
      typed('T', Bytes{}.i16(1).str("id").i32(16384).i16(1).i32(23).i16(4).i32(-1).i16(0));
  RowDescription rd;
  ASSERT_EQ(parse(row_description, rd), std::error_code{});
  EXPECT_EQ(rd, (RowDescription{{{"id", 16384, 1, 23, 4, -1, 0}}}));
  EXPECT_EQ(encoded(rd), row_description);

  const std::string data_row = typed('D', Bytes{}.i16(2).i32(1).raw("7").i32(-1));
  DataRow dr;
  ASSERT_EQ(parse(data_row, dr), std::error_code{});
  EXPECT_EQ(dr, (DataRow{{"7"sv, std::nullopt}}));
}

// The StartupMessage psql sends: user and database, then the final NUL.
TEST(MessageLayout, StartupMessageMatchesTheDocumentedLayout) {
  const std::string wire = untyped(Bytes{}.i32(196608).str("user").str("alice").str("database").str("app").u8(0));
  StartupMessage m;
  ASSERT_EQ(parse(wire, m), std::error_code{});
  EXPECT_EQ(m.protocol_version, protocol_version_3_0);
  EXPECT_EQ(m.parameter("user"), "alice");
  EXPECT_EQ(m.parameter("database"), "app");
  EXPECT_EQ(m.parameter("missing"), "");
  EXPECT_EQ(encoded(m), wire);
}

// MD5 and SASL authentication requests as PostgreSQL sends them.
TEST(MessageLayout, AuthenticationRequestsMatchTheDocumentedLayout) {
  BackendMessage m;
  const std::string md5 = typed('R', Bytes{}.i32(5).raw("salt"));
  ASSERT_EQ(parse_backend(md5, m), std::error_code{});
  EXPECT_EQ(m, BackendMessage{AuthenticationMD5Password{"salt"}});
  const std::string sasl = typed('R', Bytes{}.i32(10).str("SCRAM-SHA-256").u8(0));
  ASSERT_EQ(parse_backend(sasl, m), std::error_code{});
  EXPECT_EQ(m, BackendMessage{AuthenticationSASL{{"SCRAM-SHA-256"}}});
  const std::string ok = typed('R', Bytes{}.i32(0));
  ASSERT_EQ(parse_backend(ok, m), std::error_code{});
  EXPECT_EQ(m, BackendMessage{AuthenticationOk{}});
}

// The denial pgwarden sends: S, V, C, M, D, H fields in that order, then NUL;
// a client reads the SQLSTATE and message back out.
TEST(MessageLayout, AppendErrorWritesTheFieldsAClientReads) {
  std::string out;
  append_error(out, "ERROR", "42501", "permission denied by rule no-drop", "DROP TABLE t", "ask a DBA");
  const std::string expected = typed('E', Bytes{}
                                              .u8('S').str("ERROR")
                                              .u8('V').str("ERROR")
                                              .u8('C').str("42501")
                                              .u8('M').str("permission denied by rule no-drop")
                                              .u8('D').str("DROP TABLE t")
                                              .u8('H').str("ask a DBA")
                                              .u8(0));
  EXPECT_EQ(out, expected);
  ErrorResponse e;
  ASSERT_EQ(parse(out, e), std::error_code{});
  EXPECT_EQ(e.field(pg_diag_sqlstate), "42501");
  EXPECT_EQ(e.field(pg_diag_message_primary), "permission denied by rule no-drop");
  EXPECT_EQ(e.field(pg_diag_schema_name), "");
}

// A notice without detail or hint has exactly the four mandatory fields.
TEST(MessageLayout, AppendNoticeOmitsEmptyDetailAndHint) {
  std::string out;
  append_notice(out, "WARNING", "01000", "audit sink slow");
  NoticeResponse n;
  ASSERT_EQ(parse(out, n), std::error_code{});
  ASSERT_EQ(n.fields.size(), 4u);
  EXPECT_EQ(n.field('V'), "WARNING");
  EXPECT_EQ(n.field('M'), "audit sink slow");
}

// The builders append after what is already in the buffer, so one write can
// carry an error and the ReadyForQuery that follows it.
TEST(MessageLayout, BuildersAppendToABatch) {
  std::string out = "x";
  append_ready_for_query(out, 'I');
  append_backend_key_data(out, 99, 0x01020304u);
  append_backend_key_data(out, 99, "0123456789"sv);
  append_query(out, "SELECT 1");
  std::string expected = "x";
  expected += typed('Z', Bytes{}.u8('I'));
  expected += typed('K', Bytes{}.i32(99).i32(0x01020304));
  expected += typed('K', Bytes{}.i32(99).raw("0123456789"));
  expected += typed('Q', Bytes{}.str("SELECT 1"));
  EXPECT_EQ(out, expected);
}

// --- malformed input --------------------------------------------------------

// Describe and Close must name a statement or a portal.
TEST(MalformedMessage, DescribeOrCloseOfAnythingButStatementOrPortalIsBadValue) {
  Describe d;
  EXPECT_EQ(error_of(typed('D', Bytes{}.u8('X').str("s")), d), Error::BadValue);
  Close c;
  EXPECT_EQ(error_of(typed('C', Bytes{}.u8('x').str("s")), c), Error::BadValue);
}

// ReadyForQuery with a transaction status PostgreSQL never sends.
TEST(MalformedMessage, ReadyForQueryWithUnknownStatusIsBadValue) {
  ReadyForQuery r;
  EXPECT_EQ(error_of(typed('Z', Bytes{}.u8('Q')), r), Error::BadValue);
}

// A value length below -1 in Bind, DataRow or FunctionCall is not NULL, it is garbage.
TEST(MalformedMessage, NegativeValueLengthOtherThanNullIsBadValue) {
  DataRow dr;
  EXPECT_EQ(error_of(typed('D', Bytes{}.i16(1).i32(-2)), dr), Error::BadValue);
  Bind b;
  EXPECT_EQ(error_of(typed('B', Bytes{}.str("").str("").i16(0).i16(1).i32(-7).i16(0)), b), Error::BadValue);
  FunctionCallResponse f;
  EXPECT_EQ(error_of(typed('V', Bytes{}.i32(std::int32_t(0x80000000))), f), Error::BadValue);
  NegotiateProtocolVersion n;
  EXPECT_EQ(error_of(typed('v', Bytes{}.i32(0).i32(-1)), n), Error::BadValue);
}

// A Bind announcing 65535 parameters but carrying none fails as Truncated
// before anything is reserved for them.
TEST(MalformedMessage, HugeCountWithoutTheBytesIsTruncated) {
  Bind b;
  EXPECT_EQ(error_of(typed('B', Bytes{}.str("").str("").i16(0).i16(0xffff).i16(0)), b), Error::Truncated);
  EXPECT_EQ(b.params.capacity(), 0u);
  NegotiateProtocolVersion n;
  EXPECT_EQ(error_of(typed('v', Bytes{}.i32(0).i32(0x7fffffff)), n), Error::Truncated);
}

// libpq sends up to 65535 bind parameters; PostgreSQL reads the Int16 count
// as unsigned, and so must we.
TEST(MalformedMessage, BindWithMoreThan32767ParametersIsValid) {
  Bytes body;
  body.str("").str("").i16(0).i16(40000);
  for (int i = 0; i < 40000; ++i) body.i32(-1);
  body.i16(0);
  const std::string wire = typed('B', body);
  Bind b;
  ASSERT_EQ(parse(wire, b), std::error_code{});
  EXPECT_EQ(b.params.size(), 40000u);
  EXPECT_EQ(encoded(b), wire);
}

// Bytes after the last field, inside the length the header announces.
TEST(MalformedMessage, TrailingGarbageInsideTheMessageIsTrailingBytes) {
  Query q;
  EXPECT_EQ(error_of(typed('Q', Bytes{}.str("SELECT 1").raw("junk")), q), Error::TrailingBytes);
  Sync s;
  EXPECT_EQ(error_of(typed('S', Bytes{}.u8(0)), s), Error::TrailingBytes);
  ReadyForQuery r;
  EXPECT_EQ(error_of(typed('Z', Bytes{}.u8('I').u8('I')), r), Error::TrailingBytes);
  ErrorResponse e;
  EXPECT_EQ(error_of(typed('E', Bytes{}.u8('M').str("m").u8(0).u8(0)), e), Error::TrailingBytes);
}

// A string field without its NUL.
TEST(MalformedMessage, StringWithoutTerminatorIsMissingTerminator) {
  Query q;
  EXPECT_EQ(error_of(typed('Q', Bytes{}.raw("SELECT 1")), q), Error::MissingTerminator);
  Parse p;
  EXPECT_EQ(error_of(typed('P', Bytes{}.str("s").raw("SELECT")), p), Error::MissingTerminator);
  StartupMessage m;
  EXPECT_EQ(error_of(untyped(Bytes{}.i32(196608).str("user").str("alice")), m), Error::MissingTerminator);
}

// A fixed-size field cut off by the end of the message.
TEST(MalformedMessage, FieldPastTheEndIsTruncated) {
  Execute e;
  EXPECT_EQ(error_of(typed('E', Bytes{}.str("").i16(0)), e), Error::Truncated);
  AuthenticationMD5Password md5;
  EXPECT_EQ(error_of(typed('R', Bytes{}.i32(5).raw("sal")), md5), Error::Truncated);
  ErrorResponse err;
  EXPECT_EQ(error_of(typed('E', Bytes{}.u8('M').str("m")), err), Error::Truncated);
}

// Header lengths below 4, negative, or pointing past the buffer.
TEST(MalformedMessage, BadHeaderLengths) {
  Sync s;
  EXPECT_EQ(error_of(typed('S', Bytes{}, -1), s), Error::BadLength);
  EXPECT_EQ(error_of(Bytes{}.u8('S').i32(-1).s, s), Error::BadLength);
  EXPECT_EQ(error_of(Bytes{}.u8('S').i32(0x7fffffff).s, s), Error::Truncated);
  EXPECT_EQ(parse("S\0\0"sv, s), Error::Truncated);
  EXPECT_EQ(parse(""sv, s), Error::Truncated);
}

// A message of another type given to a typed parse, an unknown type byte, and
// an authentication code PostgreSQL does not define.
TEST(MalformedMessage, WrongOrUnknownTypeIsUnexpectedType) {
  Query q;
  EXPECT_EQ(error_of(encoded(Sync{}), q), Error::UnexpectedType);
  FrontendMessage fm;
  EXPECT_EQ(error_of_frontend(typed('!', Bytes{}), fm), Error::UnexpectedType);
  BackendMessage bm;
  EXPECT_EQ(error_of_backend(typed('!', Bytes{}), bm), Error::UnexpectedType);
  EXPECT_EQ(error_of_backend(typed('R', Bytes{}.i32(6)), bm), Error::UnexpectedType);
  AuthenticationOk ok;
  EXPECT_EQ(error_of(typed('R', Bytes{}.i32(3)), ok), Error::UnexpectedType);
}

// The same 'p' bytes mean different messages depending on the auth exchange.
TEST(MalformedMessage, PasswordKindChoosesTheMeaningOfP) {
  const std::string wire = typed('p', Bytes{}.str("secret"));
  FrontendMessage m;
  ASSERT_EQ(parse_frontend(wire, m, PasswordKind::Password), std::error_code{});
  EXPECT_EQ(m, FrontendMessage{PasswordMessage{"secret"}});
  ASSERT_EQ(parse_frontend(wire, m, PasswordKind::SaslResponse), std::error_code{});
  EXPECT_EQ(m, FrontendMessage{SaslResponse{"secret\0"sv}});
  EXPECT_EQ(parse_frontend(wire, m, PasswordKind::SaslInitialResponse), Error::Truncated);
}

// Protocol 2.0 and 4.0 startup packets are refused; special codes given to
// the StartupMessage parser are not startup messages.
TEST(MalformedStartup, UnsupportedVersionsAndMismatchedCodes) {
  StartupMessage m;
  EXPECT_EQ(error_of(untyped(Bytes{}.i32(2 << 16).u8(0)), m), Error::UnsupportedProtocol);
  EXPECT_EQ(error_of(untyped(Bytes{}.i32(4 << 16).u8(0)), m), Error::UnsupportedProtocol);
  EXPECT_EQ(error_of(encoded(SslRequest{}), m), Error::UnexpectedType);
  SslRequest ssl;
  EXPECT_EQ(error_of(encoded(GssEncRequest{}), ssl), Error::UnexpectedType);
  EXPECT_EQ(error_of(untyped(Bytes{}.i32(negotiate_ssl_code).u8(0)), ssl), Error::TrailingBytes);
}

// Cancel keys: 4 bytes (3.0) to 256 bytes (3.2); shorter or longer is refused.
TEST(MalformedStartup, CancelKeyLengthBounds) {
  CancelRequest c;
  EXPECT_EQ(error_of(untyped(Bytes{}.i32(cancel_request_code).i32(1).raw("abc")), c), Error::Truncated);
  const std::string longest = untyped(Bytes{}.i32(cancel_request_code).i32(1).raw(std::string(256, 'k')));
  EXPECT_EQ(parse(longest, c), std::error_code{});
  EXPECT_EQ(c.secret_key, std::string(256, 'k'));
  EXPECT_EQ(error_of(untyped(Bytes{}.i32(cancel_request_code).i32(1).raw(std::string(257, 'k'))), c), Error::BadValue);
  BackendKeyData k;
  EXPECT_EQ(error_of(typed('K', Bytes{}.i32(1).raw("ab")), k), Error::Truncated);
}

// Parsing into the same struct again reuses its vectors and forgets old elements.
TEST(ParserReuse, ParsingAgainReplacesRepeatedFields) {
  DataRow row;
  const std::string first = encoded(DataRow{{"a"sv, "b"sv, "c"sv}});
  const std::string second = encoded(DataRow{{"z"sv}});
  ASSERT_EQ(parse(first, row), std::error_code{});
  ASSERT_EQ(parse(second, row), std::error_code{});
  EXPECT_EQ(row, (DataRow{{"z"sv}}));
}

// Error codes carry a readable message under the protocol category.
TEST(ProtocolError, CodesHaveMessages) {
  const std::error_code ec = Error::MissingTerminator;
  EXPECT_STREQ(ec.category().name(), "pgwarden.protocol");
  EXPECT_EQ(ec.message(), "string field without terminator");
}

}  // namespace
}  // namespace pgwarden::protocol
