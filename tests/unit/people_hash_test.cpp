// `pgwarden people hash`: the printed secret is one the people file accepts
// and that belongs to the password read.

#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "auth/people.hpp"
#include "auth/scram.hpp"
#include "commands/people_hash.hpp"

namespace {

using namespace pgwarden;

// The secret printed for a password loads in a people file and is the one
// make_scram_verifier gives for that password and salt.
TEST(PeopleHash, PrintsASecretThePeopleFileAccepts) {
  std::istringstream in("correct horse battery staple\n");
  std::ostringstream out, err;
  ASSERT_EQ(commands::run_people_hash(4096, in, out, err), 0) << err.str();
  std::string secret = out.str();
  ASSERT_TRUE(secret.ends_with('\n'));
  secret.pop_back();
  auto v = auth::ScramVerifier::parse(secret);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->iterations, 4096);
  EXPECT_EQ(*v, auth::make_scram_verifier("correct horse battery staple", 4096, v->salt).value());
  auth::PeopleLoad l = auth::parse_people("people:\n  - name: alice\n    scram: \"" + secret + "\"\n", "p.yaml");
  EXPECT_TRUE(l.ok());
}

// A CRLF line end is not part of the password; no line at all is an error.
TEST(PeopleHash, LineEndsAndEmptyInput) {
  std::istringstream crlf("pencil\r\n");
  std::ostringstream out, err;
  ASSERT_EQ(commands::run_people_hash(10, crlf, out, err), 0);
  auto v = auth::ScramVerifier::parse(out.str().substr(0, out.str().size() - 1));
  ASSERT_TRUE(v);
  EXPECT_EQ(*v, auth::make_scram_verifier("pencil", 10, v->salt).value());
  std::istringstream empty("");
  std::ostringstream out2, err2;
  EXPECT_EQ(commands::run_people_hash(4096, empty, out2, err2), 1);
  EXPECT_EQ(err2.str(), "error: no password on standard input\n");
  EXPECT_EQ(out2.str(), "");
  std::istringstream blank("\n");
  EXPECT_EQ(commands::run_people_hash(4096, blank, out2, err2), 1);
}

}  // namespace
