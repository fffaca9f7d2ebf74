// Rule evaluator: every security regression as a named scenario. Policies are
// inline YAML loaded through config/; statement facts are built by hand so
// these tests do not depend on the classifier.

#include <gtest/gtest.h>

#include <chrono>
#include <initializer_list>
#include <string>

#include "config/config.hpp"
#include "policy/cidr.hpp"
#include "policy/classifier.hpp"
#include "policy/evaluator.hpp"
#include <boost/json.hpp>
#include <gmock/gmock.h>

#include "policy/explain.hpp"
#include "policy/glob.hpp"
#include "policy/time_zone.hpp"

namespace pgwarden::policy {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;

config::ConfigPtr load(const std::string& policy_yaml) {
  auto r = config::load_config_string(
      "listen: 127.0.0.1:6432\nupstream: {host: 127.0.0.1, port: 5432, tls: disable}\n" + policy_yaml,
      "policy_test.yaml");
  for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
  return r.config;
}

// The postmortem policy of examples/pgwarden.yaml, in short.
const char* kPostmortemPolicy = R"(
environment: production
networks:
  dev_hosts: [10.20.0.0/16, "fd00:20::/32"]
  admin_hosts: [10.10.0.0/24]
groups:
  admins: [alice, dba]
  juniors: [bob, carol]
rules:
  - name: no-drop-for-non-admins
    when: { command: ["DROP *", TRUNCATE], user_not_in: admins }
    action: deny
  - name: prod-credentials-from-dev-hosts
    when: { client_in: dev_hosts, class: [DDL, WRITE, ROLE], environment: production }
    action: deny
  - name: juniors-read-only
    when: { user_in: juniors, class: [WRITE, DDL, ROLE, FUNCTION] }
    action: deny
    message: read-only access
  - name: alert-on-ddl
    when: { class: [DDL] }
    action: allow
    alert: true
default: allow
)";

SessionFacts session(std::string user, std::string client = "10.10.0.5") {
  SessionFacts s;
  s.user = std::move(user);
  s.database = "app";
  s.application_name = "psql";
  if (!client.empty()) s.client = IpAddress::parse(client);
  s.environment = "production";
  s.now = sys_days{2024y / July / 1} + 12h;
  return s;
}

StatementFacts statement(std::string tag, std::initializer_list<StatementClass> classes,
                         std::initializer_list<ObjectRef> objects = {}) {
  StatementFacts f;
  f.command_tag = tag;
  f.effective_tags = {tag};
  for (auto c : classes) f.classes.insert(c);
  f.objects = objects;
  return f;
}

StatementFacts select_accounts() { return statement("SELECT", {StatementClass::Read}, {{"", "accounts", Access::Read}}); }
StatementFacts drop_table() { return statement("DROP TABLE", {StatementClass::Ddl}, {{"", "accounts", Access::Ddl}}); }
StatementFacts insert_accounts() {
  return statement("INSERT", {StatementClass::Write}, {{"public", "accounts", Access::Write}});
}
StatementFacts unparseable() {
  StatementFacts f;
  f.unparseable = true;
  f.parse_error = "syntax error at or near \"DRPO\"";
  return f;
}

struct Case {
  const char* scenario;
  const char* user;
  const char* client;
  StatementFacts facts;
  Action expected;
  const char* rule;
};

// A junior can read but not change anything; nobody but admins drops; production
// credentials change nothing from a developer network.
TEST(Policy, PostmortemPolicyTable) {
  auto cfg = load(kPostmortemPolicy);
  ASSERT_TRUE(cfg);
  const Case cases[] = {
      {"junior may select", "bob", "10.10.0.5", select_accounts(), Action::Allow, ""},
      {"junior may not insert", "bob", "10.10.0.5", insert_accounts(), Action::Deny, "juniors-read-only"},
      {"junior may not drop", "bob", "10.10.0.5", drop_table(), Action::Deny, "no-drop-for-non-admins"},
      {"junior may not grant", "carol", "10.10.0.5", statement("GRANT", {StatementClass::Role}), Action::Deny,
       "juniors-read-only"},
      {"junior may not call functions", "carol", "10.10.0.5", statement("SELECT", {StatementClass::Read, StatementClass::Function}),
       Action::Deny, "juniors-read-only"},
      {"developer may not truncate", "dev1", "10.10.0.5", statement("TRUNCATE TABLE", {StatementClass::Write}),
       Action::Deny, "no-drop-for-non-admins"},
      {"admin may drop from admin net", "alice", "10.10.0.5", drop_table(), Action::Allow, "alert-on-ddl"},
      {"admin may not drop from dev net", "alice", "10.20.3.4", drop_table(), Action::Deny,
       "prod-credentials-from-dev-hosts"},
      {"admin may not insert from IPv6 dev net", "dba", "fd00:20::7", insert_accounts(), Action::Deny,
       "prod-credentials-from-dev-hosts"},
      {"admin may read from dev net", "alice", "10.20.3.4", select_accounts(), Action::Allow, ""},
  };
  for (const auto& c : cases) {
    const Decision d = evaluate(cfg->policy, session(c.user, c.client), c.facts);
    EXPECT_EQ(d.action, c.expected) << c.scenario;
    EXPECT_EQ(d.rule_name(), c.rule) << c.scenario;
  }
}

