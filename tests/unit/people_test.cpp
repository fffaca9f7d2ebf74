// pgwarden's people file: people with SCRAM-SHA-256 secrets and groups,
// and every mistake reported at its file:line:col.

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <string>

#include "auth/people.hpp"

namespace {

using namespace pgwarden::auth;

const std::string alice_secret = make_scram_verifier("alice-password", 4096, "alice-salt").value().to_string();
const std::string bob_secret = make_scram_verifier("bob-password", 4096, "bob-salt").value().to_string();

std::string errors_of(const std::string& yaml) {
  PeopleLoad l = parse_people(yaml, "people.yaml");
  EXPECT_FALSE(l.ok());
  std::string out;
  for (const auto& e : l.errors) out += e.to_string() + "\n";
  return out;
}

// Two people load with their secrets and groups; lookups are exact.
TEST(People, LoadsPeopleWithGroups) {
  PeopleLoad l = parse_people("people:\n"
                              "  - name: alice\n"
                              "    scram: \"" + alice_secret + "\"\n"
                              "    groups: [dba, oncall]\n"
                              "  - name: bob\n"
                              "    scram: '" + bob_secret + "'\n",
                              "people.yaml");
  ASSERT_TRUE(l.ok()) << l.errors[0].to_string();
  EXPECT_EQ(l.people->size(), 2u);
  const Person* alice = l.people->find("alice");
  ASSERT_NE(alice, nullptr);
  EXPECT_EQ(alice->scram.to_string(), alice_secret);
  EXPECT_EQ(alice->groups, (std::vector<std::string>{"dba", "oncall"}));
  const Person* bob = l.people->find("bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_TRUE(bob->groups.empty());
  EXPECT_EQ(l.people->find("Alice"), nullptr);
  EXPECT_EQ(l.people->find("carol"), nullptr);
}

// An md5 or bcrypt hash is refused, saying what it looks like and which
// format is accepted.
TEST(People, UnknownHashFormatNamesTheAcceptedOne) {
  const std::string tail =
      "; the people file accepts only SCRAM-SHA-256 secrets as PostgreSQL stores them, "
      "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (make one with `pgwarden people hash`)\n";
  EXPECT_EQ(errors_of("people:\n  - name: alice\n    scram: md5" + std::string(32, 'a') + "\n"),
            "people.yaml:3:12: scram of person \"alice\": unknown hash format (an md5 hash)" + tail);
  EXPECT_EQ(errors_of("people:\n  - name: bob\n    scram: \"$2b$12$abcdefghijklmnopqrstuu\"\n"),
            "people.yaml:3:12: scram of person \"bob\": unknown hash format (a bcrypt hash)" + tail);
  EXPECT_EQ(errors_of("people:\n  - name: bob\n    scram: hunter2\n"),
            "people.yaml:3:12: scram of person \"bob\": unknown hash format (not a hash pgwarden knows (a plaintext "
            "password?))" + tail);
  EXPECT_EQ(errors_of("people:\n  - name: bob\n    scram: \"SCRAM-SHA-256$4096:c2FsdA==$AAAA:BBBB\"\n"),
            "people.yaml:3:12: scram of person \"bob\": invalid SCRAM secret: The StoredKey is not base64 of 32 bytes.\n");
}

// The same name twice is an error at the second, naming the first line.
TEST(People, DuplicateName) {
  EXPECT_EQ(errors_of("people:\n"
                      "  - {name: alice, scram: \"" + alice_secret + "\"}\n"
                      "  - {name: alice, scram: \"" + bob_secret + "\"}\n"),
            "people.yaml:3:12: person \"alice\" is listed twice (first on line 2)\n");
}

// Missing fields and unknown keys, each with its position.
TEST(People, MissingFieldsAndUnknownKeys) {
  EXPECT_EQ(errors_of("people:\n  - name: alice\n    groups: [dba]\n"),
            "people.yaml:2:5: missing required key 'scram' in a person\n");
  EXPECT_EQ(errors_of("people:\n  - scram: \"" + alice_secret + "\"\n"),
            "people.yaml:2:5: missing required key 'name' in a person\n");
  EXPECT_EQ(errors_of("people:\n  - name: alice\n    scram: \"" + alice_secret + "\"\n    group: [dba]\n"),
            "people.yaml:4:5: unknown key 'group' in a person (did you mean 'groups'?)\n");
  EXPECT_EQ(errors_of("persons: []\n"),
            "people.yaml:1:1: unknown key 'persons' in the people file\n"
            "people.yaml:1:1: missing required key 'people' in the people file\n");
  EXPECT_EQ(errors_of("people:\n  - name: alice\n    scram: \"" + alice_secret + "\"\n    groups: [dba, dba]\n"),
            "people.yaml:4:19: groups: \"dba\" is listed twice\n");
  EXPECT_EQ(errors_of("people: {alice: x}\n"), "people.yaml:1:9: people: expected a list of people\n");
  EXPECT_EQ(errors_of("- alice\n"), "people.yaml:1:1: the people file must be a mapping with a 'people' list\n");
  EXPECT_EQ(errors_of("people:\n  - name: [alice\n"), "people.yaml:3:1: end of sequence flow not found\n");
}

// Every error in the file is reported in one pass.
TEST(People, ReportsEveryError) {
  PeopleLoad l = parse_people("people:\n  - name: a\n    scram: md5\n  - name: b\n  - name: c\n    scram: x\n", "p.yaml");
  EXPECT_EQ(l.errors.size(), 3u);
}

// The file loads from a path; a missing file says so.
TEST(People, LoadsFromFile) {
  const std::string path = ::testing::TempDir() + "/people_test.yaml";
  std::ofstream(path) << "people:\n  - name: alice\n    scram: \"" << alice_secret << "\"\n";
  PeopleLoad l = load_people_file(path);
  ASSERT_TRUE(l.ok());
  EXPECT_NE(l.people->find("alice"), nullptr);
  std::remove(path.c_str());
  l = load_people_file(path);
  ASSERT_FALSE(l.ok());
  EXPECT_NE(l.errors[0].message.find("cannot read the people file"), std::string::npos);
}

}  // namespace
