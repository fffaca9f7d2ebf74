#pragma once
/// A bounded, thread-safe cache in front of classify(): a hot statement costs
/// a hash lookup under a shared (reader) lock of one of many shards, and
/// queries that differ only in inline constants share one entry through a
/// literal-free token key. Statements whose meaning depends on a constant
/// (SET ROLE 'x', set_config(...), COPY, anything not a plain DML or SELECT)
/// are never shared by token key.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include "policy/statement_facts.hpp"

namespace pgwarden::policy {

/// Sizing of a ClassifyCache.
struct ClassifyCacheOptions {
  /// Entries kept for exact texts and for token keys (each); rounded up to a
  /// multiple of `shards`.
  std::size_t capacity = 16384;
  /// Independent lock shards; more shards, less contention.
  std::size_t shards = 32;
  /// Texts longer than this are classified but not cached (bounds memory).
  std::size_t max_text_bytes = 16384;
  /// Share entries between texts that differ only in constants.
  bool token_keys = true;
};

/// Counters for /metrics.
struct ClassifyCacheStats {
  std::uint64_t hits = 0;        ///< exact-text hits
  std::uint64_t token_hits = 0;  ///< hits through the literal-free key
  std::uint64_t misses = 0;      ///< texts that had to be parsed
};

/// Classification results shared between all sessions.
class ClassifyCache {
 public:
  explicit ClassifyCache(ClassifyCacheOptions options = {});
  ~ClassifyCache();
  ClassifyCache(const ClassifyCache&) = delete;
  ClassifyCache& operator=(const ClassifyCache&) = delete;

  /// The facts of `sql`: cached, or classified now and remembered.
  ClassifiedTextPtr classify(std::string_view sql);

  /// The cached facts of exactly `sql`, or null; never parses.
  ClassifiedTextPtr find(std::string_view sql) const;

  /// Hit and miss counts so far.
  ClassifyCacheStats stats() const;

  /// Entries currently held (exact and token keys together).
  std::size_t size() const;

 private:
  struct Table;
  ClassifiedTextPtr from_token_key(std::string_view key);

  ClassifyCacheOptions options_;
  std::unique_ptr<Table> exact_;
  std::unique_ptr<Table> tokens_;
};

/// True when `text` may be shared by every text with the same token key: one
/// plain SELECT/INSERT/UPDATE/DELETE/MERGE whose facts hold no constant.
bool shareable_by_token_key(const ClassifiedText& text) noexcept;

}  // namespace pgwarden::policy