// Postmortem 1: a non-admin's DROP is refused like a server-side permission error.
// Deciding the session-level conditions once per session (the mask) never
// changes a decision: every session x statement pair of the postmortem
// policy decides the same with and without it.
TEST(Policy, SessionMaskGivesTheSameDecisionsAsFullEvaluation) {
  auto cfg = load(kPostmortemPolicy);
  const std::vector<SessionFacts> sessions = {session("alice"), session("bob"), session("carol", "10.20.1.1"),
                                              session("dba", "10.20.3.4"), session("mallory", "192.168.1.9"),
                                              session("bob", "")};
  const std::vector<StatementFacts> statements = {select_accounts(), drop_table(), insert_accounts(),
                                                  unparseable()};
  for (const auto& s : sessions) {
    const SessionMask mask = session_mask(cfg->policy, s);
    for (const auto& f : statements) {
      ClassifiedText text;
      text.statements = {f};
      const Decision full = evaluate(cfg->policy, s, text);
      const Decision masked = evaluate(cfg->policy, s, text, mask);
      EXPECT_EQ(full.action, masked.action) << s.user << " " << f.command_tag;
      EXPECT_EQ(full.rule, masked.rule) << s.user << " " << f.command_tag;
      EXPECT_EQ(full.dry_run_rule, masked.dry_run_rule) << s.user << " " << f.command_tag;
      EXPECT_EQ(full.alert, masked.alert) << s.user << " " << f.command_tag;
    }
  }
}

TEST(Policy, DropIsDeniedForNonAdmins) {
  auto cfg = load(kPostmortemPolicy);
  const Decision d = evaluate(cfg->policy, session("dev1"), drop_table());
  ASSERT_TRUE(d.denied());
  EXPECT_EQ(d.sqlstate, "42501");
  EXPECT_NE(d.message.find("no-drop-for-non-admins"), std::string_view::npos) << d.message;
  EXPECT_TRUE(evaluate(cfg->policy, session("dba"), drop_table()).action == Action::Allow);
}

// Postmortem 2: the same credential may write from the admin network only.
TEST(Policy, DevNetworkCannotWriteWithProductionCredentials) {
  auto cfg = load(kPostmortemPolicy);
  EXPECT_TRUE(evaluate(cfg->policy, session("alice", "10.20.0.9"), insert_accounts()).denied());
  EXPECT_FALSE(evaluate(cfg->policy, session("alice", "10.10.0.9"), insert_accounts()).denied());
  // An IPv4 client seen through a dual-stack socket is still on the dev network.
  EXPECT_TRUE(evaluate(cfg->policy, session("alice", "::ffff:10.20.0.9"), insert_accounts()).denied());
  // The environment condition: the same policy guarding staging lets it through.
  auto staging = session("alice", "10.20.0.9");
  staging.environment = "staging";
  EXPECT_FALSE(evaluate(cfg->policy, staging, insert_accounts()).denied());
}

// A DELETE hidden behind EXPLAIN ANALYZE is matched through effective_tags.
TEST(Policy, DeleteInsideExplainIsMatchedByItsEffectiveTag) {
  auto cfg = load(R"(
rules:
  - { name: no-delete, when: { command: DELETE }, action: deny }
)");
  auto f = statement("EXPLAIN", {StatementClass::Read, StatementClass::Write});
  f.effective_tags = {"EXPLAIN", "DELETE"};
  EXPECT_TRUE(evaluate(cfg->policy, session("x"), f).denied());
  EXPECT_FALSE(evaluate(cfg->policy, session("x"), select_accounts()).denied());
}

// enforce: false records what the rule would have done and changes nothing.
TEST(Policy, DryRunRuleDoesNotDeny) {
  auto cfg = load(R"(
rules:
  - name: no-where-less-delete
    when: { update_or_delete_without_where: true }
    action: deny
    enforce: false
    alert: true
)");
  auto f = statement("DELETE", {StatementClass::Write});
  f.update_or_delete_without_where = true;
  const Decision d = evaluate(cfg->policy, session("bob"), f);
  EXPECT_EQ(d.action, Action::Allow);
  EXPECT_EQ(d.reason, DecisionReason::Default);
  EXPECT_TRUE(d.dry_run);
  ASSERT_NE(d.dry_run_rule, nullptr);
  EXPECT_EQ(d.dry_run_rule->name, "no-where-less-delete");
  EXPECT_TRUE(d.alert);
  f.update_or_delete_without_where = false;
  EXPECT_FALSE(evaluate(cfg->policy, session("bob"), f).dry_run);
}

