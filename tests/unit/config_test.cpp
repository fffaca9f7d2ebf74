// Configuration loader: every error kind at its exact line:col, all errors of a
// file reported at once, defaults and units, paths, warnings, and the shipped
// examples loading clean.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "commands/check.hpp"
#include "config/config.hpp"
#include "config/units.hpp"

namespace pgwarden::config {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const std::string kHead = "listen: 127.0.0.1:6432\nupstream: { host: 127.0.0.1, port: 5432, tls: disable }\n";

std::vector<std::string> errors_of(const std::string& yaml) {
  auto r = load_config_string(yaml, "t.yaml");
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  EXPECT_EQ(r.ok(), out.empty());
  return out;
}

// The one error a snippet (appended after kHead, which is lines 1-2) produces.
std::string only_error(const std::string& policy) {
  auto errors = errors_of(kHead + policy);
  EXPECT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  return errors.empty() ? "" : errors.front();
}

std::string examples(const std::string& name) {
  return std::filesystem::path(PGWARDEN_TEST_DATA).parent_path().parent_path() / "examples" / name;
}

// The shipped examples are what `pgwarden check` users copy: they must load.
TEST(Config, ExamplesLoadClean) {
  for (const char* name : {"pgwarden.yaml", "minimal.yaml"}) {
    auto r = load_config_file(examples(name));
    for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
    EXPECT_TRUE(r.ok()) << name;
    EXPECT_TRUE(r.warnings.empty()) << name;
  }
  auto demo = load_config_file(examples("pgwarden.yaml")).config;
  ASSERT_TRUE(demo);
  EXPECT_EQ(demo->listen.at(0), (Endpoint{"127.0.0.1", 6432}));
  EXPECT_EQ(demo->upstream.port, 5432);
  EXPECT_EQ(demo->environment, "production");
  EXPECT_EQ(demo->policy.groups().size(), 2u);
  EXPECT_NE(demo->policy.find("juniors-read-only"), nullptr);
}

// The deliberately broken file: every error, in file order, with line:col.
TEST(Config, BrokenFileReportsEveryErrorWithLineAndColumn) {
  const std::string path = std::string(PGWARDEN_TEST_DATA) + "/config/broken.yaml";
  auto r = load_config_file(path);
  ASSERT_FALSE(r.ok());
  std::vector<std::string> got;
  for (const auto& e : r.errors) got.push_back(std::to_string(e.line) + ":" + std::to_string(e.column) + " " + e.message);
  const std::vector<std::string> expected_prefixes = {
      "3:9 listen: expected host:port",
      "6:9 upstream.port: expected a whole number",
      "7:8 upstream.tls: 'verify_full' is not one of",
      "8:3 unknown key 'conect_timeout' in upstream (did you mean 'connect_timeout'?)",
      "10:20 limits.startup_timeout: expected a duration",
      "11:22 limits.max_message_bytes: expected a size",
      "12:29 log.format: 'xml' is not one of text, json",
      "14:29 networks.dev_hosts: bad CIDR: '10.20.0.1/16' has host bits set (did you mean 10.20.0.0/16?)",
      "14:43 networks.dev_hosts: bad CIDR: '300.1.2.3/8'",
      "19:45 rules[0].when.user_not_in: undefined group 'admin' (did you mean 'admins'?)",
      "21:11 rules[1].name: duplicate rule name 'no-drop' (first defined at line 18)",
      "22:24 rules[1].when.client_in: undefined network 'dev_host' (did you mean 'dev_hosts'?)",
      "22:49 rules[1].when.class: 'DDLL' is not a statement class",
      "26:60 rules[2].when.time.zone: unknown time zone 'Mars/Olympus_Mons'",
      "27:13 rules[2].action: 'refuse' is not one of allow, deny",
      "30:22 rules[3].when.command: a statement condition cannot be used in a rule with on: connect",
      "30:30 unknown key 'enforce' in rules[3].when",
      "32:15 rules[3].sqlstate: '00000' is not an error SQLSTATE",
      "33:10 default: 'maybe' is not one of allow, deny",
  };
  ASSERT_EQ(got.size(), expected_prefixes.size()) << ::testing::PrintToString(got);
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_THAT(got[i], ::testing::StartsWith(expected_prefixes[i]));
  EXPECT_EQ(r.errors.front().to_string().rfind(path + ":3:9: ", 0), 0u);
}

TEST(Config, UnknownKeySuggestsTheClosestKnownOne) {
  EXPECT_EQ(only_error("limits:\n  idle_timeot: 5s\n"),
            "t.yaml:4:3: unknown key 'idle_timeot' in limits (did you mean 'idle_timeout'?)");
  EXPECT_EQ(only_error("rules:\n  - name: a\n    action: deny\n    when: { clases: [DDL] }\n"),
            "t.yaml:6:13: unknown key 'clases' in rules[0].when (did you mean 'class'?)");
  EXPECT_EQ(only_error("zzz: 1\n"), "t.yaml:3:1: unknown key 'zzz' in the configuration");
}

TEST(Config, DuplicateKeyIsAnError) {
  EXPECT_EQ(only_error("environment: a\nenvironment: b\n"),
            "t.yaml:4:1: duplicate key 'environment' in the configuration");
}

TEST(Config, BadCidrsAreReportedWhereWritten) {
  EXPECT_EQ(only_error("networks:\n  dev: [10.0.0.0/8, 10.0.0.0/40]\n"),
            "t.yaml:4:21: networks.dev: bad CIDR: '10.0.0.0/40' has an invalid prefix length (0-32)");
  EXPECT_EQ(only_error("rules:\n  - { name: a, action: deny, when: { client_in: \"fe80::1::/64\" } }\n"),
            "t.yaml:4:49: rules[0].when.client_in: bad CIDR: 'fe80::1::/64' is not an IPv4 or IPv6 address or network");
}

TEST(Config, UndefinedGroupsAndNetworksAreReported) {
  EXPECT_EQ(only_error("groups: { admins: [a] }\nrules:\n  - { name: a, action: deny, when: { user_in: [admins, ops] } }\n"),
            "t.yaml:5:56: rules[0].when.user_in: undefined group 'ops'");
  EXPECT_EQ(only_error("rules:\n  - { name: a, action: deny, when: { client_not_in: office } }\n"),
            "t.yaml:4:53: rules[0].when.client_not_in: undefined network 'office'");
}

TEST(Config, TypeErrorsAndMissingRequiredKeys) {
  EXPECT_EQ(only_error("limits: { max_client_connections: [1, 2] }\n"),
            "t.yaml:3:35: limits.max_client_connections: expected a string, got a list");
  EXPECT_EQ(only_error("log: { statements: maybe }\n"), "t.yaml:3:20: log.statements: expected true or false, got 'maybe'");
  EXPECT_EQ(only_error("rules:\n  - { name: a }\n"), "t.yaml:4:5: missing required key 'action' in rules[0]");
  auto errors = errors_of("upstream: { host: db }\n");
  EXPECT_THAT(errors, ::testing::Contains("t.yaml:1:1: missing required key 'listen' in the configuration"));
}

TEST(Config, BadGlobsAndTimeWindowsAreReported) {
  EXPECT_EQ(only_error("rules:\n  - { name: a, action: deny, when: { user: \"\\\"Bob\" } }\n"),
            "t.yaml:4:44: rules[0].when.user: bad pattern '\"Bob': unbalanced double quote");
  EXPECT_EQ(only_error("rules:\n  - { name: a, action: deny, when: { time: { hours: 9-5, zone: UTC } } }\n"),
            "t.yaml:4:53: rules[0].when.time.hours: expected a range such as 09:00-18:00 (22:00-06:00 wraps "
            "midnight), got '9-5'");
  EXPECT_EQ(only_error("rules:\n  - { name: a, action: deny, when: { time: { days: [fry], zone: UTC } } }\n"),
            "t.yaml:4:53: rules[0].when.time.days: 'fry' is not a day (mon..sun), a range (mon-fri), weekdays or weekend");
  EXPECT_EQ(only_error("rules:\n  - { name: a, action: deny, when: { time: { zone: ../etc/passwd } } }\n"),
            "t.yaml:4:52: rules[0].when.time.zone: unknown time zone '../etc/passwd' (use an IANA name such as "
            "Europe/Berlin or UTC)");
}

TEST(Config, YamlSyntaxErrorHasAPosition) {
  auto errors = errors_of(kHead + "rules: [ { name: a\n");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_THAT(errors[0], ::testing::StartsWith("t.yaml:4:1: "));
}

TEST(Config, DefaultsAreDocumentedValues) {
  auto r = load_config_string(kHead, "t.yaml");
  ASSERT_TRUE(r.ok());
  const Config& c = *r.config;
  EXPECT_EQ(c.limits.max_client_connections, 1000u);
  EXPECT_EQ(c.limits.startup_timeout, 15s);
  EXPECT_EQ(c.limits.idle_timeout, 0s);
  EXPECT_EQ(c.limits.max_message_bytes, 64u << 20);
  EXPECT_EQ(c.auth.mode, AuthMode::Passthrough);
  EXPECT_FALSE(c.tls.enabled());
  EXPECT_FALSE(c.audit.enabled());
  EXPECT_EQ(c.policy.default_action(), policy::Action::Allow);
  EXPECT_TRUE(c.policy.rules().empty());
  EXPECT_EQ(c.workers, 0u);  // one event loop per usable CPU
  EXPECT_EQ(c.upstream.pool_size, 20u);
  EXPECT_EQ(c.upstream.pool_idle_timeout, 60s);
}

TEST(Config, WorkersAndPoolSettings) {
  auto r = load_config_string(
      "listen: 127.0.0.1:6432\n"
      "upstream: { host: 127.0.0.1, port: 5432, tls: disable, pool_size: 0, pool_idle_timeout: 300ms }\n"
      "workers: 1\n",
      "t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->workers, 1u);
  EXPECT_EQ(r.config->upstream.pool_size, 0u);
  EXPECT_EQ(r.config->upstream.pool_idle_timeout, 300ms);

  EXPECT_EQ(only_error("workers: 300\n"), "t.yaml:3:10: workers: expected a whole number from 0 to 256, got '300'");
  auto errors = errors_of(
      "listen: 127.0.0.1:6432\n"
      "upstream: { host: 127.0.0.1, port: 5432, pool_size: -1, pool_idle_timeout: soon }\n");
  EXPECT_THAT(errors, ::testing::ElementsAre(
                          "t.yaml:2:53: upstream.pool_size: expected a whole number from 0 to 100000, got '-1'",
                          "t.yaml:2:76: upstream.pool_idle_timeout: expected a duration such as 500ms, 15s, 2m, 1h "
                          "or 0, got 'soon'"));
}

TEST(Config, ListenTakesSeveralAddressesAndIpv6) {
  auto r = load_config_string("listen: [\"127.0.0.1:6432\", \"[::1]:6433\"]\nupstream: { unix_socket: /run/postgresql, port: 5433 }\n", "/etc/pgwarden/t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->listen.size(), 2u);
  EXPECT_EQ(r.config->listen[1], (Endpoint{"::1", 6433}));
  EXPECT_EQ(r.config->listen[1].to_string(), "[::1]:6433");
  EXPECT_EQ(r.config->upstream.socket_path(), "/run/postgresql/.s.PGSQL.5433");
}

TEST(Config, RelativePathsResolveAgainstTheConfigDirectory) {
  auto r = load_config_string(kHead + "audit: { file: logs/a.jsonl, durability: synced, rotate_bytes: 1GiB, rotate_interval: 1d }\n",
                              "/srv/pgw/conf/pgwarden.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->audit.file, "/srv/pgw/conf/logs/a.jsonl");
  EXPECT_EQ(r.config->audit.durability, Durability::Synced);
  EXPECT_EQ(r.config->audit.rotate_bytes, 1ull << 30);
  EXPECT_EQ(r.config->audit.rotate_interval, 24h);
  EXPECT_EQ(r.config->audit.preallocate, 8u << 20);  // the default
}

TEST(Config, AuditPreallocationIsASizeAndZeroTurnsItOff) {
  auto off = load_config_string(kHead + "audit: { file: /a.jsonl, durability: synced, preallocate: 0 }\n", "t.yaml");
  ASSERT_TRUE(off.ok());
  EXPECT_EQ(off.config->audit.preallocate, 0u);
  auto some = load_config_string(kHead + "audit: { file: /a.jsonl, preallocate: 64MiB }\n", "t.yaml");
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(some.config->audit.preallocate, 64u << 20);
  auto bad = load_config_string(kHead + "audit: { file: /a.jsonl, preallocate: lots }\n", "t.yaml");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.errors.at(0).message, HasSubstr("audit.preallocate: expected a size"));
}

// SCRAM cannot pass through two TLS hops (issue 3): check warns, loading succeeds.
TEST(Config, PassthroughWithTlsOnBothHopsWarns) {
  const auto dir = std::filesystem::temp_directory_path() / "pgwarden_config_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "server.crt") << "x";
  std::ofstream(dir / "server.key") << "x";
  const std::string yaml = "listen: 127.0.0.1:6432\nupstream: { host: db, port: 5432, tls: require }\n"
                           "tls: { cert: server.crt, key: server.key }\nauth: passthrough\n";
  auto r = load_config_string(yaml, (dir / "t.yaml").string());
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r.warnings.size(), 1u);
  EXPECT_THAT(r.warnings[0].message, HasSubstr("auth: scram"));
  EXPECT_EQ(r.warnings[0].line, 4);
  EXPECT_EQ(r.config->tls.cert, (dir / "server.crt").string());
  auto scram = load_config_string(yaml + "# nothing\n", "t.yaml");  // relative to the cwd: files missing
  EXPECT_FALSE(scram.ok());
  EXPECT_THAT(scram.errors.at(0).message, HasSubstr("tls.cert: file not found"));
}

TEST(Config, CrossSectionRequirements) {
  EXPECT_EQ(only_error("auth: { mode: scram }\n"),
            "t.yaml:3:7: auth: scram needs auth_file or auth_query to find users' SCRAM secrets");
}

// PostgreSQL offers no TLS on its Unix socket: requiring it there can never
// connect, so the configuration says so instead of every client failing.
TEST(Config, RequiredUpstreamTlsOverUnixSocketIsAnError) {
  const auto errors = errors_of("listen: 127.0.0.1:6432\nupstream: { unix_socket: /tmp, tls: verify-full }\n");
  ASSERT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  EXPECT_THAT(errors[0], HasSubstr("upstream.tls: verify-full cannot be used with upstream.unix_socket"));
  EXPECT_TRUE(errors_of("listen: 127.0.0.1:6432\nupstream: { unix_socket: /tmp, tls: prefer }\n").empty());
}

TEST(Units, DurationsAndSizes) {
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("15s"), 15s);
  EXPECT_EQ(parse_duration("2m"), 2min);
  EXPECT_EQ(parse_duration("0"), 0ms);
  EXPECT_FALSE(parse_duration("15"));
  EXPECT_FALSE(parse_duration("-1s"));
  EXPECT_FALSE(parse_duration("1 fortnight"));
  EXPECT_EQ(parse_size("64MiB"), 64ull << 20);
  EXPECT_EQ(parse_size("10MB"), 10'000'000ull);
  EXPECT_EQ(parse_size("4096"), 4096ull);
  EXPECT_FALSE(parse_size("99999999999999TiB"));
  EXPECT_FALSE(parse_size("MiB"));
}

TEST(Check, PrintsCountsOrEveryError) {
  std::ostringstream out, err;
  EXPECT_EQ(commands::run_check(examples("pgwarden.yaml"), out, err), 0);
  EXPECT_EQ(out.str(), "ok: 19 rules, 2 groups, 2 networks\n");
  std::ostringstream out2, err2;
  EXPECT_EQ(commands::run_check(std::string(PGWARDEN_TEST_DATA) + "/config/broken.yaml", out2, err2), 1);
  EXPECT_EQ(out2.str(), "");
  EXPECT_THAT(err2.str(), HasSubstr("broken.yaml:3:9: error: listen: expected host:port"));
  EXPECT_THAT(err2.str(), HasSubstr("19 errors"));
  std::ostringstream out3, err3;
  EXPECT_EQ(commands::run_check("/nonexistent/pgwarden.yaml", out3, err3), 1);
  EXPECT_THAT(err3.str(), HasSubstr("cannot open configuration file"));
}

// The catalog lookup role's password file must be private to pgwarden: one
// readable by group or others is refused where it is named.
TEST(Config, CatalogLookupPasswordFileMustBePrivate) {
  const auto dir = std::filesystem::temp_directory_path() / "pgwarden_config_test";
  std::filesystem::create_directories(dir);
  const auto file = dir / "lookup.pass";
  std::ofstream(file) << "secret\n";
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write |
                                         std::filesystem::perms::group_read);
  const std::string yaml = kHead + "catalog_lookup:\n  user: pgwarden_lookup\n  password_file: " + file.string() +
                           "\n  refresh: 5m\n";
  EXPECT_THAT(only_error(yaml.substr(kHead.size())),
              HasSubstr("t.yaml:5:18: catalog_lookup.password_file: " + file.string() + ": mode 0640"));
  std::filesystem::permissions(file, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto r = load_config_string(yaml, "t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config->catalog_lookup.user, "pgwarden_lookup");
  EXPECT_EQ(r.config->catalog_lookup.password_file, file.string());
  EXPECT_EQ(r.config->catalog_lookup.refresh, 5min);
  EXPECT_TRUE(r.config->catalog_lookup.enabled());
}

// Without the section nothing is looked up (fail closed); a section without
// a user is an error at the section.
TEST(Config, CatalogLookupIsOffUnlessConfigured) {
  auto r = load_config_string(kHead, "t.yaml");
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config->catalog_lookup.enabled());
  EXPECT_EQ(only_error("catalog_lookup: { refresh: 1m }\n"), "t.yaml:3:17: missing required key 'user' in catalog_lookup");
  EXPECT_EQ(only_error("catalog_lookup: { user: '' }\n"), "t.yaml:3:25: catalog_lookup.user: must not be empty");
}

}  // namespace
}  // namespace pgwarden::config
