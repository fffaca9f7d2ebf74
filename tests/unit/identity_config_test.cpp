// The people sections of a configuration (identity, credentials, grants):
// every mistake at its line:col; secret files that are not pgwarden's alone
// refused by `pgwarden check`; and the shipped identity example accepted
// with its files in place.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "commands/check.hpp"
#include "config/config.hpp"
#include "config/secret_file.hpp"

namespace pgwarden::config {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kHead = "listen: 127.0.0.1:6432\nupstream: { host: 127.0.0.1, port: 5432, tls: disable }\n";

std::vector<std::string> errors_of(const std::string& yaml) {
  auto r = load_config_string(kHead + yaml, "t.yaml");
  std::vector<std::string> out;
  for (const auto& e : r.errors) out.push_back(e.to_string());
  return out;
}

std::vector<std::string> warnings_of(const std::string& yaml) {
  auto r = load_config_string(kHead + yaml, "t.yaml");
  for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
  std::vector<std::string> out;
  for (const auto& w : r.warnings) out.push_back(w.to_string());
  return out;
}

/// A directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "pgwarden-identity-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name, const std::string& text, mode_t mode = 0600) const {
    const fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::trunc) << text;
    ::chmod(p.c_str(), mode);
    return p.string();
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

TEST(IdentityConfig, FullSectionsLoadWithTheirDefaults) {
  const std::string yaml =
      "tls: { cert: /dev/null, key: /dev/null, ca: /dev/null, client_cert: optional }\n"
      "identity:\n"
      "  people_file: people.yaml\n"
      "  certificate: { person: cn, groups: ou }\n"
      "  token: { jwks_file: jwks.json, issuer: https://id.example, audience: pgwarden }\n"
      "credentials:\n"
      "  app: { password_file: secrets/app }\n"
      "  reporting: { cert: r.crt, key: r.key }\n"
      "grants:\n"
      "  - { people: [alice], roles: [app, reporting], default_role: reporting }\n";
  auto r = load_config_string(kHead + yaml, "/etc/pgwarden/pgwarden.yaml");
  for (const auto& e : r.errors) ADD_FAILURE() << e.to_string();
  ASSERT_TRUE(r.ok());
  const Config& c = *r.config;
  EXPECT_TRUE(c.identity.enabled());
  EXPECT_EQ(c.identity.people_file, "/etc/pgwarden/people.yaml");
  ASSERT_TRUE(c.identity.certificate);
  EXPECT_EQ(c.identity.certificate->person, CertificateField::Cn);
  EXPECT_EQ(c.identity.certificate->groups, CertificateField::Ou);
  ASSERT_TRUE(c.identity.token);
  EXPECT_EQ(c.identity.token->jwks_file, "/etc/pgwarden/jwks.json");
  EXPECT_EQ(c.identity.token->audience, std::vector<std::string>{"pgwarden"});
  EXPECT_EQ(c.identity.token->person_claim, "sub");
  EXPECT_EQ(c.identity.token->groups_claim, "groups");
  EXPECT_EQ(c.identity.token->clock_skew, std::chrono::seconds(60));
  EXPECT_EQ(c.identity.token->max_bytes, 16u << 10);
  EXPECT_EQ(c.credentials.at("app").password_file, "/etc/pgwarden/secrets/app");
  EXPECT_EQ(c.credentials.at("reporting").key, "/etc/pgwarden/r.key");
  ASSERT_EQ(c.grants.grants().size(), 1u);
  EXPECT_EQ(c.grants.grants()[0].name, "grants[0]");
  EXPECT_EQ(c.grants.grants()[0].default_role, "reporting");
}

TEST(IdentityConfig, GrantMistakesAreReportedWhereWritten) {
  const std::string yaml =
      "identity: { people_file: people.yaml }\n"  // line 3
      "networks: { office: [10.0.0.0/24] }\n"
      "credentials: { app: { password_file: app.secret } }\n"
      "grants:\n"
      "  - { people: [alice], roles: [app], networks: [ofice] }\n"         // line 7
      "  - { people: [bob], roles: [app, postgres] }\n"                    // line 8
      "  - { roles: [app] }\n"                                             // line 9
      "  - { people: [carol], roles: [app], default_role: postgres }\n"    // line 10
      "  - { people: [\"d*\"], roles: [app], databases: [\"\\\"x\"] }\n"   // line 11
      "  - { people: [erin], role: app }\n";                               // line 12
  EXPECT_THAT(errors_of(yaml),
              ElementsAre("t.yaml:7:49: grants[0].networks: undefined network 'ofice' (did you mean 'office'?)",
                          "t.yaml:8:35: grants[1].roles: role 'postgres' has no entry in credentials: pgwarden cannot "
                          "log in as it",
                          "t.yaml:9:5: grants[2]: needs people or groups (whom the grant is for)",
                          "t.yaml:10:52: grants[3].default_role: 'postgres' is not one of the grant's roles",
                          "t.yaml:11:16: grants[4].people: 'd*' is not a person name (exact names, no patterns)",
                          "t.yaml:11:49: grants[4].databases: bad pattern '\"x': unbalanced double quote",
                          "t.yaml:12:5: missing required key 'roles' in grants[5]",
                          "t.yaml:12:23: unknown key 'role' in grants[5] (did you mean 'roles'?)"));
}

