// audit search: reviewers find who ran what, from where and whether it was
// allowed; a statement logged before it ran shows with its outcome; the
// terminal never receives control characters from the log.

#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <sstream>
#include <string>
#include <vector>

#include "audit/tools/search.hpp"
#include "audit_test_util.hpp"

namespace pgwarden::audit {
namespace {

namespace json = boost::json;
using namespace testing;
using namespace std::chrono;
using namespace std::chrono_literals;

const auto kNoon = sys_days{2024y / July / 1} + 12h;

SessionFields bob_session() {
  SessionFields s;
  s.session_id = "s-2";
  s.user = "bob";
  s.database = "shop";
  s.application_name = "app";
  s.client_addr = "10.20.0.7";
  return s;
}

struct Statement {
  SessionFields session;
  std::uint64_t id;
  std::string text;
  std::vector<std::string> tags;
  std::vector<std::string_view> classes;
  Decision decision = Decision::Allow;
  std::string rule{};
  Clock::time_point time = kNoon;
  bool result_follows = false;
};

std::string body_of(const Statement& st) {
  static const Outcome ok{3, "", "", 250};
  static const Outcome denied{-1, "42501", "permission denied by rule", 30};
  StatementRecord r;
  r.time = st.time;
  r.statement_id = st.id;
  r.text = st.text;
  r.command_tags = st.tags;
  r.classes = st.classes;
  r.decision = st.decision;
  r.rule = st.rule;
  if (!st.result_follows) r.outcome = st.decision == Decision::Deny ? &denied : &ok;
  RecordBuffer body;
  encode(st.session, r, EncodeOptions{}, body);
  return std::string(body.view());
}

/// alice: a read, a denied delete, a statement logged before it ran and its
/// result, her session's end; bob (another network, a day later): a denied DROP.
class AuditSearch : public ::testing::Test {
 protected:
  void SetUp() override {
    auto log = open_log(test_options(dir_.file("pgwarden.jsonl")));
    RecordBuffer body;
    encode(alice_session(), event::session_start, SessionEventRecord{kNoon, {}, {}, {}}, body);
    submit(*log, body);
    submit(*log, body_of({alice_session(), 1, "SELECT * FROM accounts", {"SELECT"}, {"READ"}}));
    submit(*log, body_of({alice_session(), 2, "DELETE FROM accounts", {"DELETE"}, {"WRITE"}, Decision::Deny,
                          "juniors-read-only"}));
    submit(*log, body_of({alice_session(), 3, "UPDATE accounts SET x = 1", {"UPDATE"}, {"WRITE"}, Decision::Allow, "",
                          kNoon, true}));
    StatementResultRecord result{kNoon + 1s, 3, Outcome{5, "", "", 1500}};
    encode(alice_session(), result, body);
    submit(*log, body);
    encode(alice_session(), SessionEndRecord{kNoon + 2s, 2000000, 10, 20, 3, "client_closed"}, body);
    submit(*log, body);
    submit(*log, body_of({bob_session(), 1, "DROP TABLE orders", {"DROP TABLE"}, {"DDL"}, Decision::Deny,
                          "no-drop-for-non-admins", kNoon + 24h}));
    log->close();
  }

  static void submit(AuditLog& log, std::string_view body) { ASSERT_EQ(log.submit(body), Admission::Accepted); }
  static void submit(AuditLog& log, const RecordBuffer& body) { submit(log, body.view()); }

  /// run_search over the log with `request` (files filled in); jsonl lines parsed.
  std::vector<json::object> search(SearchRequest request) {
    request.files = {dir_.path().string()};
    request.format = "jsonl";
    std::ostringstream out, err;
    EXPECT_EQ(run_search(request, out, err), 0) << err.str();
    std::vector<json::object> rows;
    std::istringstream lines(out.str());
    for (std::string line; std::getline(lines, line);) rows.push_back(json::parse(line).as_object());
    return rows;
  }

  static std::vector<std::string> events(const std::vector<json::object>& rows) {
    std::vector<std::string> out;
    for (const auto& r : rows) out.emplace_back(r.at("event").as_string());
    return out;
  }

