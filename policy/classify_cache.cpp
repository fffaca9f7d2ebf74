#include "policy/classify_cache.hpp"

#include <algorithm>
#include <array>
#include <functional>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "policy/classifier.hpp"
#include "policy/token_key.hpp"

namespace pgwarden::policy {
namespace {

/// A key and its precomputed hash, for lookups without hashing twice.
struct HashedKey {
  std::string_view text;
  std::size_t hash;
};

struct KeyHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  std::size_t operator()(const std::string& s) const noexcept { return (*this)(std::string_view(s)); }
  std::size_t operator()(const HashedKey& k) const noexcept { return k.hash; }
};

struct KeyEqual {
  using is_transparent = void;
  static std::string_view view(std::string_view s) noexcept { return s; }
  static std::string_view view(const HashedKey& k) noexcept { return k.text; }
  template <class A, class B>
  bool operator()(const A& a, const B& b) const noexcept {
    return view(a) == view(b);
  }
};

/// One cached value with its CLOCK reference bit and place in the ring.
struct Slot {
  ClassifiedTextPtr value;
  mutable std::atomic<bool> referenced{false};
  std::size_t ring_index = 0;
  Slot(ClassifiedTextPtr v, std::size_t index) : value(std::move(v)), ring_index(index) {}
};

/// One lock shard: a hash map bounded by CLOCK eviction. Readers take the
/// shared lock only and mark the entry referenced; writers evict the first
/// unreferenced entry under the hand.
struct alignas(64) Shard {
  mutable std::shared_mutex mutex;
  std::unordered_map<std::string, Slot, KeyHash, KeyEqual> map;
  std::vector<const std::string*> ring;
  std::size_t hand = 0;
  std::size_t capacity = 0;
  mutable std::atomic<std::uint64_t> hits{0};
  std::atomic<std::uint64_t> misses{0};

  ClassifiedTextPtr find(const HashedKey& key) const {
    std::shared_lock lock(mutex);
    auto it = map.find(key);
    if (it == map.end()) return nullptr;
    if (!it->second.referenced.load(std::memory_order_relaxed))
      it->second.referenced.store(true, std::memory_order_relaxed);
    hits.fetch_add(1, std::memory_order_relaxed);
    return it->second.value;
  }

  void insert(const HashedKey& key, ClassifiedTextPtr value) {
    std::unique_lock lock(mutex);
    if (map.find(key) != map.end()) return;
    std::size_t index = ring.size();
    if (ring.size() >= capacity) index = evict();
    auto [it, inserted] = map.try_emplace(std::string(key.text), std::move(value), index);
    const std::string* stored = &it->first;
    if (index == ring.size()) ring.push_back(stored);
    else ring[index] = stored;
  }

  // Frees the slot under the clock hand that was not used since the last sweep.
  std::size_t evict() {
    while (true) {
      std::size_t index = hand;
      hand = (hand + 1) % ring.size();
      auto it = map.find(std::string_view(*ring[index]));
      if (it->second.referenced.exchange(false, std::memory_order_relaxed)) continue;
      map.erase(it);
      return index;
    }
  }
};

}  // namespace

/// A set of shards; the hash picks the shard.
struct ClassifyCache::Table {
  std::vector<Shard> shards;
  Table(std::size_t count, std::size_t capacity) : shards(count) {
    for (Shard& s : shards) {
      s.capacity = std::max<std::size_t>(1, (capacity + count - 1) / count);
      s.map.reserve(s.capacity);
    }
  }
  Shard& shard(std::size_t hash) { return shards[(hash >> 7) % shards.size()]; }
  const Shard& shard(std::size_t hash) const { return shards[(hash >> 7) % shards.size()]; }
};

ClassifyCache::ClassifyCache(ClassifyCacheOptions options)
    : options_(options),
      exact_(std::make_unique<Table>(std::max<std::size_t>(1, options.shards), options.capacity)),
      tokens_(std::make_unique<Table>(std::max<std::size_t>(1, options.shards), options.capacity)) {}

ClassifyCache::~ClassifyCache() = default;

ClassifiedTextPtr ClassifyCache::find(std::string_view sql) const {
  HashedKey key{sql, KeyHash{}(sql)};
  return exact_->shard(key.hash).find(key);
}

ClassifiedTextPtr ClassifyCache::classify(std::string_view sql) {
  HashedKey key{sql, KeyHash{}(sql)};
  Shard& shard = exact_->shard(key.hash);
  if (ClassifiedTextPtr hit = shard.find(key)) return hit;
  bool cacheable = sql.size() <= options_.max_text_bytes;
  TokenKey token;
  bool tokenized = cacheable && options_.token_keys && make_token_key(sql, token);
  if (tokenized) {
    if (ClassifiedTextPtr hit = from_token_key(token.key)) return hit;
  }
  shard.misses.fetch_add(1, std::memory_order_relaxed);
  auto result = std::make_shared<const ClassifiedText>(policy::classify(sql));
  if (!cacheable) return result;
  shard.insert(key, result);
  if (tokenized && shareable_by_token_key(*result)) {
    // Shared by every text of this shape, so it names no span of any one
    // of them: the statement is the whole text (length 0, "to the end", as
    // in PostgreSQL's RawStmt).
    auto whole = std::make_shared<ClassifiedText>(*result);
    whole->statements.front().location = 0;
    whole->statements.front().length = 0;
    HashedKey tkey{token.key, KeyHash{}(token.key)};
    tokens_->shard(tkey.hash).insert(tkey, std::move(whole));
  }
  return result;
}

// A hit by token key: the same facts, shared without a copy.
ClassifiedTextPtr ClassifyCache::from_token_key(std::string_view key) {
  HashedKey tkey{key, KeyHash{}(key)};
  return tokens_->shard(tkey.hash).find(tkey);
}

ClassifyCacheStats ClassifyCache::stats() const {
  ClassifyCacheStats out;
  for (const Shard& s : exact_->shards) {
    out.hits += s.hits.load(std::memory_order_relaxed);
    out.misses += s.misses.load(std::memory_order_relaxed);
  }
  for (const Shard& s : tokens_->shards) out.token_hits += s.hits.load(std::memory_order_relaxed);
  return out;
}

std::size_t ClassifyCache::size() const {
  std::size_t n = 0;
  for (const Table* t : {exact_.get(), tokens_.get()}) {
    for (const Shard& s : t->shards) {
      std::shared_lock lock(s.mutex);
      n += s.map.size();
    }
  }
  return n;
}

bool shareable_by_token_key(const ClassifiedText& text) noexcept {
  if (text.unparseable || text.statements.size() != 1) return false;
  const StatementFacts& f = text.statements.front();
  static constexpr std::array<std::string_view, 5> plain = {"SELECT", "INSERT", "UPDATE", "DELETE", "MERGE"};
  for (const std::string& tag : f.effective_tags)
    if (std::find(plain.begin(), plain.end(), tag) == plain.end()) return false;
  ClassSet allowed;
  allowed.insert(StatementClass::Read);
  allowed.insert(StatementClass::Write);
  if ((f.classes.bits() & ~allowed.bits()) != 0) return false;
  return !(f.role_change || f.dynamic_sql || f.runs_program || f.server_file_access || f.unparseable ||
           f.signals_backends || f.large_objects || f.remote_database || f.locks || f.notify || f.maintenance);
}

}  // namespace pgwarden::policy