// "SELECT 1; DROP TABLE accounts" runs nothing: the denial covers the message.
TEST(Policy, OneDeniedStatementDeniesTheWholeMessage) {
  auto cfg = load(kPostmortemPolicy);
  ClassifiedText text;
  text.statements = {select_accounts(), drop_table(), select_accounts()};
  MatchTrace trace;
  const Decision d = evaluate(cfg->policy, session("bob"), text, &trace);
  EXPECT_TRUE(d.denied());
  EXPECT_EQ(d.statement, 1u);
  EXPECT_EQ(d.rule_name(), "no-drop-for-non-admins");
  EXPECT_EQ(trace.size(), 3u);  // the DROP matched two deny rules and alert-on-ddl
  text.statements = {select_accounts(), select_accounts()};
  EXPECT_FALSE(evaluate(cfg->policy, session("bob"), text).denied());
}

// Text the classifier cannot parse is denied to anyone a deny rule covers, even
// though nothing is known about it (it might be a DROP).
TEST(Policy, UnparseableIsDeniedWhenADenyRuleCouldCover) {
  auto cfg = load(kPostmortemPolicy);
  MatchTrace trace;
  const Decision d = evaluate(cfg->policy, session("bob"), unparseable(), &trace);
  EXPECT_TRUE(d.denied());
  ASSERT_FALSE(trace.empty());
  EXPECT_TRUE(trace.front().fail_closed);
  // Admins from the admin network are covered by no deny rule's session part.
  EXPECT_FALSE(evaluate(cfg->policy, session("alice", "10.10.0.1"), unparseable()).denied());
  // From a dev network the prod-credentials rule covers them again.
  EXPECT_TRUE(evaluate(cfg->policy, session("alice", "10.20.0.1"), unparseable()).denied());
}

// A rule may name unparseable text directly, and an allow rule cannot open it
// to anyone a deny rule covers.
TEST(Policy, UnparseableConditionMatchesOnlyUnparseableText) {
  auto cfg = load(R"(
rules:
  - { name: no-garbage, when: { unparseable: true }, action: deny }
)");
  EXPECT_TRUE(evaluate(cfg->policy, session("x"), unparseable()).denied());
  EXPECT_FALSE(evaluate(cfg->policy, session("x"), select_accounts()).denied());
}

// Fast-path function calls bypass SQL, so they need an explicit allow.
TEST(Policy, FunctionCallPathDeniedUnlessAllowed) {
  auto open = load("default: allow\n");
  auto s = session("alice");
  s.protocol = ProtocolPath::FunctionCall;
  const Decision d = evaluate(open->policy, s, statement("FUNCTION CALL", {StatementClass::Function}));
  EXPECT_TRUE(d.denied());
  EXPECT_EQ(d.reason, DecisionReason::FunctionCallNotAllowed);
  auto allowing = load(R"(
groups: { admins: [alice] }
rules:
  - { name: fastpath-for-admins, when: { user_in: admins, protocol: function_call }, action: allow }
  - { name: everyone, action: allow }
)");
  EXPECT_FALSE(evaluate(allowing->policy, s, statement("FUNCTION CALL", {StatementClass::Function})).denied());
  s.user = "mallory";  // matched only by the catch-all allow, which does not name the path
  EXPECT_TRUE(evaluate(allowing->policy, s, statement("FUNCTION CALL", {StatementClass::Function})).denied());
}

// Replication connections stream the whole database: refused unless allowed.
TEST(Policy, ReplicationConnectionDeniedUnlessAllowed) {
  auto cfg = load(R"(
groups: { replicators: [repl] }
rules:
  - { name: standby, on: connect, when: { user_in: replicators, protocol: replication }, action: allow }
)");
  auto s = session("repl");
  s.protocol = ProtocolPath::Replication;
  EXPECT_FALSE(evaluate_connect(cfg->policy, s).denied());
  s.user = "alice";
  const Decision d = evaluate_connect(cfg->policy, s);
  EXPECT_TRUE(d.denied());
  EXPECT_EQ(d.reason, DecisionReason::ReplicationNotAllowed);
  EXPECT_EQ(d.sqlstate, "28000");
  s.protocol = ProtocolPath::Simple;
  EXPECT_FALSE(evaluate_connect(cfg->policy, s).denied());
}

