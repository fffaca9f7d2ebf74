#pragma once
/// Where `auth: scram` finds the secret a user must prove: the auth_file
/// (pgbouncer's userlist), or auth_query run against the upstream as
/// auth_user, with answers cached for auth.cache_ttl. A reload replaces the
/// settings and forgets the cache.

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "proxy/net/asio.hpp"
#include "proxy/net/tls.hpp"
#include "proxy/net/upstream.hpp"
#include "auth/userlist.hpp"

namespace pgwarden::proxy {

/// The outcome of a lookup: the user's secret, none (an unknown user, who
/// then fails authentication like one with a wrong password), or an error
/// when the lookup itself could not run (the client gets 08006).
struct SecretLookup {
  std::optional<auth::UserSecret> secret;
  std::string error;
};

class SecretStore {
 public:
  struct Settings {
    std::shared_ptr<const auth::Userlist> userlist;  ///< may be null
    std::string auth_query;                    ///< "" = the userlist only
    std::string auth_user;
    std::chrono::milliseconds cache_ttl{30000};
  };

  void replace(Settings settings);

  /// The secret for `user` connecting to `database`: the userlist first,
  /// then auth_query (over `target`, with `tls`).
  awaitable<SecretLookup> find(std::string user, std::string database, UpstreamTarget target,
                               std::shared_ptr<UpstreamTls> tls);

 private:
  struct Cached {
    std::optional<auth::UserSecret> secret;
    std::chrono::steady_clock::time_point expires;
  };
  mutable std::mutex mutex_;
  Settings settings_;
  std::map<std::string, Cached, std::less<>> cache_;  // database '\0' user
  std::uint64_t generation_ = 0;  // bumped by replace(): answers to older settings are not cached
};

/// Runs `query` with $1 = `user` as `auth_user` on `database`, and returns
/// the secret in the first row (second column when there are two or more,
/// as pgbouncer's "SELECT usename, passwd ..."; else the first). auth_user
/// logs in with trust, its md5 secret from `userlist`, or a client
/// certificate (upstream.cert); a server asking it for SCRAM cannot be
/// answered (a stored SCRAM secret cannot log in without the client's proof).
awaitable<SecretLookup> run_auth_query(const UpstreamTarget& target, std::shared_ptr<UpstreamTls> tls,
                                       const std::string& query, const std::string& auth_user,
                                       const auth::Userlist* userlist, const std::string& user,
                                       const std::string& database);

/// A stored secret as PostgreSQL writes it (SCRAM-SHA-256$... or md5...),
/// parsed; nullopt for anything else (a NULL or plaintext password).
std::optional<auth::UserSecret> parse_stored_secret(std::string_view text);

}  // namespace pgwarden::proxy
