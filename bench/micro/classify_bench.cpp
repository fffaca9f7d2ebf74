// Classification cost on a 20-statement mix of application queries:
// libpg_query's parse alone, a full classification (cache miss), and a cache
// hit. Figures are per statement.
#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <string_view>

#include "policy/classifier.hpp"
#include "policy/classify_cache.hpp"
#include "policy/pg_query_adapter.hpp"

namespace {

constexpr std::array<std::string_view, 20> statement_mix = {
    "SELECT id, name, email FROM users WHERE id = $1",
    "SELECT * FROM orders o JOIN order_items i ON i.order_id = o.id WHERE o.customer_id = $1 ORDER BY o.created_at DESC LIMIT 20",
    "INSERT INTO events (kind, payload, created_at) VALUES ($1, $2, now())",
    "UPDATE accounts SET balance = balance - $1 WHERE id = $2",
    "DELETE FROM sessions WHERE expires_at < now()",
    "BEGIN",
    "COMMIT",
    "SELECT count(*) FROM products WHERE category_id = $1 AND price BETWEEN $2 AND $3",
    "WITH recent AS (SELECT * FROM logins WHERE at > now() - interval '1 day') SELECT user_id, count(*) FROM recent GROUP BY user_id",
    "INSERT INTO carts (user_id, product_id, qty) VALUES ($1, $2, $3) ON CONFLICT (user_id, product_id) DO UPDATE SET qty = carts.qty + EXCLUDED.qty",
    "SET search_path = app, public",
    "SELECT u.id FROM users u WHERE EXISTS (SELECT 1 FROM orders o WHERE o.user_id = u.id AND o.total > 100)",
    "UPDATE users SET last_seen = now() WHERE id = $1 RETURNING last_seen",
    "SELECT set_config('application_name', 'worker', false)",
    "CREATE TEMP TABLE tmp_ids (id bigint)",
    "COPY tmp_ids FROM STDIN",
    "SELECT p.* FROM products p WHERE p.name ILIKE $1 OR p.sku = $2",
    "DROP TABLE IF EXISTS tmp_ids",
    "EXPLAIN ANALYZE SELECT * FROM orders WHERE id = 42",
    "SELECT jsonb_build_object('id', id, 'tags', tags) FROM articles WHERE published AND author_id = $1",
};

std::array<std::string, statement_mix.size()> mix_strings() {
  std::array<std::string, statement_mix.size()> out;
  for (std::size_t i = 0; i < statement_mix.size(); ++i) out[i] = std::string(statement_mix[i]);
  return out;
}

// libpg_query's parse to protobuf alone, freed: the floor for a miss.
void BM_ParseProtobufOnly(benchmark::State& state) {
  auto mix = mix_strings();
  for (auto _ : state) {
    for (const std::string& sql : mix) {
      const pgwarden::policy::RawParse r(sql, true);
      benchmark::DoNotOptimize(r.tree().size());
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(mix.size()));
}
BENCHMARK(BM_ParseProtobufOnly);

// A cache miss: parse plus classification.
void BM_ClassifyMiss(benchmark::State& state) {
  for (auto _ : state) {
    for (std::string_view sql : statement_mix) {
      pgwarden::policy::ClassifiedText t = pgwarden::policy::classify(sql);
      benchmark::DoNotOptimize(t.statements.data());
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(statement_mix.size()));
}
BENCHMARK(BM_ClassifyMiss);

// A cache miss on a catalog query of psql's \d (qualified columns, catalog
// functions, casts, OPERATOR(pg_catalog.~)): the statements that pay most
// for the checks of attribute notation, casts and the built-in catalog.
void BM_ClassifyMissDescribeQuery(benchmark::State& state) {
  constexpr std::string_view sql =
      "SELECT c.oid, n.nspname, c.relname, pg_catalog.pg_get_userbyid(c.relowner) AS owner, "
      "pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)), pg_catalog.obj_description(c.oid, 'pg_class'), "
      "c.relkind::text, c.reloptions || array(select 'toast.' || x from pg_catalog.unnest(tc.reloptions) x) "
      "FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid) "
      "WHERE c.relkind IN ('r','p','v','m','S','f','') AND n.nspname <> 'pg_catalog' "
      "AND n.nspname !~ '^pg_toast' AND c.relname OPERATOR(pg_catalog.~) '^(docs)$' COLLATE pg_catalog.default "
      "AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3";
  for (auto _ : state) {
    pgwarden::policy::ClassifiedText t = pgwarden::policy::classify(sql);
    benchmark::DoNotOptimize(t.statements.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyMissDescribeQuery);

// A cache hit by exact text, from one or two threads sharing the cache.
void BM_ClassifyCacheHit(benchmark::State& state) {
  static pgwarden::policy::ClassifyCache cache;
  for (std::string_view sql : statement_mix) cache.classify(sql);
  for (auto _ : state) {
    for (std::string_view sql : statement_mix) {
      pgwarden::policy::ClassifiedTextPtr t = cache.classify(sql);
      benchmark::DoNotOptimize(t.get());
    }
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(statement_mix.size()));
}
BENCHMARK(BM_ClassifyCacheHit)->Threads(1)->Threads(2);

// A hit through the literal-free key: same query, new constant each time.
void BM_ClassifyCacheTokenHit(benchmark::State& state) {
  pgwarden::policy::ClassifyCache cache;
  cache.classify("SELECT id, name FROM users WHERE id = 1 AND status = 'active'");
  std::string sql;
  std::int64_t n = 2;
  for (auto _ : state) {
    sql = "SELECT id, name FROM users WHERE id = " + std::to_string(n++ % 100000) + " AND status = 'active'";
    benchmark::DoNotOptimize(cache.classify(sql).get());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ClassifyCacheTokenHit);

}  // namespace