// on: connect refuses a user from a network at startup with FATAL 28000.
TEST(Policy, ConnectRuleRefusesProductionLoginFromDevNetwork) {
  auto cfg = load(R"(
networks: { dev: [10.20.0.0/16] }
rules:
  - { name: no-root-from-laptops, on: connect, when: { user: [postgres, "admin*"], client_in: dev }, action: deny }
)");
  const Decision d = evaluate_connect(cfg->policy, session("admin_jane", "10.20.1.1"));
  EXPECT_TRUE(d.denied());
  EXPECT_EQ(d.sqlstate, "28000");
  EXPECT_FALSE(evaluate_connect(cfg->policy, session("admin_jane", "10.30.1.1")).denied());
  EXPECT_FALSE(evaluate_connect(cfg->policy, session("app", "10.20.1.1")).denied());
  // Statement evaluation ignores connect rules.
  EXPECT_FALSE(evaluate(cfg->policy, session("admin_jane", "10.20.1.1"), drop_table()).denied());
}

// Unix-socket clients have no address: only `local` names them.
TEST(Policy, UnixSocketClientIsOnlyInLocalNetworks) {
  auto cfg = load(R"(
networks: { office: [10.0.0.0/8], box: [local] }
rules:
  - { name: writes-only-from-office-or-box, when: { client_not_in: [office, box], class: WRITE }, action: deny }
)");
  EXPECT_FALSE(evaluate(cfg->policy, session("a", ""), insert_accounts()).denied());
  EXPECT_FALSE(evaluate(cfg->policy, session("a", "10.1.1.1"), insert_accounts()).denied());
  EXPECT_TRUE(evaluate(cfg->policy, session("a", "192.168.1.1"), insert_accounts()).denied());
}

// Writes to a sensitive table are denied; reads are not; an unqualified name in
// the SQL cannot dodge a schema-qualified pattern.
TEST(Policy, ObjectPatternsMatchSchemaTableAndAccess) {
  auto cfg = load(R"(
rules:
  - name: payroll-is-read-only
    when: { object: [{ name: "hr.pay*", access: [write, ddl] }] }
    action: deny
)");
  auto write = statement("UPDATE", {StatementClass::Write}, {{"hr", "payroll", Access::Write}});
  auto unqualified = statement("UPDATE", {StatementClass::Write}, {{"", "payroll", Access::Write}});
  auto other_schema = statement("UPDATE", {StatementClass::Write}, {{"public", "payroll", Access::Write}});
  auto read = statement("SELECT", {StatementClass::Read}, {{"hr", "payroll", Access::Read}});
  EXPECT_TRUE(evaluate(cfg->policy, session("x"), write).denied());
  EXPECT_TRUE(evaluate(cfg->policy, session("x"), unqualified).denied());
  EXPECT_FALSE(evaluate(cfg->policy, session("x"), other_schema).denied());
  EXPECT_FALSE(evaluate(cfg->policy, session("x"), read).denied());
}

// Server-side file access through functions, schema-qualified or not.
TEST(Policy, LargeObjectAndFileFunctionsAreDenied) {
  auto cfg = load(R"(
rules:
  - { name: no-file-access, when: { function: ["lo_*", "pg_read_*", "dblink*"] }, action: deny }
)");
  auto call = [](std::string fn) {
    auto f = statement("SELECT", {StatementClass::Read, StatementClass::Function});
    f.functions = {std::move(fn)};
    return f;
  };
  EXPECT_TRUE(evaluate(cfg->policy, session("x"), call("pg_catalog.lo_import")).denied());
  EXPECT_TRUE(evaluate(cfg->policy, session("x"), call("pg_read_file")).denied());
  EXPECT_TRUE(evaluate(cfg->policy, session("x"), call("public.dblink_exec")).denied());
  EXPECT_FALSE(evaluate(cfg->policy, session("x"), call("lower")).denied());
}

// SET ROLE and DO blocks can be singled out.
TEST(Policy, RoleChangeAndDynamicSqlFlags) {
  auto cfg = load(R"(
rules:
  - { name: no-set-role, when: { role_change: true }, action: deny, sqlstate: 42501, message: use your own login }
  - { name: no-do-blocks, when: { dynamic_sql: true }, action: deny, sqlstate: P0001 }
)");
  auto set_role = statement("SET", {StatementClass::Misc});
  set_role.role_change = true;
  const Decision d = evaluate(cfg->policy, session("x"), set_role);
  EXPECT_EQ(d.rule_name(), "no-set-role");
  EXPECT_NE(d.message.find("use your own login"), std::string_view::npos);
  auto do_block = statement("DO", {StatementClass::Function});
  do_block.dynamic_sql = true;
  EXPECT_EQ(evaluate(cfg->policy, session("x"), do_block).sqlstate, "P0001");
}

