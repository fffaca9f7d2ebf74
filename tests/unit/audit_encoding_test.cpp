// Audit record encoding: whatever a client sends, each record body is one
// valid JSON object holding exactly the text it was given (with passwords
// and, on request, constants redacted), and timestamps read back as written.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <string>
#include <vector>

#include "audit/json_writer.hpp"
#include "audit/record.hpp"
#include "audit/redact.hpp"
#include "audit/time_format.hpp"
#include "audit_test_util.hpp"

namespace pgwarden::audit {
namespace {

namespace json = boost::json;
using namespace std::chrono;
using namespace std::chrono_literals;

/// The string `s` becomes once written as JSON and parsed back.
std::string round_trip(std::string_view s) {
  RecordBuffer out;
  append_json_string(out, s);
  std::error_code ec;
  json::value v = json::parse(out.view(), ec);
  EXPECT_FALSE(ec) << "not valid JSON: " << out.view();
  return ec || !v.is_string() ? std::string("<invalid>") : std::string(v.get_string());
}

json::object parse_object(const RecordBuffer& buffer) {
  const std::string_view body = buffer.view();
  std::error_code ec;
  json::value v = json::parse(body, ec);
  EXPECT_FALSE(ec) << body;
  return ec || !v.is_object() ? json::object{} : v.get_object();
}

// Quotes, backslashes and every control character survive a round trip.
TEST(AuditJson, QuotesBackslashesAndControlCharactersRoundTrip) {
  std::string all_controls;
  for (int c = 0; c < 0x20; ++c) all_controls.push_back(static_cast<char>(c));
  all_controls += "\x7f\"\\/";
  EXPECT_EQ(round_trip(all_controls), all_controls);
  EXPECT_EQ(round_trip("SELECT 'it''s' AS \"x\""), "SELECT 'it''s' AS \"x\"");
}

// Valid UTF-8 is kept as it is; every byte of invalid UTF-8 becomes U+FFFD,
// so a client sending garbage cannot make the log unparseable.
TEST(AuditJson, InvalidUtf8BecomesReplacementCharacters) {
  EXPECT_EQ(round_trip("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  const std::string fffd = "\xef\xbf\xbd";
  EXPECT_EQ(round_trip("a\x80" "b"), "a" + fffd + "b");                 // lone continuation byte
  EXPECT_EQ(round_trip("\xc0\xaf"), fffd + fffd);                      // overlong '/'
  EXPECT_EQ(round_trip("\xed\xa0\x80"), fffd + fffd + fffd);           // UTF-16 surrogate
  EXPECT_EQ(round_trip("end\xe2\x82"), "end" + fffd + fffd);           // truncated sequence
  EXPECT_EQ(round_trip("\xf4\x90\x80\x80"), fffd + fffd + fffd + fffd);  // above U+10FFFF
  EXPECT_EQ(round_trip("\xff"), fffd);
}

// Plain text is copied eight bytes at a time; a byte that needs escaping is
// found at every position of such a word.
TEST(AuditJson, EscapesASpecialByteAtEveryOffset) {
  for (const std::string special : {"\"", "\\", "\x01", "\x1f", "\x7f", "\xff", "\xc3\xa9"}) {
    for (std::size_t at = 0; at < 17; ++at) {
      std::string s(17, 'a');
      s.replace(at, 1, special);
      const std::string expected = special == "\xff" ? std::string(s).replace(at, 1, "\xef\xbf\xbd") : s;
      EXPECT_EQ(round_trip(s), expected) << "special byte at " << at;
    }
  }
}

// Timestamps are RFC 3339 UTC with microseconds and parse back to the same instant.
TEST(AuditTime, FormatsMicrosecondsInUtcAndParsesBack) {
  const auto t = sys_days{2024y / July / 1} + 12h + 3min + 4s + 5us;
  std::string s;
  append_rfc3339(s, t);
  EXPECT_EQ(s, "2024-07-01T12:03:04.000005Z");
  Micros back;
  ASSERT_TRUE(parse_rfc3339(s, back));
  EXPECT_EQ(back, t);
  ASSERT_TRUE(parse_rfc3339("2024-07-01", back));
  EXPECT_EQ(back, sys_days{2024y / July / 1});
  ASSERT_TRUE(parse_rfc3339("2024-07-01 14:03+02:00", back));
  EXPECT_EQ(back, sys_days{2024y / July / 1} + 12h + 3min);
  EXPECT_FALSE(parse_rfc3339("2024-13-01", back));
  EXPECT_FALSE(parse_rfc3339("yesterday", back));
  EXPECT_FALSE(parse_rfc3339("2024-07-01T12", back));
}

// A statement record carries every field of the schema with the values given.
TEST(AuditRecord, StatementRecordCarriesDecisionObjectsAndOutcome) {
  const std::vector<std::string> tags = {"DELETE"};
  const std::vector<std::string_view> classes = {"WRITE"};
  const std::vector<ObjectName> objects = {{"public", "accounts", "write"}, {"", "t", "read"}};
  Outcome outcome{-1, "42501", "permission denied: rule juniors-read-only", 85};
  StatementRecord r;
  r.time = sys_days{2024y / July / 1} + 12h;
  r.statement_id = 7;
  r.text = "DELETE FROM accounts";
  r.command_tags = tags;
  r.classes = classes;
  r.objects = objects;
  r.decision = Decision::Deny;
  r.rule = "juniors-read-only";
  r.alert = true;
  r.outcome = &outcome;
  RecordBuffer body;
  encode(testing::alice_session(), r, EncodeOptions{}, body);
  const json::object o = parse_object(body);
  EXPECT_EQ(o.at("schema_version").as_int64(), 1);
  EXPECT_EQ(o.at("time").as_string(), "2024-07-01T12:00:00.000000Z");
  EXPECT_EQ(o.at("event").as_string(), "statement");
  EXPECT_EQ(o.at("user").as_string(), "alice");
  EXPECT_EQ(o.at("client_addr").as_string(), "10.10.0.5");
  EXPECT_EQ(o.at("client_port").as_int64(), 50123);
  EXPECT_EQ(o.at("decision").as_string(), "deny");
  EXPECT_EQ(o.at("rule").as_string(), "juniors-read-only");
  EXPECT_EQ(o.at("alert").as_bool(), true);
  EXPECT_EQ(o.at("dry_run").as_bool(), false);
  EXPECT_EQ(o.at("sqlstate").as_string(), "42501");
  EXPECT_EQ(o.at("duration_us").as_int64(), 85);
  EXPECT_FALSE(o.contains("rows")) << "no CommandComplete, no row count";
  EXPECT_FALSE(o.contains("result_follows"));
  EXPECT_EQ(json::serialize(o.at("objects")),
            R"([{"schema":"public","name":"accounts","access":"write"},{"name":"t","access":"read"}])");
  EXPECT_EQ(json::serialize(o.at("command_tags")), R"(["DELETE"])");
  EXPECT_EQ(json::serialize(o.at("classes")), R"(["WRITE"])");
}

// A session encodes its own members and a statement's classification once
// and copies them into later records: the bytes are those of encoding every
// field each time, for every kind of record that takes them.
TEST(AuditRecord, MembersEncodedOnceGiveTheSameBytes) {
  const std::vector<std::string> tags = {"EXPLAIN", "DELETE"};
  const std::vector<std::string_view> classes = {"READ", "WRITE"};
  const std::vector<ObjectName> objects = {{"public", "accounts", "write"}, {"", "t\"x", "read"}};
  SessionFields session = testing::alice_session();
  session.application_name = "app \"quoted\" \xff";
  RecordBuffer session_json;
  encode_members(session, session_json);
  SessionFields copied;
  copied.encoded = session_json.view();

  for (const bool unparseable : {false, true}) {
    StatementRecord r;
    r.time = sys_days{2024y / July / 1} + 12h;
    r.statement_id = 7;
    r.protocol = Protocol::Extended;
    r.text = "EXPLAIN ANALYZE DELETE FROM accounts";
    r.statement_name = "s1";
    r.command_tags = tags;
    r.classes = classes;
    r.objects = objects;
    r.unparseable = unparseable;
    r.rule = "admins";
    Outcome outcome{3, "", "", 12};
    r.outcome = &outcome;
    RecordBuffer expected, classification, actual;
    encode(session, r, EncodeOptions{ParameterMode::Redacted, false}, expected);
    encode_classification(r, classification);
    StatementRecord from_copies = r;
    from_copies.command_tags = {};
    from_copies.classes = {};
    from_copies.objects = {};
    from_copies.unparseable = false;
    from_copies.encoded_classification = classification.view();
    encode(copied, from_copies, EncodeOptions{ParameterMode::Redacted, false}, actual);
    EXPECT_EQ(actual.view(), expected.view());
    EXPECT_NE(expected.view().find(R"("command_tags":["EXPLAIN","DELETE"])"), std::string_view::npos) << expected.view();
    EXPECT_EQ(parse_object(actual).contains("unparseable"), unparseable);
  }

  StatementResultRecord result{sys_days{2024y / July / 1} + 12h, 7, Outcome{1, "", "", 5}};
  RecordBuffer expected, actual;
  encode(session, result, expected);
  encode(copied, result, actual);
  EXPECT_EQ(actual.view(), expected.view());
  EXPECT_EQ(parse_object(actual).at("application_name").as_string(), "app \"quoted\" \xef\xbf\xbd");
}

// Logged before it runs (synced durability), a statement says its result
// follows; the statement.result record links back by statement_id.
TEST(AuditRecord, StatementBeforeItRunsSaysResultFollows) {
  StatementRecord r;
  r.statement_id = 3;
  r.protocol = Protocol::Extended;
  r.text = "SELECT $1";
  r.statement_name = "s1";
  RecordBuffer body;
  encode(testing::alice_session(), r, EncodeOptions{}, body);
  json::object o = parse_object(body);
  EXPECT_EQ(o.at("result_follows").as_bool(), true);
  EXPECT_FALSE(o.contains("duration_us"));
  EXPECT_EQ(o.at("protocol").as_string(), "extended");
  EXPECT_EQ(o.at("statement_name").as_string(), "s1");
  EXPECT_EQ(o.at("portal_name").as_string(), "") << "the unnamed portal";

  StatementResultRecord result;
  result.statement_id = 3;
  result.outcome.rows = 42;
  result.outcome.duration_us = 900;
  encode(testing::alice_session(), result, body);
  o = parse_object(body);
  EXPECT_EQ(o.at("event").as_string(), "statement.result");
  EXPECT_EQ(o.at("statement_id").as_int64(), 3);
  EXPECT_EQ(o.at("rows").as_int64(), 42);
}

// audit.parameters: none writes nothing, redacted only the count, full the
// values (NULL as null, binary ones as hex).
TEST(AuditRecord, ParametersFollowTheConfiguredMode) {
  // A value no timestamp or other field could contain by chance.
  const std::vector<Parameter> params = {{"secret-value-q7", false, false}, {"", true, false}, {"\x01\xff", false, true}};
  StatementRecord r;
  r.protocol = Protocol::Extended;
  r.text = "SELECT $1, $2, $3";
  r.parameters = params;
  RecordBuffer body;
  encode(testing::alice_session(), r, EncodeOptions{ParameterMode::None, false}, body);
  EXPECT_FALSE(parse_object(body).contains("parameter_count"));
  encode(testing::alice_session(), r, EncodeOptions{ParameterMode::Redacted, false}, body);
  json::object o = parse_object(body);
  EXPECT_EQ(o.at("parameter_count").as_int64(), 3);
  EXPECT_FALSE(o.contains("parameters"));
  EXPECT_EQ(body.view().find("secret-value-q7"), std::string::npos);
  encode(testing::alice_session(), r, EncodeOptions{ParameterMode::Full, false}, body);
  EXPECT_EQ(json::serialize(parse_object(body).at("parameters")), R"(["secret-value-q7",null,{"binary":"01ff"}])");
}

// Every other event encodes to a valid object with its own fields.
TEST(AuditRecord, SessionEventsEncodeTheirFields) {
  RecordBuffer body;
  SessionEventRecord fail;
  fail.sqlstate = "28P01";
  fail.message = "password authentication failed for user \"alice\"";
  encode(testing::alice_session(), event::auth_fail, fail, body);
  json::object o = parse_object(body);
  EXPECT_EQ(o.at("event").as_string(), "auth.fail");
  EXPECT_EQ(o.at("sqlstate").as_string(), "28P01");
  EXPECT_EQ(o.at("message").as_string(), "password authentication failed for user \"alice\"");

  SessionEndRecord end{{}, 1500000, 300, 4000, 12, "client_closed"};
  encode(testing::alice_session(), end, body);
  o = parse_object(body);
  EXPECT_EQ(o.at("bytes_to_client").as_int64(), 4000);
  EXPECT_EQ(o.at("close_reason").as_string(), "client_closed");

  CancelRecord cancel{{}, "10.10.0.9", 40000, true};
  encode(testing::alice_session(), cancel, body);
  EXPECT_EQ(parse_object(body).at("requester_addr").as_string(), "10.10.0.9");

  ConfigReloadRecord reload{{}, "/etc/pgwarden.yaml", false, "line 3: unknown key"};
  encode(reload, body);
  o = parse_object(body);
  EXPECT_EQ(o.at("ok").as_bool(), false);
  EXPECT_FALSE(o.contains("user")) << "a reload belongs to no session";
}

// A person's session names the person, their groups, how they logged in and
// the grant in every record, beside the role; once encoded or not, the same
// bytes; an auth event then keeps the wire mechanism apart, so no record has
// auth_method twice.
TEST(AuditRecord, PersonFieldsAreWrittenBesideTheRole) {
  const std::vector<std::string> groups = {"dba", "on-call"};
  SessionFields s = testing::alice_session();
  s.user = "app";
  s.person = "alice@example.com";
  s.person_groups = groups;
  s.auth_method = "certificate";
  s.grant = "dba-app";
  RecordBuffer body;
  encode(s, event::auth_ok, SessionEventRecord{{}, "scram-sha-256-plus", {}, {}}, body);
  const std::string direct(body.view());
  json::object o = parse_object(body);
  EXPECT_EQ(o.at("user").as_string(), "app");
  EXPECT_EQ(o.at("person").as_string(), "alice@example.com");
  EXPECT_EQ(json::serialize(o.at("person_groups")), R"(["dba","on-call"])");
  EXPECT_EQ(o.at("auth_method").as_string(), "certificate");
  EXPECT_EQ(o.at("auth_mechanism").as_string(), "scram-sha-256-plus");
  EXPECT_EQ(o.at("grant").as_string(), "dba-app");
  EXPECT_EQ(direct.find("\"auth_method\"", direct.find("\"auth_method\"") + 1), std::string::npos) << direct;

  RecordBuffer members;
  encode_members(s, members);
  SessionFields encoded;
  encoded.encoded = members.view();
  encode(encoded, event::auth_ok, SessionEventRecord{{}, "scram-sha-256-plus", {}, {}}, body);
  o = parse_object(body);
  EXPECT_EQ(o.at("auth_method").as_string(), "certificate");
  EXPECT_EQ(o.at("auth_mechanism").as_string(), "scram-sha-256-plus");

  // Before authentication (no person yet) and for a role that logged in as
  // itself without the session naming a person: as before.
  encode(testing::alice_session(), event::auth_ok, SessionEventRecord{{}, "trust", {}, {}}, body);
  o = parse_object(body);
  EXPECT_EQ(o.at("auth_method").as_string(), "trust");
  EXPECT_FALSE(o.contains("person"));
  EXPECT_FALSE(o.contains("auth_mechanism"));
  EXPECT_FALSE(o.contains("grant"));

  // A role with auth: scram is its own person: no grant, an empty group list.
  SessionFields role = testing::alice_session();
  role.person = role.user;
  role.auth_method = "scram";
  encode(role, SessionEndRecord{{}, 1, 2, 3, 4, "client_closed"}, body);
  o = parse_object(body);
  EXPECT_EQ(o.at("person").as_string(), "alice");
  EXPECT_EQ(json::serialize(o.at("person_groups")), "[]");
  EXPECT_FALSE(o.contains("grant"));
}

// Passwords never reach the log, however the role statement is written.
TEST(AuditRedact, PasswordsInRoleStatementsAreAlwaysRedacted) {
  std::string scratch;
  EXPECT_EQ(redact_sql("CREATE ROLE bob LOGIN PASSWORD 'hunter2'", false, scratch),
            "CREATE ROLE bob LOGIN PASSWORD '***'");
  EXPECT_EQ(redact_sql("alter user bob with encrypted password E'hun\\'ter2' valid until '2030-01-01'", false, scratch),
            "alter user bob with encrypted password '***' valid until '2030-01-01'");
  EXPECT_EQ(redact_sql("ALTER ROLE bob PASSWORD /* c */ $pw$hunter2$pw$", false, scratch),
            "ALTER ROLE bob PASSWORD /* c */ '***'");
  EXPECT_EQ(redact_sql("CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password 'hunter2')", false, scratch),
            "CREATE USER MAPPING FOR bob SERVER s OPTIONS (user 'bob', password '***')");
  EXPECT_EQ(redact_sql("CREATE SUBSCRIPTION s CONNECTION 'host=db password=hunter2' PUBLICATION p", false, scratch),
            "CREATE SUBSCRIPTION s CONNECTION '***' PUBLICATION p");
}

// The word password inside a literal, an identifier or a comment is not a
// keyword: the text is logged unchanged.
TEST(AuditRedact, PasswordInLiteralsOrIdentifiersIsNotAKeyword) {
  std::string scratch;
  for (const char* sql : {"SELECT 'password' FROM t", "SELECT \"password\", 'x' FROM users",
                          "SELECT password_hash, 'x' FROM users", "SELECT 1 -- password 'x'\n"})
    EXPECT_EQ(redact_sql(sql, false, scratch), sql);
  const char* plain = "SELECT abalance FROM pgbench_accounts WHERE aid = 5";
  EXPECT_EQ(redact_sql(plain, false, scratch).data(), plain) << "no copy without a password";
}

// A password written without quotes (a syntax error, yet the secret is in
// the text), or in a literal left open, is redacted too; a password column
// in an ordinary statement is not a role option.
TEST(AuditRedact, MalformedPasswordsInRoleStatementsAreRedacted) {
  std::string scratch;
  EXPECT_EQ(redact_sql("ALTER USER bob PASSWORD hunter2secret", false, scratch), "ALTER USER bob PASSWORD '***'");
  EXPECT_EQ(redact_sql("create role bob password 12345678 login", false, scratch),
            "create role bob password '***' login");
  EXPECT_EQ(redact_sql("CREATE USER bob WITH ENCRYPTED PASSWORD 'hunter2secret", false, scratch),
            "CREATE USER bob WITH ENCRYPTED PASSWORD '***'");
  EXPECT_EQ(redact_sql("ALTER ROLE bob PASSWORD NULL", false, scratch), "ALTER ROLE bob PASSWORD NULL");
  for (const char* sql : {"SELECT password FROM users", "SELECT password 1 FROM users"})
    EXPECT_EQ(redact_sql(sql, false, scratch), sql);
}

// A parser error quotes where parsing stopped: for a text that may hold a
// password the quote is left out, for any other text the message stays.
TEST(AuditRedact, ParseErrorsOfPasswordStatementsDoNotQuoteThem) {
  EXPECT_EQ(redact_parse_error("ALTER USER x PASSWORD hunter2secret",
                               "syntax error at or near \"hunter2secret\" at position 23"),
            "syntax error at or near (not shown: the text may hold a password) at position 23");
  EXPECT_EQ(redact_parse_error("CREATE USER x PASSWORD 'hunter2", "unterminated quoted string at or near \"'hunter2\""),
            "unterminated quoted string at or near (not shown: the text may hold a password)");
  EXPECT_EQ(redact_parse_error("SELEC 1", "syntax error at or near \"SELEC\" at position 1"),
            "syntax error at or near \"SELEC\" at position 1");
}

// redact_literals turns every constant into `?` and keeps the rest.
TEST(AuditRedact, LiteralRedactionReplacesEveryConstant) {
  std::string scratch;
  EXPECT_EQ(redact_sql("SELECT * FROM t WHERE a = 'x''y' AND b > 3.5e2 AND c = $1 AND d = E'\\n' AND t1.e = -7",
                       true, scratch),
            "SELECT * FROM t WHERE a = ? AND b > ? AND c = $1 AND d = ? AND t1.e = -?");
  EXPECT_EQ(redact_sql("SELECT $$a 'b' c$$, x'1F', \"Col 'q'\" FROM t", true, scratch),
            "SELECT ?, ?, \"Col 'q'\" FROM t");
  EXPECT_EQ(redact_sql("ALTER ROLE r PASSWORD 'p'", true, scratch), "ALTER ROLE r PASSWORD ?");
}

// Statement text in a record goes through the same redaction.
TEST(AuditRecord, StatementTextIsRedactedInTheRecord) {
  StatementRecord r;
  r.text = "ALTER ROLE bob PASSWORD 'hunter2'";
  RecordBuffer body;
  encode(testing::alice_session(), r, EncodeOptions{}, body);
  EXPECT_EQ(body.view().find("hunter2"), std::string::npos);
  EXPECT_EQ(parse_object(body).at("text").as_string(), "ALTER ROLE bob PASSWORD '***'");
  r.text = "SELECT * FROM t WHERE id = 42";
  encode(testing::alice_session(), r, EncodeOptions{ParameterMode::None, true}, body);
  EXPECT_EQ(parse_object(body).at("text").as_string(), "SELECT * FROM t WHERE id = ?");
}

}  // namespace
}  // namespace pgwarden::audit
