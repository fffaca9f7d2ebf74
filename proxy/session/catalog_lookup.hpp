#pragma once
/// The per-process cache of each database's catalog (catalog_lookup in the
/// configuration): pgwarden logs in to the upstream as the lookup role, reads
/// the functions, operators, types and casts a user created in one query,
/// and keeps an immutable policy::DatabaseCatalog per database for sessions
/// to apply at decision time.
///
/// Fail closed throughout: until a database's catalog is read, after a reload
/// of the configuration, after DDL a session saw there, and whenever a
/// lookup fails, find() answers null and calls pgwarden does not know stay
/// FUNCTION. A lookup never blocks a session: it runs in the background on
/// the executor of the session that needed it.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "config/config.hpp"
#include "policy/database_catalog.hpp"
#include "proxy/net/asio.hpp"
#include "proxy/net/tls.hpp"
#include "proxy/net/upstream.hpp"

namespace pgwarden::proxy {

/// What one lookup returned: the catalog, or why there is none.
struct CatalogLoad {
  policy::DatabaseCatalogPtr catalog;
  std::string error;
};

class CatalogLookup {
 public:
  CatalogLookup(UpstreamTarget target, TlsHolder* tls) : target_(std::move(target)), tls_(tls) {}

  /// New settings (start, or a configuration reload): every database's
  /// catalog is forgotten and read again when next needed.
  void replace(config::CatalogLookupConfig settings);
  bool enabled() const;

  /// The current catalog of `database`, or null (none read yet, stale after
  /// DDL, lookup failing, or lookup off). Starts a lookup on `executor` when
  /// one is due. Never blocks on I/O.
  policy::DatabaseCatalogPtr find(const std::string& database, const asio::any_io_executor& executor);

  /// Waits, at most catalog_lookup.first_load_wait, until `database` has a
  /// catalog or its lookup failed; starts one if due. For a session's first
  /// statement, so that it is not decided before the first lookup ended.
  awaitable<void> await_first(std::string database);

  /// DDL that may change what a call does ran in `database`: its catalog is
  /// dropped at once and read again in the background.
  void invalidate(const std::string& database, const asio::any_io_executor& executor);

 private:
  struct Entry {
    policy::DatabaseCatalogPtr catalog;
    std::uint64_t epoch = 0;  ///< bumped by invalidate(): a lookup begun before is discarded
    bool loading = false;
    std::chrono::steady_clock::time_point loaded_at{};
    std::chrono::steady_clock::time_point retry_at{};  ///< after a failure
    std::string last_error;                            ///< logged once until it changes
  };

  /// Starts a lookup of `database` unless one runs. Call with mutex_ held.
  void start_locked(const std::string& database, Entry& e, const asio::any_io_executor& executor);
  awaitable<void> load(std::string database, std::uint64_t generation, std::uint64_t epoch,
                       config::CatalogLookupConfig settings, asio::any_io_executor executor);

  UpstreamTarget target_;
  TlsHolder* tls_;
  mutable std::mutex mutex_;
  config::CatalogLookupConfig settings_;
  std::uint64_t generation_ = 0;  ///< bumped by replace(): lookups begun before are discarded
  std::map<std::string, Entry, std::less<>> entries_;
};

/// Logs in to `database` as the lookup role (trust, password, md5 or
/// SCRAM-SHA-256 with the password file's password; or a client
/// certificate through upstream.cert) and reads its catalog.
awaitable<CatalogLoad> read_database_catalog(const UpstreamTarget& target, std::shared_ptr<UpstreamTls> tls,
                                             const config::CatalogLookupConfig& settings,
                                             const std::string& database);

/// True when a statement with this CommandComplete tag may have changed what
/// a function, operator or cast does (CREATE/ALTER/DROP FUNCTION, OPERATOR,
/// TYPE, DOMAIN, CAST, EXTENSION, SCHEMA, LANGUAGE ..., and DO or CALL,
/// which can run any of them).
bool changes_catalog(std::string_view command_tag) noexcept;

}  // namespace pgwarden::proxy