// COPY ... PROGRAM and the server's files are flags of their own: pgaudit
// calls COPY (SELECT ...) TO PROGRAM a read, so a class rule never sees it.
TEST(Policy, ServerProgramAndServerFileFlags) {
  auto cfg = load(R"(
rules:
  - { name: no-programs, when: { runs_program: true }, action: deny }
  - { name: no-server-files, when: { server_file_access: true, user: [bob] }, action: deny }
  - { name: only-program-free, when: { runs_program: false, user: [carol] }, action: deny }
)");
  auto to_program = statement("COPY", {StatementClass::Read});
  to_program.runs_program = true;
  auto to_file = statement("COPY", {StatementClass::Read});
  to_file.server_file_access = true;
  EXPECT_EQ(evaluate(cfg->policy, session("x"), to_program).rule_name(), "no-programs");
  EXPECT_FALSE(evaluate(cfg->policy, session("x"), to_file).denied());
  EXPECT_EQ(evaluate(cfg->policy, session("bob"), to_file).rule_name(), "no-server-files");
  EXPECT_FALSE(evaluate(cfg->policy, session("bob"), select_accounts()).denied());
  EXPECT_EQ(evaluate(cfg->policy, session("carol"), select_accounts()).rule_name(), "only-program-free");
  EXPECT_EQ(evaluate(cfg->policy, session("carol"), to_program).rule_name(), "no-programs");
}

// default: deny applies when nothing matches; an allow rule opens a hole.
TEST(Policy, DefaultDenyAppliesWhenNothingMatches) {
  auto cfg = load(R"(
rules:
  - { name: reporting-reads, when: { application_name: "report-*", class: READ }, action: allow }
default: deny
)");
  auto s = session("x");
  s.application_name = "report-daily";
  EXPECT_FALSE(evaluate(cfg->policy, s, select_accounts()).denied());
  const Decision d = evaluate(cfg->policy, s, insert_accounts());
  EXPECT_TRUE(d.denied());
  EXPECT_EQ(d.reason, DecisionReason::Default);
  EXPECT_EQ(d.sqlstate, "42501");
  s.application_name = "psql";
  EXPECT_TRUE(evaluate(cfg->policy, s, select_accounts()).denied());
  EXPECT_FALSE(evaluate(cfg->policy, s, ClassifiedText{}).denied());  // empty query
}

// Business hours in Berlin, across both UTC offsets of the zone.
TEST(Policy, TimeWindowIsEvaluatedInTheNamedZone) {
  auto cfg = load(R"(
rules:
  - name: ddl-only-in-business-hours
    when: { class: DDL, time: { days: [mon-fri], hours: "09:00-18:00", zone: Europe/Berlin } }
    action: allow
  - { name: no-ddl, when: { class: DDL }, action: deny, enforce: false }
default: deny
)");
  auto at = [&](sys_seconds t) {
    auto s = session("x");
    s.now = t;
    return evaluate(cfg->policy, s, drop_table()).action;
  };
  const auto monday_summer = sys_days{2024y / July / 1};    // CEST, UTC+2
  const auto monday_winter = sys_days{2024y / January / 15};  // CET, UTC+1
  EXPECT_EQ(at(monday_summer + 7h + 30min), Action::Allow);   // 09:30 local
  EXPECT_EQ(at(monday_summer + 6h + 30min), Action::Deny);    // 08:30 local
  EXPECT_EQ(at(monday_winter + 8h + 30min), Action::Allow);   // 09:30 local
  EXPECT_EQ(at(monday_winter + 7h + 30min), Action::Deny);    // 08:30 local
  EXPECT_EQ(at(monday_winter + 16h + 59min), Action::Allow);  // 17:59 local
  EXPECT_EQ(at(monday_winter + 17h), Action::Deny);           // 18:00 local
  EXPECT_EQ(at(sys_days{2024y / July / 6} + 10h), Action::Deny);  // Saturday
  // Beyond the zone file's table, the POSIX rule in its footer applies.
  EXPECT_EQ(at(sys_days{2040y / July / 2} + 7h + 30min), Action::Allow);  // Monday 09:30 CEST
  EXPECT_EQ(at(sys_days{2040y / July / 2} + 6h + 30min), Action::Deny);
}

// A window over midnight belongs to the day it started.
TEST(Policy, TimeWindowWrappingMidnightBelongsToItsStartDay) {
  auto cfg = load(R"(
rules:
  - name: friday-night-freeze
    when: { class: DDL, time: { days: fri, hours: "22:00-06:00", zone: UTC } }
    action: deny
)");
  auto at = [&](sys_seconds t) {
    auto s = session("x");
    s.now = t;
    return evaluate(cfg->policy, s, drop_table()).denied();
  };
  EXPECT_TRUE(at(sys_days{2024y / July / 5} + 23h));   // Friday 23:00
  EXPECT_TRUE(at(sys_days{2024y / July / 6} + 5h));    // Saturday 05:00
  EXPECT_FALSE(at(sys_days{2024y / July / 6} + 23h));  // Saturday 23:00
  EXPECT_FALSE(at(sys_days{2024y / July / 5} + 5h));   // Friday 05:00 (Thursday's night)
}

