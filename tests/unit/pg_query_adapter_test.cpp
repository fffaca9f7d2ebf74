// The adapter is the only code that reaches libpg_query's private
// thread-local standard_conforming_strings. If an upgrade of the library
// renames it, this test (and pgwarden) no longer links; if the lexer stops
// reading it, the readings below stop differing and this test fails.

#include <gtest/gtest.h>

#include <thread>

#include "policy/pg_query_adapter.hpp"

namespace pgwarden::policy {
namespace {

// With standard_conforming_strings off, a backslash escapes the quote, so
// the literal runs on; with it on, the literal ends at the backslash's quote.
constexpr std::string_view escaped_quote = R"(SELECT 'a\'; DROP TABLE t; --')";

TEST(PgQueryAdapter, LexerFollowsStandardConformingStrings) {
  const RawParse standard(escaped_quote, true);
  ASSERT_TRUE(standard.ok()) << standard.error();
  const RawParse legacy(escaped_quote, false);
  ASSERT_TRUE(legacy.ok()) << legacy.error();
  // Two statements (SELECT 'a\'; DROP TABLE t) one way, one the other: the
  // trees differ in length, the standard one holding a DropStmt.
  EXPECT_NE(standard.tree(), legacy.tree());
  EXPECT_GT(standard.tree().size(), legacy.tree().size());
}

TEST(PgQueryAdapter, SettingIsPerThread) {
  std::string other_tree;
  std::thread t([&] {
    const RawParse legacy(escaped_quote, false);
    other_tree.assign(legacy.tree());
  });
  t.join();
  const RawParse here(escaped_quote, true);
  EXPECT_NE(here.tree(), other_tree);
}

TEST(PgQueryAdapter, ErrorsCarryMessageAndPosition) {
  const RawParse bad("SELECT FROM WHERE", true);
  ASSERT_FALSE(bad.ok());
  EXPECT_FALSE(bad.error().empty());
  EXPECT_GT(bad.error_position(), 0);
  EXPECT_TRUE(bad.tree().empty());
}

}  // namespace
}  // namespace pgwarden::policy