  TempDir dir_;
};

// Without criteria every record shows once, oldest first; checkpoints do not.
TEST_F(AuditSearch, ShowsEveryEventButCheckpointsInOrder) {
  const auto rows = search({});
  EXPECT_EQ(events(rows), (std::vector<std::string>{"session.start", "statement", "statement", "statement",
                                                    "session.end", "statement"}));
  SearchRequest checkpoints;
  checkpoints.event = "checkpoint";
  EXPECT_EQ(search(checkpoints).size(), 1u);
}

// "What did alice get denied?"
TEST_F(AuditSearch, FiltersByUserAndDecision) {
  SearchRequest r;
  r.user = "alice";
  r.decision = "deny";
  const auto rows = search(r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("text").as_string(), "DELETE FROM accounts");
  EXPECT_EQ(rows[0].at("rule").as_string(), "juniors-read-only");
}

// A client criterion may be a network; time bounds are inclusive.
TEST_F(AuditSearch, FiltersByClientNetworkAndTime) {
  SearchRequest r;
  r.client = "10.20.0.0/16";
  auto rows = search(r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("user").as_string(), "bob");

  SearchRequest day;
  day.since = "2024-07-01T12:00:01Z";
  day.until = "2024-07-01T23:59:59Z";
  EXPECT_EQ(events(search(day)), (std::vector<std::string>{"session.end"}));
}

// Statement criteria: class, command tag (with a wildcard) and rule.
TEST_F(AuditSearch, FiltersByClassCommandAndRule) {
  SearchRequest by_class;
  by_class.class_name = "write";
  EXPECT_EQ(search(by_class).size(), 2u);
  SearchRequest by_command;
  by_command.command = "DROP *";
  auto rows = search(by_command);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("text").as_string(), "DROP TABLE orders");
  SearchRequest by_rule;
  by_rule.rule = "no-drop-for-non-admins";
  EXPECT_EQ(search(by_rule).size(), 1u);
  SearchRequest by_session;
  by_session.session = "s-2";
  EXPECT_EQ(search(by_session).size(), 1u);
}

// A statement logged before it ran shows as one row with its result.
TEST_F(AuditSearch, JoinsAStatementWithItsLaterResult) {
  SearchRequest r;
  r.command = "UPDATE";
  const auto rows = search(r);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].at("event").as_string(), "statement");
  EXPECT_EQ(rows[0].at("rows").as_int64(), 5);
  EXPECT_EQ(rows[0].at("duration_us").as_int64(), 1500);
  EXPECT_EQ(rows[0].at("result_seq").as_int64(), 6);
  EXPECT_FALSE(rows[0].contains("result_follows"));
}

// A result whose statement is in a file not given still shows, alone.
TEST_F(AuditSearch, ShowsAResultWhoseStatementIsNotInTheFilesRead) {
  auto lines = read_lines(dir_.file("pgwarden.jsonl"));
  lines.erase(lines.begin() + 4);  // the UPDATE
  write_lines(dir_.file("pgwarden.jsonl"), lines);
  SearchRequest r;
  r.user = "alice";
  EXPECT_EQ(events(search(r)),
            (std::vector<std::string>{"session.start", "statement", "statement", "statement.result", "session.end"}));
}