// pgwarden explain shows each statement's facts, every matching rule and why,
// as one valid JSON document.
TEST(Explain, ShowsFactsMatchedRulesAndTheReason) {
  auto cfg = load(kPostmortemPolicy);
  ClassifiedText text;
  text.statements = {select_accounts(), drop_table()};
  const std::string out = explain_json(cfg->policy, session("bob"), text);
  ASSERT_EQ(out.back(), '\n');
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(out, ec);
  ASSERT_FALSE(ec) << ec.message() << "\n" << out;
  EXPECT_EQ(doc.at("session").at("user").as_string(), "bob");
  const auto& statements = doc.at("statements").as_array();
  ASSERT_EQ(statements.size(), 2u);
  EXPECT_EQ(statements[0].at("decision").at("action").as_string(), "allow");
  const auto& drop = statements[1].as_object();
  EXPECT_EQ(drop.at("command_tag").as_string(), "DROP TABLE");
  std::vector<std::string> matched;
  for (const auto& m : drop.at("matched_rules").as_array()) matched.emplace_back(m.at("name").as_string());
  EXPECT_THAT(matched, ::testing::IsSupersetOf({"juniors-read-only", "alert-on-ddl", "no-drop-for-non-admins"}));
  const auto& overall = doc.at("decision").as_object();
  EXPECT_EQ(overall.at("action").as_string(), "deny");
  EXPECT_EQ(overall.at("statement").as_int64(), 1);
  EXPECT_NE(std::string(overall.at("why").as_string()).find("(any matching deny wins)"), std::string::npos);
}

// Each effect outside pgaudit's classes is a condition of its own, and
// matches only statements that have it.
TEST(Policy, EachEffectOutsideTheClassesIsARuleCondition) {
  auto cfg = load(R"(
rules:
  - { name: no-signals, when: { signals_backends: true }, action: deny }
  - { name: no-large-objects, when: { large_objects: true }, action: deny }
  - { name: no-remote, when: { remote_database: true }, action: deny }
  - { name: no-locks, when: { locks: true }, action: deny }
  - { name: no-notify, when: { notify: true }, action: deny }
  - { name: no-maintenance, when: { maintenance: true }, action: deny }
)");
  ASSERT_TRUE(cfg);
  const std::pair<bool StatementFacts::*, const char*> flags[] = {
      {&StatementFacts::signals_backends, "no-signals"}, {&StatementFacts::large_objects, "no-large-objects"},
      {&StatementFacts::remote_database, "no-remote"},   {&StatementFacts::locks, "no-locks"},
      {&StatementFacts::notify, "no-notify"},            {&StatementFacts::maintenance, "no-maintenance"}};
  for (const auto& [flag, rule] : flags) {
    StatementFacts f = select_accounts();
    f.*flag = true;
    EXPECT_EQ(evaluate(cfg->policy, session("x"), f).rule_name(), rule);
  }
  EXPECT_FALSE(evaluate(cfg->policy, session("x"), select_accounts()).denied());
}

// A flag condition takes a boolean; anything else is a configuration error
// with its line and column.
TEST(Policy, EffectConditionsMustBeBooleans) {
  auto r = config::load_config_string(
      "listen: 127.0.0.1:6432\nupstream: {host: 127.0.0.1, port: 5432, tls: disable}\n"
      "rules:\n  - { name: r, when: { locks: sometimes }, action: deny }\n",
      "bad.yaml");
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors.front().to_string().find("locks"), std::string::npos) << r.errors.front().to_string();
  EXPECT_NE(r.errors.front().to_string().find("bad.yaml:4:"), std::string::npos) << r.errors.front().to_string();
}