TEST(IdentityConfig, DuplicateGrantNamesAreReported) {
  EXPECT_THAT(errors_of("identity: { people_file: p }\ncredentials: { app: { password_file: a } }\ngrants:\n"
                        "  - { name: g, people: [a], roles: [app] }\n  - { name: g, people: [b], roles: [app] }\n"),
              ElementsAre("t.yaml:7:13: grants[1].name: duplicate grant name 'g' (first defined at line 6)"));
}

TEST(IdentityConfig, CredentialsNeedOneWayToLogIn) {
  EXPECT_THAT(errors_of("credentials:\n  a: { cert: a.crt }\n  b: {}\n  c: { password_file: c, cert: c.crt, key: c.key }\n"
                        "  d: { pasword_file: d }\n"),
              ElementsAre("t.yaml:4:6: credentials.a: cert and key must be given together",
                          "t.yaml:5:6: credentials.b: needs either password_file or cert and key (one way to log in "
                          "as the role)",
                          "t.yaml:6:6: credentials.c: needs either password_file or cert and key (one way to log in "
                          "as the role)",
                          "t.yaml:7:6: credentials.d: needs either password_file or cert and key (one way to log in "
                          "as the role)",
                          "t.yaml:7:8: unknown key 'pasword_file' in credentials.d (did you mean 'password_file'?)"));
}

// A certificate names nobody unless pgwarden verifies it; a token is a bearer
// credential, never accepted in plaintext.
TEST(IdentityConfig, CertificatesNeedClientCertsAndTokensNeedTls) {
  EXPECT_THAT(errors_of("identity:\n  certificate: { person: san_email }\n"),
              ElementsAre("t.yaml:4:16: identity.certificate: needs tls.client_cert (optional or require) and tls.ca "
                          "to verify certificates"));
  EXPECT_THAT(errors_of("identity:\n  token: { jwks_file: j, issuer: i, audience: [a, b] }\n"),
              ElementsAre(HasSubstr("t.yaml:4:10: identity.token: a token is a bearer credential and is accepted "
                                    "only over TLS")));
  EXPECT_THAT(errors_of("tls: { cert: /dev/null, key: /dev/null }\n"
                        "identity:\n  token: { jwks_file: j, audience: a, clock_skew: 1h, max_bytes: 2MiB }\n"),
              ElementsAre("t.yaml:5:10: missing required key 'issuer' in identity.token",
                          "t.yaml:5:51: identity.token.clock_skew: at most 5m (a token's lifetime is its defence)",
                          "t.yaml:5:66: identity.token.max_bytes: must be from 1KiB to 1MiB"));
  EXPECT_THAT(errors_of("identity:\n  certificate: { person: uid }\n"),
              ElementsAre(HasSubstr("t.yaml:4:16: identity.certificate: needs tls.client_cert"),
                          "t.yaml:4:26: identity.certificate.person: 'uid' is not one of san_email, san_uri, cn"));
}

// Grants without any way for people to log in apply to nobody; identity
// without grants refuses everyone; a credential no grant uses is unused.
TEST(IdentityConfig, InertSectionsWarn) {
  EXPECT_THAT(warnings_of("grants:\n  - { people: [a], roles: [app] }\n"),
              ElementsAre(HasSubstr("t.yaml:4:3: grants: no identity (people_file, certificate or token) is "
                                    "configured")));
  EXPECT_THAT(warnings_of("identity: { people_file: p }\n"),
              ElementsAre("t.yaml:3:11: identity: no grants are configured, so every person is refused at login"));
  EXPECT_THAT(warnings_of("identity: { people_file: p }\ncredentials: { app: { password_file: a }, old: "
                          "{ password_file: o } }\ngrants: [ { people: [a], roles: [app] } ]\n"),
              ElementsAre("t.yaml:4:48: credentials.old: no grant names role 'old'"));
}

