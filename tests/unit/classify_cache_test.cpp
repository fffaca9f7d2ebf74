#include "policy/classify_cache.hpp"

#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

#include "policy/token_key.hpp"

namespace pgwarden::policy {
namespace {

std::string key_of(std::string_view sql) {
  TokenKey k;
  return make_token_key(sql, k) ? k.key : std::string("<none>");
}

// The same text twice is parsed once; the second time is the same shared result.
TEST(ClassifyCache, SecondLookupOfTheSameTextIsAHit) {
  ClassifyCache cache;
  ClassifiedTextPtr a = cache.classify("DELETE FROM users WHERE id = 1");
  ClassifiedTextPtr b = cache.classify("DELETE FROM users WHERE id = 1");
  EXPECT_EQ(a.get(), b.get());
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.find("DELETE FROM users WHERE id = 1").get(), a.get());
  EXPECT_EQ(cache.find("DELETE FROM users WHERE id = 2"), nullptr);
}

// An ORM query with a different inline constant costs no parse, and gets
// the facts every text of that shape shares: one statement spanning the
// whole text (length 0, "to the end").
TEST(ClassifyCache, QueriesDifferingInConstantsShareATokenKey) {
  ClassifyCache cache;
  cache.classify("SELECT * FROM orders WHERE id = 1 AND note = 'a'");
  std::string other = "select *  FROM orders /* hot */ WHERE id = 123456 AND note = 'it''s';";
  ClassifiedTextPtr t = cache.classify(other);
  EXPECT_EQ(cache.stats().token_hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
  ASSERT_EQ(t->statements.size(), 1u);
  EXPECT_EQ(t->statements[0].command_tag, "SELECT");
  EXPECT_EQ(t->statements[0].location, 0u);
  EXPECT_EQ(t->statements[0].length, 0u);
  EXPECT_EQ(cache.classify("SELECT * FROM orders WHERE id = 7 AND note = 'b'"), t);
}

// SET ROLE 'x' and set_config('role', ...) depend on their constant: a cached
// 'reader' must never answer for 'admin'.
TEST(ClassifyCache, RoleChangesNeverShareATokenKey) {
  ClassifyCache cache;
  cache.classify("SELECT set_config('role', 'reader', false)");
  ClassifiedTextPtr t = cache.classify("SELECT set_config('role', 'admin', false)");
  EXPECT_EQ(t->statements[0].role_target, "admin");
  cache.classify("SET ROLE 'reader'");
  EXPECT_EQ(cache.classify("SET ROLE 'admin'")->statements[0].role_target, "admin");
  EXPECT_EQ(cache.stats().token_hits, 0u);
}

// Utility statements, function calls and multi-statement texts are cached
// by exact text only.
TEST(ClassifyCache, OnlyPlainDmlIsSharedByTokenKey) {
  EXPECT_TRUE(shareable_by_token_key(*ClassifyCache().classify("UPDATE t SET a = 1 WHERE b = 2")));
  EXPECT_FALSE(shareable_by_token_key(*ClassifyCache().classify("SELECT purge_all(1)")));
  EXPECT_FALSE(shareable_by_token_key(*ClassifyCache().classify("COPY t FROM '/tmp/x'")));
  EXPECT_FALSE(shareable_by_token_key(*ClassifyCache().classify("SELECT 1; SELECT 2")));
  EXPECT_FALSE(shareable_by_token_key(*ClassifyCache().classify("SELEC 1")));
  EXPECT_FALSE(shareable_by_token_key(*ClassifyCache().classify("EXPLAIN ANALYZE DELETE FROM t WHERE a = 1")));
}

// The key keeps everything but constant values: whitespace presence,
// punctuation, quoted identifiers and parameters.
TEST(TokenKey, KeepsEverythingButConstants) {
  EXPECT_EQ(key_of("SELECT a::int FROM \"T\" WHERE x = $1 AND y = 'v' LIMIT 10"),
                   "select a::int from \"T\" where x = $1 and y = ?s limit ?n");
  EXPECT_NE(key_of("SELECT a FROM t WHERE x=1"), key_of("SELECT a FROM t WHERE x = 1"));
  EXPECT_EQ(key_of("SELECT 1 -- c\n"), key_of("select   2"));
}

// Anything the key cannot represent faithfully is left to the exact-text
// cache: dollar quotes, escape and Unicode strings, backslashes, several
// statements, adjacent strings, unterminated comments.
TEST(TokenKey, RefusesTextItCannotRepresent) {
  for (const char* sql : {"SELECT $q$x$q$", "SELECT E'a\\'b'", "SELECT U&'d\\0061t'", "SELECT 'a\\'",
                          "SELECT 1; DROP TABLE t", "SELECT 'a'\n'b'", "SELECT /* x", "SELECT 1.2.3",
                          "SELECT x'1F'", "SELECT 1e"}) {
    SCOPED_TRACE(sql);
    EXPECT_EQ(key_of(sql), "<none>");
  }
}

// The cache never holds more than its capacity, however many texts pass.
TEST(ClassifyCache, StaysWithinItsCapacity) {
  ClassifyCache cache(ClassifyCacheOptions{.capacity = 64, .shards = 4, .max_text_bytes = 1024, .token_keys = true});
  for (int i = 0; i < 1000; ++i) cache.classify("SELECT c" + std::to_string(i) + " FROM t");
  EXPECT_LE(cache.size(), 2u * 64u);
  EXPECT_EQ(cache.classify("SELECT c999 FROM t")->statements[0].command_tag, "SELECT");
}

// Texts over the size limit are classified but not kept.
TEST(ClassifyCache, LongTextsAreNotCached) {
  ClassifyCache cache(ClassifyCacheOptions{.capacity = 64, .shards = 4, .max_text_bytes = 16, .token_keys = true});
  cache.classify("SELECT * FROM a_rather_long_table_name");
  EXPECT_EQ(cache.size(), 0u);
}

// Many threads hitting and filling the cache at once see consistent results.
TEST(ClassifyCache, ConcurrentUseIsConsistent) {
  ClassifyCache cache(ClassifyCacheOptions{.capacity = 256, .shards = 8, .max_text_bytes = 1024, .token_keys = true});
  auto work = [&](int seed) {
    bool ok = true;
    for (int i = 0; i < 3000; ++i) {
      int n = (i * 7 + seed) % 400;
      std::string sql = (n % 2 ? "DELETE FROM t" : "SELECT * FROM t") + std::to_string(n % 50) +
                        " WHERE id = " + std::to_string(n);
      ClassifiedTextPtr t = cache.classify(sql);
      ok = ok && t->statements.size() == 1 && t->statements[0].command_tag == (n % 2 ? "DELETE" : "SELECT");
    }
    return ok;
  };
  std::vector<std::thread> threads;
  std::vector<char> ok(4, 0);
  for (int k = 0; k < 4; ++k) threads.emplace_back([&, k] { ok[k] = work(k); });
  for (std::thread& t : threads) t.join();
  for (char v : ok) EXPECT_TRUE(v);
}

}  // namespace
}  // namespace pgwarden::policy
