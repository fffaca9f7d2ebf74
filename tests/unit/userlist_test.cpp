// The auth_file (pgbouncer's userlist format): quoting, comments, lookups,
// every error at its line:col, duplicates, and plaintext passwords refused.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <variant>
#include <vector>

#include "auth/userlist.hpp"

namespace pgwarden::auth {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// Made by PostgreSQL 15.18 for the password 'correct horse battery staple'
// (SELECT rolpassword FROM pg_authid; see scram_test.cpp).
const std::string scram_secret =
    "SCRAM-SHA-256$4096:d6bDZcR0M1uBrJjh/8fjcg==$K0QJUhOtkF3gr4kaPpGkNTDd0YZ3r4zUQ/TIBddAPII=:"
    "jsSYuoNFHUkgR9MK+XQqdZHB+yq2dnw3MRomHZ9+FWo=";
const std::string md5_secret = "md5f4ba8d67593aeb8647e2161ea8800afd";

std::vector<std::string> errors_of(const std::string& text) {
  UserlistLoad load = parse_userlist(text, "users.txt");
  std::vector<std::string> out;
  for (const auto& e : load.errors) out.push_back(e.to_string());
  EXPECT_EQ(load.ok(), out.empty());
  return out;
}

std::string only_error(const std::string& text) {
  auto errors = errors_of(text);
  EXPECT_EQ(errors.size(), 1u) << ::testing::PrintToString(errors);
  return errors.empty() ? "" : errors.front();
}

// A typical file: comments of both kinds, blank lines, indentation, a SCRAM
// user and an md5 user; each user's secret is found by exact name.
TEST(Userlist, ParsesUsersCommentsAndBlankLines) {
  UserlistLoad load = parse_userlist("; pgbouncer style comment\n"
                                     "# another comment\n"
                                     "\n"
                                     "   \t\n"
                                     "\"alice\" \"" + scram_secret + "\"\n"
                                     "  \"bob\"\t\"" + md5_secret + "\"\n",
                                     "users.txt");
  ASSERT_TRUE(load.ok()) << ::testing::PrintToString(load.errors.size());
  EXPECT_EQ(load.userlist->size(), 2u);
  const UserSecret* alice = load.userlist->find("alice");
  ASSERT_NE(alice, nullptr);
  ASSERT_TRUE(std::holds_alternative<ScramVerifier>(*alice));
  EXPECT_EQ(std::get<ScramVerifier>(*alice).to_string(), scram_secret);
  const UserSecret* bob = load.userlist->find("bob");
  ASSERT_NE(bob, nullptr);
  EXPECT_EQ(std::get<Md5Secret>(*bob).hash, md5_secret);
}

// Names compare exactly: PostgreSQL role names are case-sensitive, and a
// user that is not listed is not found.
TEST(Userlist, LookupIsExact) {
  UserlistLoad load = parse_userlist("\"Alice\" \"" + md5_secret + "\"\n", "users.txt");
  ASSERT_TRUE(load.ok());
  EXPECT_NE(load.userlist->find("Alice"), nullptr);
  EXPECT_EQ(load.userlist->find("alice"), nullptr);
  EXPECT_EQ(load.userlist->find("Alice "), nullptr);
  EXPECT_EQ(load.userlist->find(""), nullptr);
}

// A double quote inside a field is written twice; spaces and other
// punctuation are kept as they are.
TEST(Userlist, DoubledQuoteIsOneQuote) {
  UserlistLoad load = parse_userlist("\"say \"\"hi\"\", ok\" \"" + md5_secret + "\"\n\"\"\"\" \"" + md5_secret + "\"",
                                     "users.txt");
  ASSERT_TRUE(load.ok());
  EXPECT_NE(load.userlist->find("say \"hi\", ok"), nullptr);
  EXPECT_NE(load.userlist->find("\""), nullptr);
  EXPECT_EQ(load.userlist->size(), 2u);
}

// As pgbouncer does, text after the secret is ignored, and CRLF line
// endings and a last line without newline are accepted.
TEST(Userlist, RestOfLineAndLineEndingsAsPgbouncer) {
  UserlistLoad load = parse_userlist("\"alice\" \"" + md5_secret + "\" extra fields ignored\r\n"
                                     "\"bob\" \"" + scram_secret + "\"",
                                     "users.txt");
  ASSERT_TRUE(load.ok());
  EXPECT_EQ(load.userlist->size(), 2u);
  EXPECT_NE(load.userlist->find("bob"), nullptr);
}

// An empty file (or only comments) is a valid, empty list.
TEST(Userlist, EmptyFileIsAnEmptyList) {
  for (const char* text : {"", "\n", "# nobody yet\n"}) {
    UserlistLoad load = parse_userlist(text, "users.txt");
    ASSERT_TRUE(load.ok()) << text;
    EXPECT_EQ(load.userlist->size(), 0u);
  }
}

// A plaintext password is refused at its position, and the message says why
// and what to use instead, without repeating the password.
TEST(Userlist, PlaintextPasswordIsRefused) {
  const std::string e = only_error("\"alice\" \"" + md5_secret + "\"\n\"bob\" \"hunter2\"\n");
  EXPECT_THAT(e, HasSubstr("users.txt:2:7: the secret of user \"bob\""));
  EXPECT_THAT(e, HasSubstr("no plaintext passwords"));
  EXPECT_THAT(e, HasSubstr("pg_authid.rolpassword"));
  EXPECT_THAT(e, Not(HasSubstr("hunter2")));
  // md5 in another case, or one digit short, is not PostgreSQL's md5 form.
  EXPECT_THAT(only_error("\"a\" \"MD5F4BA8D67593AEB8647E2161EA8800AFD\""), HasSubstr("no plaintext passwords"));
  EXPECT_THAT(only_error("\"a\" \"md5f4ba8d67593aeb8647e2161ea8800af\""), HasSubstr("no plaintext passwords"));
  EXPECT_THAT(only_error("\"a\" \"\""), HasSubstr("no plaintext passwords"));
}

// A damaged SCRAM secret is refused with the part at fault.
TEST(Userlist, DamagedScramSecretIsRefused) {
  std::string damaged = scram_secret;
  damaged.resize(damaged.size() - 4);
  EXPECT_EQ(only_error("\"alice\" \"" + damaged + "\""),
            "users.txt:1:9: invalid SCRAM secret for user \"alice\": The ServerKey is not base64 of 32 bytes.");
}

// Every syntax error names its line and column (1-based, in bytes).
TEST(Userlist, SyntaxErrorsCarryLineAndColumn) {
  const std::string ok = "\"ok\" \"" + md5_secret + "\"\n";
  EXPECT_EQ(only_error(ok + "alice \"" + md5_secret + "\""), "users.txt:2:1: expected a user name in double quotes");
  EXPECT_EQ(only_error(ok + "  \"alice\" \"" + md5_secret + "\"x"),
            "users.txt:2:48: expected a blank or the end of the line after the secret");
  EXPECT_EQ(only_error(ok + "\"alice"), "users.txt:2:1: unterminated user name: the closing double quote is missing");
  EXPECT_EQ(only_error(ok + "\"alice\" \"md5"),
            "users.txt:2:9: unterminated secret: the closing double quote is missing");
  EXPECT_EQ(only_error(ok + "\"alice\""),
            "users.txt:2:8: expected the secret of user \"alice\" in double quotes after the user name");
  EXPECT_EQ(only_error(ok + "\"alice\"x \"" + md5_secret + "\""),
            "users.txt:2:8: expected the secret of user \"alice\" in double quotes after the user name");
  EXPECT_EQ(only_error(ok + "\"alice\" " + md5_secret),
            "users.txt:2:9: expected the secret of user \"alice\" in double quotes after the user name");
  EXPECT_EQ(only_error(ok + "\"\" \"" + md5_secret + "\""), "users.txt:2:1: empty user name");
}

// A user listed twice is an error naming both lines: which secret was meant
// is ambiguous, so pgwarden does not guess.
TEST(Userlist, DuplicateUserIsAnError) {
  EXPECT_EQ(only_error("\"alice\" \"" + md5_secret + "\"\n# later\n\"alice\" \"" + scram_secret + "\"\n"),
            "users.txt:3:1: user \"alice\" is listed twice (first on line 1)");
}

// All errors of a file are reported at once, and a file with any error
// yields no userlist at all.
TEST(Userlist, AllErrorsAreReportedAndNothingLoads) {
  UserlistLoad load = parse_userlist("\"a\" \"plain\"\n\"b\" \"" + md5_secret + "\"\nc\n\"d", "users.txt");
  EXPECT_FALSE(load.ok());
  EXPECT_EQ(load.userlist, nullptr);
  ASSERT_EQ(load.errors.size(), 3u);
  EXPECT_EQ(load.errors[0].line, 1);
  EXPECT_EQ(load.errors[1].line, 3);
  EXPECT_EQ(load.errors[2].line, 4);
}

// The file form: read from disk; a missing file is one clear error.
TEST(Userlist, LoadsFromFile) {
  const std::filesystem::path path = std::filesystem::temp_directory_path() / "pgwarden_userlist_test.txt";
  {
    std::ofstream out(path);
    out << "\"alice\" \"" << scram_secret << "\"\n";
  }
  UserlistLoad load = load_userlist_file(path.string());
  std::filesystem::remove(path);
  ASSERT_TRUE(load.ok());
  EXPECT_NE(load.userlist->find("alice"), nullptr);

  UserlistLoad missing = load_userlist_file(path.string());
  ASSERT_FALSE(missing.ok());
  ASSERT_EQ(missing.errors.size(), 1u);
  EXPECT_THAT(missing.errors[0].to_string(), HasSubstr("cannot read the auth file: No such file or directory"));
}

}  // namespace
}  // namespace pgwarden::auth