// A secret file must be pgwarden's alone: 0600 or 0400, owned by its user.
TEST(SecretFile, RefusesFilesOthersCanReadOrChange) {
  TempDir dir;
  const std::string good = dir.file("app", "s3cret\n", 0600);
  EXPECT_EQ(secret_file_problem(good), "");
  EXPECT_EQ(secret_file_problem(dir.file("ro", "s3cret\n", 0400)), "");
  for (mode_t mode : {0640, 0604, 0620, 0644, 0660, 0666}) {
    const std::string path = dir.file("loose", "s3cret\n", mode);
    EXPECT_THAT(secret_file_problem(path), HasSubstr("lets other users read or change it")) << std::oct << mode;
    std::string out = "untouched", error;
    EXPECT_FALSE(read_secret_file(path, out, error)) << std::oct << mode;
    EXPECT_THAT(error, HasSubstr("must be 0600 or 0400"));
    EXPECT_EQ(out, "");
  }
  EXPECT_THAT(secret_file_problem((dir.path() / "missing").string()), HasSubstr("No such file"));
  EXPECT_THAT(secret_file_problem(dir.path().string()), HasSubstr("not a regular file"));
  std::string out, error;
  ASSERT_TRUE(read_secret_file(good, out, error)) << error;
  EXPECT_EQ(out, "s3cret\n");
  EXPECT_EQ(password_of(out), "s3cret");
  EXPECT_EQ(password_of("a b\r\nsecond line"), "a b");
}

TEST(SecretFile, RefusesFilesTooLargeToBeASecret) {
  TempDir dir;
  const std::string path = dir.file("big", std::string(max_secret_file_bytes + 1, 'x'), 0600);
  EXPECT_THAT(secret_file_problem(path), HasSubstr("not a secret file"));
  std::string out, error;
  EXPECT_FALSE(read_secret_file(path, out, error));
}

// The shipped example, copied beside the files it names, passes check; a
// password file others can read fails it, naming the key and the fix, and
// a missing JWKS file is reported too.
TEST(IdentityConfig, IdentityExampleChecksCleanWithItsFiles) {
  TempDir dir;
  const fs::path example = fs::path(PGWARDEN_TEST_DATA).parent_path().parent_path() / "examples" / "identity.yaml";
  std::ifstream in(example);
  std::stringstream text;
  text << in.rdbuf();
  ASSERT_FALSE(text.str().empty()) << example;
  const std::string config = dir.file("identity.yaml", text.str(), 0644);
  for (const char* f : {"server.crt", "server.key", "clients-ca.crt", "userlist.txt", "secrets/reporting.crt"})
    dir.file(f, "placeholder\n", 0644);
  const auto data = [](const char* name) {
    std::ifstream in(std::string(PGWARDEN_TEST_DATA) + "/config/identity/" + name);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  };
  dir.file("jwks.json", data("jwks.json"), 0644);
  const std::string app = dir.file("secrets/app", "app-password\n", 0600);
  dir.file("secrets/readonly", "ro-password\n", 0400);
  dir.file("secrets/reporting.key", "key\n", 0600);
  const std::string people = dir.file("people.yaml", data("people.yaml"), 0600);

  std::ostringstream out, err;
  EXPECT_EQ(commands::run_check(config, out, err), 0) << err.str();
  EXPECT_THAT(out.str(), HasSubstr(" grants, 3 credentials\n"));
  EXPECT_EQ(err.str(), "");

  ::chmod(app.c_str(), 0644);
  fs::remove(dir.path() / "jwks.json");
  std::ostringstream out2, err2;
  EXPECT_EQ(commands::run_check(config, out2, err2), 1);
  EXPECT_THAT(err2.str(), HasSubstr("error: credentials.app.password_file: " + app + ": mode 0644 lets other users"));
  EXPECT_THAT(err2.str(), HasSubstr("chmod 600 " + app));
  EXPECT_THAT(err2.str(), HasSubstr("error: identity.token.jwks_file: "));
  EXPECT_THAT(err2.str(), HasSubstr("2 errors"));
  EXPECT_EQ(out2.str(), "");
}

// What the people file and the JWKS file hold is checked too, by the
// loaders serve uses, at the file's own line and column.
TEST(IdentityConfig, CheckReadsThePeopleFileAndTheKeySet) {
  TempDir dir;
  const std::string config = dir.file("pgwarden.yaml", R"(listen: 127.0.0.1:6432
upstream: { host: 127.0.0.1, port: 5432 }
tls: { cert: server.crt, key: server.key, ca: ca.crt, client_cert: optional }
identity:
  people_file: people.yaml
  token: { jwks_file: jwks.json, issuer: "https://id.example", audience: pgwarden }
credentials:
  app: { password_file: app.pw }
grants:
  - people: [alice]
    roles: [app]
)", 0644);
  for (const char* f : {"server.crt", "server.key", "ca.crt"}) dir.file(f, "placeholder\n", 0644);
  dir.file("app.pw", "secret\n", 0600);
  dir.file("people.yaml", "people:\n  - name: alice\n    scram: \"md5abcdef\"\n", 0600);
  dir.file("jwks.json", R"({"keys":[{"kty":"oct","kid":"k1","k":"c2VjcmV0"}]})", 0644);
  std::ostringstream out, err;
  EXPECT_EQ(commands::run_check(config, out, err), 1);
  EXPECT_THAT(err.str(), HasSubstr("people.yaml:3:"));
  EXPECT_THAT(err.str(), HasSubstr("jwks.json:1:"));
  EXPECT_THAT(err.str(), HasSubstr("2 errors"));
}

}  // namespace
}  // namespace pgwarden::config
