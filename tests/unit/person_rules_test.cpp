// Rules that see the person behind a database role: `person`, `person_in`
// and `auth_method`, at statement and connect phase, with and without the
// session mask; and `pgwarden explain` for a person.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "commands/explain.hpp"
#include "config/config.hpp"
#include "policy/evaluator.hpp"
#include "policy/explain.hpp"

namespace pgwarden::policy {
namespace {

using namespace std::chrono;
using namespace std::chrono_literals;
using ::testing::HasSubstr;

const char* kPeoplePolicy = R"(listen: 127.0.0.1:6432
upstream: {host: 127.0.0.1, port: 5432, tls: disable}
groups:
  juniors: [bob]
  oncall: [carol]
rules:
  - name: juniors-read-only
    when: { person_in: juniors, class: [WRITE, DDL, ROLE, FUNCTION] }
    action: deny
  - name: contractors-never-drop
    when: { person: ["*@contractor.example"], command: ["DROP *"] }
    action: deny
  - name: shared-passwords-read-only
    when: { auth_method: [passthrough, md5], class: [WRITE, DDL] }
    action: deny
  - name: people-only-on-prod-admin
    on: connect
    when: { user: postgres, auth_method: [passthrough, scram, md5] }
    action: deny
    message: log in as yourself
  - name: oncall-alert
    when: { person_in: [oncall, sre] }
    action: allow
    alert: true
default: allow
)";

config::ConfigPtr load(const std::string& yaml) {
  auto r = config::load_config_string(yaml, "person_rules_test.yaml");
  for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
  return r.config;
}

SessionFacts person_session(std::string person, std::string role, AuthMethod method,
                            std::vector<std::string> groups = {}) {
  SessionFacts s;
  s.user = std::move(role);
  s.person = std::move(person);
  s.person_groups = std::move(groups);
  s.auth_method = method;
  s.database = "appdb";
  s.client = IpAddress::parse("10.0.0.5");
  s.now = sys_days{2024y / July / 1} + 12h;
  return s;
}

ClassifiedText text_of(std::string tag, StatementClass cls) {
  StatementFacts f;
  f.command_tag = tag;
  f.effective_tags = {tag};
  f.classes.insert(cls);
  ClassifiedText t;
  t.statements = {f};
  return t;
}

// bob logs in as app, a role that may write; he is a junior, so his writes
// are denied whatever role he uses, and his reads are not.
TEST(PersonRules, JuniorPersonIsDeniedWritesEvenThroughAWritingRole) {
  auto cfg = load(kPeoplePolicy);
  ASSERT_TRUE(cfg);
  const auto bob = person_session("bob", "app", AuthMethod::Certificate);
  const Decision write = evaluate(cfg->policy, bob, text_of("INSERT", StatementClass::Write));
  EXPECT_TRUE(write.denied());
  EXPECT_EQ(write.rule_name(), "juniors-read-only");
  EXPECT_FALSE(evaluate(cfg->policy, bob, text_of("SELECT", StatementClass::Read)).denied());
  // alice through the same role writes.
  EXPECT_FALSE(
      evaluate(cfg->policy, person_session("alice", "app", AuthMethod::Certificate), text_of("INSERT", StatementClass::Write))
          .denied());
}

// person_in also holds for a group the credential states (a token's groups
// claim, a certificate's OU) that pgwarden's groups: do not list.
TEST(PersonRules, PersonInSeesTheCredentialsGroups) {
  auto cfg = load(kPeoplePolicy);
  ASSERT_TRUE(cfg);
  const auto dana = person_session("dana", "app", AuthMethod::Token, {"staff", "juniors"});
  EXPECT_EQ(evaluate(cfg->policy, dana, text_of("UPDATE", StatementClass::Write)).rule_name(), "juniors-read-only");
  const auto sre = person_session("erin", "app", AuthMethod::Token, {"sre"});
  const Decision d = evaluate(cfg->policy, sre, text_of("SELECT", StatementClass::Read));
  EXPECT_TRUE(d.alert);
  EXPECT_EQ(d.rule_name(), "oncall-alert");
  // A role is not in the group that a person of the same name is in via a
  // credential: only what the session's facts say counts.
  EXPECT_FALSE(evaluate(cfg->policy, person_session("erin", "app", AuthMethod::Token), text_of("SELECT", StatementClass::Read))
                   .alert);
}

// Person globs are exact: *@contractor.example matches the e-mail a
// certificate names, not the role.
TEST(PersonRules, PersonGlobsMatchThePersonNotTheRole) {
  auto cfg = load(kPeoplePolicy);
  ASSERT_TRUE(cfg);
  const auto drop = text_of("DROP TABLE", StatementClass::Ddl);
  EXPECT_EQ(evaluate(cfg->policy, person_session("x@contractor.example", "app", AuthMethod::Certificate), drop).rule_name(),
            "contractors-never-drop");
  EXPECT_FALSE(evaluate(cfg->policy, person_session("x@staff.example", "app", AuthMethod::Certificate), drop).denied());
  EXPECT_FALSE(evaluate(cfg->policy, person_session("x@CONTRACTOR.example", "app", AuthMethod::Certificate), drop)
                   .denied());
}

// Connections that share a role's password cannot be told apart: a rule on
// auth_method keeps them read-only and off the superuser role.
TEST(PersonRules, AuthMethodConditionsSeparateSharedPasswordsFromPeople) {
  auto cfg = load(kPeoplePolicy);
  ASSERT_TRUE(cfg);
  const auto shared = person_session("app", "app", AuthMethod::Passthrough);
  EXPECT_EQ(evaluate(cfg->policy, shared, text_of("DELETE", StatementClass::Write)).rule_name(),
            "shared-passwords-read-only");
  EXPECT_FALSE(evaluate(cfg->policy, person_session("app", "app", AuthMethod::Scram), text_of("DELETE", StatementClass::Write))
                   .denied());
  const Decision refused = evaluate_connect(cfg->policy, person_session("postgres", "postgres", AuthMethod::Scram));
  EXPECT_TRUE(refused.denied());
  EXPECT_EQ(refused.sqlstate, "28000");
  EXPECT_THAT(std::string(refused.message), HasSubstr("log in as yourself"));
  EXPECT_FALSE(evaluate_connect(cfg->policy, person_session("alice", "postgres", AuthMethod::People)).denied());
}

// The mask computed once per session decides exactly as full evaluation.
TEST(PersonRules, SessionMaskGivesTheSameDecisionsForPeople) {
  auto cfg = load(kPeoplePolicy);
  ASSERT_TRUE(cfg);
  const std::vector<SessionFacts> sessions = {
      person_session("bob", "app", AuthMethod::Certificate), person_session("dana", "app", AuthMethod::Token, {"juniors"}),
      person_session("carol", "readonly", AuthMethod::People), person_session("x@contractor.example", "app", AuthMethod::Token),
      person_session("app", "app", AuthMethod::Passthrough), person_session("app", "app", AuthMethod::Md5),
      person_session("erin", "app", AuthMethod::Token, {"sre"})};
  const std::vector<ClassifiedText> texts = {text_of("SELECT", StatementClass::Read), text_of("INSERT", StatementClass::Write),
                                             text_of("DROP TABLE", StatementClass::Ddl)};
  for (const auto& s : sessions) {
    const SessionMask mask = session_mask(cfg->policy, s);
    for (const auto& t : texts) {
      const Decision full = evaluate(cfg->policy, s, t);
      const Decision masked = evaluate(cfg->policy, s, t, mask);
      EXPECT_EQ(full.action, masked.action) << s.person << " " << t.statements[0].command_tag;
      EXPECT_EQ(full.rule, masked.rule) << s.person << " " << t.statements[0].command_tag;
      EXPECT_EQ(full.alert, masked.alert) << s.person << " " << t.statements[0].command_tag;
    }
  }
}

TEST(PersonRules, BadConditionsAreReportedWhereWritten) {
  const std::string head = "listen: 127.0.0.1:6432\nupstream: {host: 127.0.0.1, port: 5432, tls: disable}\n";
  auto r = config::load_config_string(head + "rules:\n  - { name: a, action: deny, when: { auth_method: [kerberos] } }\n",
                                      "t.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(),
            "t.yaml:4:52: rules[0].when.auth_method: 'kerberos' is not one of passthrough, scram, md5, certificate, "
            "token, people");
  r = config::load_config_string(head + "rules:\n  - { name: a, action: deny, when: { person_in: [\"jun*\"] } }\n", "t.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].to_string(), "t.yaml:4:50: rules[0].when.person_in: 'jun*' is not a group name (no patterns)");
  r = config::load_config_string(head + "rules:\n  - { name: a, action: deny, when: { persn: bob } }\n", "t.yaml");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_THAT(r.errors[0].message, HasSubstr("did you mean 'person'?"));
}

// The session of an explain shows the person, groups and method.
TEST(PersonRules, ExplainJsonShowsThePersonAndTheGrant) {
  auto cfg = load(kPeoplePolicy);
  ASSERT_TRUE(cfg);
  const auto bob = person_session("bob", "app", AuthMethod::Certificate, {"staff"});
  const std::string out = explain_json(cfg->policy, bob, text_of("INSERT", StatementClass::Write));
  const auto doc = boost::json::parse(out);
  EXPECT_EQ(doc.at("session").at("person").as_string(), "bob");
  EXPECT_EQ(doc.at("session").at("user").as_string(), "app");
  EXPECT_EQ(doc.at("session").at("auth_method").as_string(), "certificate");
  EXPECT_EQ(boost::json::serialize(doc.at("session").at("person_groups")), R"(["staff"])");
  EXPECT_EQ(doc.at("decision").at("rule").as_string(), "juniors-read-only");

  GrantDecision refused;
  refused.refusal = "person \"bob\" holds no grant for role \"postgres\" on database \"appdb\" from 10.0.0.5";
  const auto no = boost::json::parse(explain_json(cfg->policy, bob, text_of("SELECT", StatementClass::Read), &refused));
  EXPECT_EQ(no.at("decision").at("reason").as_string(), "no_grant");
  EXPECT_EQ(no.at("decision").at("sqlstate").as_string(), "28000");
  EXPECT_EQ(no.at("decision").at("message").as_string(), refused.refusal);
  EXPECT_TRUE(no.at("statements").as_array().empty());
  EXPECT_TRUE(no.at("session").at("grant").is_null());
}

// `pgwarden explain --person bob --auth-method certificate`: the role comes
// from bob's grant; asking for a role he holds no grant for is refused (exit
// 1); --person apart from --user needs a person's method (exit 2).
TEST(PersonRules, ExplainCommandResolvesThePersonsGrant) {
  const auto dir = std::filesystem::temp_directory_path() / "pgwarden_person_rules_test";
  std::filesystem::create_directories(dir);
  const auto path = (dir / "people.yaml").string();
  std::ofstream(path) << kPeoplePolicy
                      << "identity: { people_file: people.txt }\n"
                         "credentials: { readonly: { password_file: ro.secret }, app: { password_file: app.secret } }\n"
                         "grants:\n  - { name: bob-ro, people: [bob], roles: [readonly], databases: [appdb] }\n"
                         "  - { name: alice-app, people: [alice], roles: [app] }\n";
  commands::ExplainRequest r;
  r.config_path = path;
  r.user = "bob";
  r.person = "bob";
  r.auth_method = "certificate";
  r.database = "appdb";
  r.client = "10.0.0.5";
  r.sql = "SELECT 1";
  std::ostringstream out, err;
  EXPECT_EQ(commands::run_explain(r, out, err), 0) << err.str();
  auto doc = boost::json::parse(out.str());
  EXPECT_EQ(doc.at("session").at("user").as_string(), "readonly");
  EXPECT_EQ(doc.at("session").at("grant").as_string(), "bob-ro");

  r.user = "app";
  std::ostringstream out2, err2;
  EXPECT_EQ(commands::run_explain(r, out2, err2), 1) << err2.str();
  doc = boost::json::parse(out2.str());
  EXPECT_EQ(doc.at("decision").at("message").as_string(),
            "person \"bob\" holds no grant for role \"app\" on database \"appdb\" from 10.0.0.5");

  r.auth_method = "";
  std::ostringstream out3, err3;
  EXPECT_EQ(commands::run_explain(r, out3, err3), 2);
  EXPECT_THAT(err3.str(), HasSubstr("--person differs from --user"));
  r.auth_method = "kerberos";
  std::ostringstream out4, err4;
  EXPECT_EQ(commands::run_explain(r, out4, err4), 2);
  EXPECT_THAT(err4.str(), HasSubstr("invalid --auth-method"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace pgwarden::policy
