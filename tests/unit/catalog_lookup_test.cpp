#include "proxy/session/catalog_lookup.hpp"

#include <gtest/gtest.h>

namespace pgwarden::proxy {
namespace {

// The CommandComplete tags after which a database's catalog is read again:
// every change to what a function, operator or cast does, and DO and CALL,
// which can make such a change out of sight.
TEST(CatalogLookup, DdlThatChangesCallsIsRecognisedByItsTag) {
  for (const char* tag : {"CREATE FUNCTION", "ALTER FUNCTION", "DROP FUNCTION", "CREATE PROCEDURE", "DROP ROUTINE",
                          "CREATE OPERATOR", "CREATE CAST", "DROP CAST", "CREATE TYPE", "ALTER DOMAIN",
                          "CREATE EXTENSION", "ALTER EXTENSION", "DROP SCHEMA", "CREATE LANGUAGE", "DO", "CALL",
                          "DROP OWNED", "REASSIGN OWNED", "CREATE AGGREGATE", "ALTER OPERATOR FAMILY"})
    EXPECT_TRUE(changes_catalog(tag)) << tag;
  for (const char* tag : {"SELECT 1", "INSERT 0 1", "CREATE TABLE", "DROP TABLE", "ALTER TABLE", "CREATE INDEX",
                          "CREATE VIEW", "SET", "BEGIN", "COMMIT", "CREATE FUNCTIONS", ""})
    EXPECT_FALSE(changes_catalog(tag)) << tag;
}

// Without catalog_lookup nothing is looked up and no catalog is ever given.
TEST(CatalogLookup, OffGivesNoCatalog) {
  asio::io_context io;
  CatalogLookup lookup(UpstreamTarget{}, nullptr);
  lookup.replace({});
  EXPECT_FALSE(lookup.enabled());
  EXPECT_EQ(lookup.find("db", io.get_executor()), nullptr);
  lookup.invalidate("db", io.get_executor());
  EXPECT_EQ(io.poll(), 0u);  // no lookup was started
}

}  // namespace
}  // namespace pgwarden::proxy