// examples/pgwarden.yaml as shipped: its junior is denied every hidden call
// and every effect outside the classes, and runs psql's describe queries,
// pg_dump's and ordinary reports.
TEST(Policy, ExampleJuniorIsDeniedEveryEffectButReadsFreely) {
  auto r = config::load_config_file(std::string(PGWARDEN_TEST_DATA) + "/../../examples/pgwarden.yaml");
  for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
  ASSERT_TRUE(r.config);
  const RuleSet& rules = r.config->policy;
  const SessionFacts bob = session("bob", "10.10.0.5");
  const std::pair<const char*, const char*> denied[] = {
      {"SELECT (pg_backend_pid()).pg_terminate_backend", "juniors-read-only"},
      {"SELECT a.pg_cancel_backend FROM pg_stat_activity a", "juniors-read-only"},
      {"SELECT (1).lo_unlink", "juniors-read-only"},
      {"SELECT '1'::app.evil_domain", "juniors-read-only"},
      {"SELECT query_to_xml('SELECT 1', true, true, '')", "juniors-read-only"},
      {"SELECT * FROM t TABLESAMPLE app_sampler (1)", "juniors-read-only"},
      {"SELECT * FROM users FOR UPDATE", "juniors-no-locks"},
      {"SELECT * FROM users FOR SHARE", "juniors-no-locks"},
      {"LOCK TABLE users", "juniors-no-locks"},
      {"PREPARE TRANSACTION 'x'", "juniors-no-locks"},
      {"COMMIT PREPARED 'x'", "juniors-no-locks"},
      {"NOTIFY c", "juniors-no-notify"},
      {"VACUUM FULL users", "juniors-no-maintenance"},
      {"VACUUM users", "juniors-no-maintenance"},
      {"ANALYZE users", "juniors-no-maintenance"},
      {"REINDEX TABLE users", "juniors-no-maintenance"},
      {"CHECKPOINT", "juniors-no-maintenance"},
      {"CLUSTER users", "juniors-read-only"},
      {"DISCARD ALL", "juniors-no-role-change"},
      {"RESET ALL", "juniors-no-role-change"},
  };
  for (const auto& [sql, rule] : denied) {
    const Decision d = evaluate(rules, bob, classify(sql));
    EXPECT_EQ(d.rule_name(), rule) << sql;
  }
  for (const char* sql : {
           "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n "
           "ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(users)$' COLLATE "
           "pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3",
           "SELECT pg_catalog.set_config('search_path', '', false)",
           "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY",
           "LOCK TABLE public.users IN ACCESS SHARE MODE",
           "SELECT pg_size_pretty(pg_total_relation_size('users')), date(now()), array_upper(ARRAY[1], 1)",
           "SELECT jsonb_array_elements_text(j), to_tsvector(body) @@ to_tsquery('x'), u.name, u.email FROM users u",
           "SELECT rank() OVER (ORDER BY id), 'x'::regclass, 'a' IS NORMALIZED, COLLATION FOR ('x') FROM users",
       }) {
    const Decision d = evaluate(rules, bob, classify(sql));
    EXPECT_FALSE(d.denied()) << sql << ": " << d.rule_name();
  }
}

// A connect rule with read_only: true opens the sessions it matches
// read-only at the server; a dry-run rule or a refused connection does not.
TEST(Policy, ConnectRuleWithReadOnlyMakesTheSessionReadOnly) {
  auto cfg = load(R"(
groups: { juniors: [bob], interns: [ivy] }
rules:
  - { name: juniors-ro, on: connect, when: { user_in: juniors }, action: allow, read_only: true }
  - { name: interns-ro-trial, on: connect, when: { user_in: interns }, action: allow, read_only: true, enforce: false }
  - { name: no-mallory, on: connect, when: { user: [mallory] }, action: deny }
  - { name: mallory-ro, on: connect, when: { user: [mallory] }, action: allow, read_only: true }
)");
  ASSERT_TRUE(cfg);
  EXPECT_TRUE(evaluate_connect(cfg->policy, session("bob")).read_only);
  EXPECT_FALSE(evaluate_connect(cfg->policy, session("ivy")).read_only);
  EXPECT_FALSE(evaluate_connect(cfg->policy, session("alice")).read_only);
  const Decision mallory = evaluate_connect(cfg->policy, session("mallory"));
  EXPECT_TRUE(mallory.denied());
  EXPECT_FALSE(mallory.read_only);
}

// read_only belongs to connect rules; on a statement rule it is an error.
TEST(Policy, ReadOnlyIsAConnectRuleOption) {
  auto r = config::load_config_string(
      "listen: 127.0.0.1:6432\nupstream: {host: 127.0.0.1, port: 5432, tls: disable}\n"
      "rules:\n  - { name: r, when: { user: [bob] }, action: allow, read_only: true }\n",
      "bad.yaml");
  ASSERT_FALSE(r.errors.empty());
  EXPECT_NE(r.errors.front().to_string().find("read_only"), std::string::npos) << r.errors.front().to_string();
  EXPECT_NE(r.errors.front().to_string().find("on: connect"), std::string::npos) << r.errors.front().to_string();
}

// In a read-only session, no statement may turn read-only off, whatever the
// statement rules allow; text that does not parse could, so it is refused
// too. Other statements are decided as always.
TEST(Policy, ReadOnlySessionCannotBeTurnedReadWrite) {
  auto cfg = load(R"(
rules:
  - { name: allow-everything, when: { user: [bob] }, action: allow }
)");
  ASSERT_TRUE(cfg);
  SessionFacts bob = session("bob");
  bob.read_only = true;
  for (const char* sql : {"SET default_transaction_read_only = off", "BEGIN READ WRITE", "RESET ALL", "DISCARD ALL",
                          "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
                          "SELECT 1; SELECT set_config('transaction_read_only', 'off', true)", "SELEC 1"}) {
    const Decision d = evaluate(cfg->policy, bob, classify(sql));
    EXPECT_TRUE(d.denied()) << sql;
    EXPECT_EQ(d.reason, DecisionReason::ReadOnlySession) << sql;
    EXPECT_EQ(d.sqlstate, "42501");
  }
  for (const char* sql : {"SET default_transaction_read_only = on", "BEGIN READ ONLY", "SET search_path = app",
                          "SELECT * FROM t"})
    EXPECT_FALSE(evaluate(cfg->policy, bob, classify(sql)).denied()) << sql;
  SessionFacts alice = session("alice");
  EXPECT_FALSE(evaluate(cfg->policy, alice, classify("SET default_transaction_read_only = off")).denied());
}

