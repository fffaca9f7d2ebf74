// Grants: which person may log in as which database role, where. Each
// scenario loads a configuration as an operator writes it and resolves what a
// connection presents at startup, as the session does after verifying the
// person's credential.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.hpp"
#include "policy/grants.hpp"

namespace pgwarden::policy {
namespace {

using ::testing::HasSubstr;

const char* kGrants = R"(
listen: 127.0.0.1:6432
upstream: { host: 127.0.0.1, port: 5432, tls: disable }
identity: { people_file: people.yaml }
networks:
  office: [10.0.0.0/24]
  vpn: [10.8.0.0/16]
groups:
  admins: [carol]
credentials:
  app: { password_file: secrets/app }
  readonly: { password_file: secrets/readonly }
  postgres: { password_file: secrets/postgres }
  reporting: { cert: secrets/reporting.crt, key: secrets/reporting.key }
grants:
  - name: alice-app
    people: [alice]
    roles: [app, readonly]
    default_role: readonly
    databases: [appdb]
    networks: [office, vpn]
  - name: bob-readonly
    people: [bob]
    roles: [readonly]
    databases: ["app*"]
  - name: dba
    groups: [dba]
    roles: [postgres, app]
    default_role: app
    networks: [office]
  - name: admins
    groups: [admins]
    roles: [postgres]
  - people: [erin]
    roles: [reporting]
    databases: [reports]
    networks: [local]
)";

config::ConfigPtr load(const std::string& yaml) {
  auto r = config::load_config_string(yaml, "/etc/pgwarden/grants_test.yaml");
  for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
  return r.config;
}

struct Ask {
  std::string person = "";
  std::string user = "";
  std::string database = "appdb";
  std::string client = "10.0.0.5";
  std::vector<std::string> groups = {};
  std::string role_setting = "";
  AuthMethod method = AuthMethod::Certificate;
};

GrantDecision resolve(const config::Config& c, const Ask& a) {
  GrantRequest r;
  r.person = a.person;
  r.person_groups = a.groups;
  r.auth_method = a.method;
  r.user = a.user;
  r.role_setting = a.role_setting;
  r.database = a.database;
  if (!a.client.empty()) r.client = IpAddress::parse(a.client);
  return c.grants.resolve(r);
}

// alice asks for app by naming it as the user: her grant holds it.
TEST(Grants, ARoleNamedAsTheUserIsGrantedToItsPerson) {
  auto c = load(kGrants);
  ASSERT_TRUE(c);
  const auto d = resolve(*c, {.person = "alice", .user = "app"});
  ASSERT_FALSE(d.refused()) << d.refusal;
  EXPECT_EQ(d.role, "app");
  EXPECT_EQ(d.grant_name(), "alice-app");
  EXPECT_EQ(d.index, 0u);
}

// user=alice (her own name): the default role of her grant, or the role
// pgwarden.role asks for.
TEST(Grants, ThePersonsOwnNameGetsTheDefaultRoleOrTheRoleSetting) {
  auto c = load(kGrants);
  ASSERT_TRUE(c);
  auto d = resolve(*c, {.person = "alice", .user = "alice"});
  ASSERT_FALSE(d.refused()) << d.refusal;
  EXPECT_EQ(d.role, "readonly");
  d = resolve(*c, {.person = "alice", .user = "alice", .role_setting = "app"});
  ASSERT_FALSE(d.refused()) << d.refusal;
  EXPECT_EQ(d.role, "app");
  // A grant with one role has it as the default without saying so.
  d = resolve(*c, {.person = "bob", .user = "bob", .method = AuthMethod::Token});
  ASSERT_FALSE(d.refused()) << d.refusal;
  EXPECT_EQ(d.role, "readonly");
  EXPECT_EQ(d.grant_name(), "bob-readonly");
}

// bob holds readonly only: app and postgres are refused, and the message
// names him and the role but tells nothing of the grants that exist.
TEST(Grants, BobAskingForARoleHeHoldsNoGrantForIsRefusedByName) {
  auto c = load(kGrants);
  ASSERT_TRUE(c);
  auto d = resolve(*c, {.person = "bob", .user = "app"});
  EXPECT_TRUE(d.refused());
  EXPECT_EQ(d.refusal, "person \"bob\" holds no grant for role \"app\" on database \"appdb\" from 10.0.0.5");
  EXPECT_EQ(d.grant, nullptr);
  EXPECT_TRUE(d.role.empty());
  d = resolve(*c, {.person = "bob", .user = "bob", .role_setting = "postgres", .method = AuthMethod::People});
  EXPECT_EQ(d.refusal, "person \"bob\" holds no grant for role \"postgres\" on database \"appdb\" from 10.0.0.5");
  d = resolve(*c, {.person = "mallory", .user = "mallory"});
  EXPECT_EQ(d.refusal, "person \"mallory\" holds no grant on database \"appdb\" from 10.0.0.5");
}

// A group from the person's credential, or a pgwarden group listing them.
TEST(Grants, GroupsFromTheCredentialOrFromPgwardenGroupsGrantRoles) {
  auto c = load(kGrants);
  ASSERT_TRUE(c);
  auto d = resolve(*c, {.person = "dan", .user = "postgres", .database = "anything", .groups = {"staff", "dba"}});
  ASSERT_FALSE(d.refused()) << d.refusal;
  EXPECT_EQ(d.grant_name(), "dba");
  d = resolve(*c, {.person = "dan", .user = "dan", .groups = {"dba"}});
  EXPECT_EQ(d.role, "app");
  EXPECT_TRUE(resolve(*c, {.person = "dan", .user = "postgres", .groups = {"staff"}}).refused());
  d = resolve(*c, {.person = "carol", .user = "postgres", .client = "192.0.2.1"});
  ASSERT_FALSE(d.refused()) << d.refusal;
  EXPECT_EQ(d.grant_name(), "admins");
}

// The database must match the grant's globs, the client its networks.
TEST(Grants, DatabaseAndNetworkMustMatch) {
  auto c = load(kGrants);
  ASSERT_TRUE(c);
  EXPECT_EQ(resolve(*c, {.person = "alice", .user = "app", .database = "payroll"}).refusal,
            "person \"alice\" holds no grant for role \"app\" on database \"payroll\" from 10.0.0.5");
  EXPECT_EQ(resolve(*c, {.person = "alice", .user = "app", .client = "192.0.2.7"}).refusal,
            "person \"alice\" holds no grant for role \"app\" on database \"appdb\" from 192.0.2.7");
  EXPECT_FALSE(resolve(*c, {.person = "alice", .user = "app", .client = "10.8.3.4"}).refused());
  EXPECT_EQ(resolve(*c, {.person = "alice", .user = "app", .client = ""}).refusal,
            "person \"alice\" holds no grant for role \"app\" on database \"appdb\" from the local socket");
  // Globs as rules use them: app* covers appdb and app_archive, not shop.
  EXPECT_FALSE(resolve(*c, {.person = "bob", .user = "readonly", .database = "app_archive"}).refused());
  EXPECT_TRUE(resolve(*c, {.person = "bob", .user = "readonly", .database = "shop"}).refused());
  // `local` admits Unix-socket clients only.
  EXPECT_FALSE(resolve(*c, {.person = "erin", .user = "reporting", .database = "reports", .client = ""}).refused());
  EXPECT_TRUE(resolve(*c, {.person = "erin", .user = "reporting", .database = "reports"}).refused());
}

// The first grant that covers person, database, network and role wins; an
// unnamed grant is named by its position for the audit record.
TEST(Grants, FirstMatchingGrantWinsAndUnnamedOnesAreNumbered) {
  auto c = load(kGrants);
  ASSERT_TRUE(c);
  auto d = resolve(*c, {.person = "carol", .user = "app", .groups = {"dba"}});
  EXPECT_EQ(d.grant_name(), "dba");
  d = resolve(*c, {.person = "carol", .user = "postgres", .groups = {"dba"}});
  EXPECT_EQ(d.grant_name(), "dba");
  d = resolve(*c, {.person = "erin", .user = "erin", .database = "reports", .client = ""});
  EXPECT_EQ(d.grant_name(), "grants[4]");
  EXPECT_EQ(d.role, "reporting");
}

// After a reload without alice's grant, her next connection is refused: a
// decision depends on nothing but the configuration it is made with.
TEST(Grants, RevokedGrantRefusesAfterReload) {
  auto before = load(kGrants);
  ASSERT_TRUE(before);
  std::string yaml = kGrants;
  const auto from = yaml.find("  - name: alice-app");
  const auto to = yaml.find("  - name: bob-readonly");
  yaml.erase(from, to - from);
  auto after = load(yaml);
  ASSERT_TRUE(after);
  EXPECT_FALSE(resolve(*before, {.person = "alice", .user = "app"}).refused());
  EXPECT_EQ(resolve(*after, {.person = "alice", .user = "app"}).refusal,
            "person \"alice\" holds no grant for role \"app\" on database \"appdb\" from 10.0.0.5");
}

// Roles that authenticated themselves keep working as before: no grant, the
// role is the user; pgwarden.role is for people only.
TEST(Grants, RolesThatAuthenticatedThemselvesNeedNoGrant) {
  auto c = load(kGrants);
  ASSERT_TRUE(c);
  for (auto m : {AuthMethod::Passthrough, AuthMethod::Scram, AuthMethod::Md5}) {
    const auto d = resolve(*c, {.person = "someapp", .user = "someapp", .method = m});
    ASSERT_FALSE(d.refused()) << d.refusal;
    EXPECT_EQ(d.role, "someapp");
    EXPECT_EQ(d.grant, nullptr);
  }
  EXPECT_THAT(resolve(*c, {.person = "app", .user = "app", .role_setting = "postgres", .method = AuthMethod::Scram})
                  .refusal,
              HasSubstr("pgwarden.role \"postgres\" applies only to people"));
}

// user names one role and pgwarden.role another: which one was meant?
TEST(Grants, ConflictingUserAndRoleSettingAreRefused) {
  auto c = load(kGrants);
  ASSERT_TRUE(c);
  EXPECT_EQ(resolve(*c, {.person = "alice", .user = "app", .role_setting = "readonly"}).refusal,
            "person \"alice\": user \"app\" and pgwarden.role \"readonly\" name different roles");
  EXPECT_FALSE(resolve(*c, {.person = "alice", .user = "app", .role_setting = "app"}).refused());
}

TEST(Grants, RolesListsEveryRoleOnce) {
  auto c = load(kGrants);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->grants.roles(), (std::vector<std::string>{"app", "postgres", "readonly", "reporting"}));
}

}  // namespace
}  // namespace pgwarden::policy