// The table has a header and one line per record; control characters in
// statement text are neutralised.
TEST_F(AuditSearch, TableIsReadableAndSafeForTerminals) {
  {
    Options o = test_options(dir_.file("pgwarden.jsonl"));
    auto log = open_log(o);
    submit(*log, body_of({bob_session(), 2, "SELECT '\x1b[2J\x1b]0;owned\x07'\n  FROM t", {"SELECT"}, {"READ"}}));
  }
  SearchRequest r;
  r.files = {dir_.path().string()};
  r.user = "bob";
  std::ostringstream out, err;
  ASSERT_EQ(run_search(r, out, err), 0) << err.str();
  std::istringstream text(out.str());
  std::vector<std::string> lines;
  for (std::string line; std::getline(text, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u) << out.str();
  EXPECT_EQ(lines[0].rfind("TIME", 0), 0u);
  EXPECT_NE(lines[1].find("deny no-drop-for-non-admins"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("DROP TABLE orders"), std::string::npos) << lines[1];
  EXPECT_EQ(out.str().find('\x1b'), std::string::npos) << "no escape sequence reaches the terminal";
  EXPECT_EQ(out.str().find('\x07'), std::string::npos);
  EXPECT_NE(lines[2].find("SELECT '?[2J?]0;owned?'   FROM t"), std::string::npos) << lines[2];
}

// Bad criteria are a usage error.
TEST_F(AuditSearch, RejectsMalformedCriteria) {
  for (auto set : {+[](SearchRequest& r) { r.decision = "maybe"; }, +[](SearchRequest& r) { r.since = "tomorrow"; },
                   +[](SearchRequest& r) { r.client = "10.0.0.0/99"; }, +[](SearchRequest& r) { r.format = "xml"; }}) {
    SearchRequest r;
    r.files = {dir_.path().string()};
    set(r);
    std::ostringstream out, err;
    EXPECT_EQ(run_search(r, out, err), 2);
    EXPECT_NE(err.str().find("error:"), std::string::npos);
  }
}

// The counts a failing log wrote in place of refused statements read as
// such in the table: how many, why, which statement ids, since when; and
// `--decision deny` finds them.
TEST(AuditSearchRefusals, ShowsCountedRefusalsInTheTable) {
  TempDir dir;
  auto log = open_log(test_options(dir.file("pgwarden.jsonl")));
  RecordBuffer body;
  encode(bob_session(), RefusalCountRecord{kNoon + 5s, kNoon, 3000, 4, 3003, "", "audit_unavailable", "58030"}, body);
  ASSERT_EQ(log->submit(body.view()), Admission::Accepted);
  log->close();
  SearchRequest request;
  request.files = {dir.path().string()};
  request.decision = "deny";
  std::ostringstream out, err;
  ASSERT_EQ(run_search(request, out, err), 0) << err.str();
  EXPECT_NE(out.str().find("3000 statements denied (audit_unavailable, statement_id 4..3003) since 2024-07-01T12:00:00"),
            std::string::npos)
      << out.str();
}

}  // namespace
}  // namespace pgwarden::audit

namespace pgwarden::audit {
namespace {

// "What did the person carol do, whatever role she used?" Two people share
// the role app; a role that logged in as itself has no person field.
TEST(AuditSearchPeople, FiltersByPersonAcrossRoles) {
  TempDir dir;
  auto log = open_log(test_options(dir.file("pgwarden.jsonl")));
  const std::vector<std::string> groups = {"dba"};
  SessionFields carol = alice_session();
  carol.session_id = "s-carol";
  carol.user = "app";
  carol.person = "carol@example.org";
  carol.person_groups = groups;
  carol.auth_method = "certificate";
  carol.grant = "dba-app";
  SessionFields dave = carol;
  dave.session_id = "s-dave";
  dave.person = "dave@example.com";
  SessionFields role = alice_session();
  role.user = "app";
  RecordBuffer body;
  for (const SessionFields* s : {&carol, &dave, &role}) {
    encode(*s, event::auth_ok, SessionEventRecord{kNoon, "scram-sha-256", {}, {}}, body);
    ASSERT_EQ(log->submit(body.view()), Admission::Accepted);
  }
  log->close();
  SearchRequest r;
  r.files = {dir.path().string()};
  r.person = "carol@example.org";
  r.format = "jsonl";
  std::ostringstream out, err;
  ASSERT_EQ(run_search(r, out, err), 0) << err.str();
  const json::object row = json::parse(out.str()).as_object();
  EXPECT_EQ(row.at("session_id").as_string(), "s-carol");
  EXPECT_EQ(row.at("user").as_string(), "app");
  EXPECT_EQ(row.at("auth_method").as_string(), "certificate");
  EXPECT_EQ(row.at("auth_mechanism").as_string(), "scram-sha-256");

  r.format = "table";
  std::ostringstream table, err2;
  ASSERT_EQ(run_search(r, table, err2), 0) << err2.str();
  EXPECT_NE(table.str().find("carol@example.org as app"), std::string::npos) << table.str();
  EXPECT_NE(table.str().find("certificate (scram-sha-256), grant dba-app"), std::string::npos) << table.str();
  EXPECT_EQ(table.str().find("dave"), std::string::npos);
}

}  // namespace
}  // namespace pgwarden::audit