// pgwarden explain shows the effect flags with the other facts.
TEST(Explain, ShowsTheEffectFlags) {
  auto cfg = load(kPostmortemPolicy);
  const std::string out = explain_json(cfg->policy, session("bob"), classify("SELECT * FROM t FOR UPDATE"));
  const boost::json::value doc = boost::json::parse(out);
  const auto& facts = doc.at("statements").at(0);
  EXPECT_TRUE(facts.at("locks").as_bool());
  for (const char* flag : {"signals_backends", "large_objects", "remote_database", "notify", "maintenance"})
    EXPECT_FALSE(facts.at(flag).as_bool()) << flag;
}

TEST(TimeZoneRule, ParsesPosixFootersOfBothHemispheres) {
  auto berlin = PosixTzRule::parse("CET-1CEST,M3.5.0,M10.5.0/3");
  ASSERT_TRUE(berlin);
  const auto summer = sys_days{2030y / July / 1}.time_since_epoch();
  const auto winter = sys_days{2030y / January / 1}.time_since_epoch();
  EXPECT_EQ(berlin->offset_at(duration_cast<seconds>(summer).count()), 7200);
  EXPECT_EQ(berlin->offset_at(duration_cast<seconds>(winter).count()), 3600);
  auto sydney = PosixTzRule::parse("AEST-10AEDT,M10.1.0,M4.1.0/3");
  ASSERT_TRUE(sydney);
  EXPECT_EQ(sydney->offset_at(duration_cast<seconds>(summer).count()), 36000);
  EXPECT_EQ(sydney->offset_at(duration_cast<seconds>(winter).count()), 39600);
  EXPECT_TRUE(PosixTzRule::parse("<+0330>-3:30"));
  EXPECT_FALSE(PosixTzRule::parse("CET-1CEST,M13.5.0,M10.5.0"));
}

// Names follow PostgreSQL identifier rules: unquoted patterns fold to lower case.
TEST(Glob, FoldsLikePostgresIdentifiers) {
  auto folded = Glob::compile("Report_*", GlobCase::Identifier);
  ASSERT_TRUE(folded);
  EXPECT_TRUE(folded->matches("report_daily"));
  EXPECT_FALSE(folded->matches("Report_daily"));
  auto quoted = Glob::compile("\"Report_*\"", GlobCase::Identifier);
  ASSERT_TRUE(quoted);
  EXPECT_TRUE(quoted->matches("Report_daily"));
  EXPECT_FALSE(quoted->matches("report_daily"));
  auto tag = Glob::compile("drop *", GlobCase::Insensitive);
  EXPECT_TRUE(tag->matches("DROP TABLE"));
  EXPECT_FALSE(tag->matches("DROPTABLE"));
  auto escaped = Glob::compile("a\\*b", GlobCase::Exact);
  EXPECT_TRUE(escaped->matches("a*b"));
  EXPECT_FALSE(escaped->matches("axb"));
  EXPECT_TRUE(Glob::compile("a*b*c", GlobCase::Exact)->matches("a\x01" "bxxbc"));
  EXPECT_FALSE(Glob::compile("", GlobCase::Exact));
  EXPECT_FALSE(Glob::compile("abc\\", GlobCase::Exact));
}

TEST(Cidr, ContainsBothFamiliesAndRejectsHostBits) {
  auto v4 = Cidr::parse("10.20.0.0/16");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->contains(*IpAddress::parse("10.20.255.1")));
  EXPECT_FALSE(v4->contains(*IpAddress::parse("10.21.0.1")));
  EXPECT_FALSE(v4->contains(*IpAddress::parse("::ffff:10.21.0.1")));
  auto v6 = Cidr::parse("2001:db8::/33");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*IpAddress::parse("2001:db8:7fff::1")));
  EXPECT_FALSE(v6->contains(*IpAddress::parse("2001:db8:8000::1")));
  EXPECT_FALSE(v6->contains(*IpAddress::parse("10.20.0.1")));
  std::string why;
  EXPECT_FALSE(Cidr::parse("10.20.0.1/16", &why));
  EXPECT_NE(why.find("10.20.0.0/16"), std::string::npos);
  EXPECT_FALSE(Cidr::parse("10.0.0.0/33"));
  EXPECT_EQ(Cidr::parse("127.0.0.1")->prefix(), 32u);
}

}  // namespace
}  // namespace pgwarden::policy
