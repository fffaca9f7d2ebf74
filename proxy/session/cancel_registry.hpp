#pragma once
/// Maps the BackendKeyData pgwarden gives each client to the upstream
/// session behind it, so a CancelRequest sent to pgwarden can be forwarded
/// to the right server backend. A client sees its server backend's own
/// process id (applications compare it with pg_backend_pid(), a
/// notification's sender and pg_stat_activity), and a secret key of
/// pgwarden's, random and never the server's. Lookups compare the key in
/// constant time so a client cannot guess another session's.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "proxy/net/upstream.hpp"
#include "proxy/session/session_identity.hpp"

namespace pgwarden::proxy {

struct CancelTarget {
  UpstreamTarget upstream;
  std::uint32_t process_id = 0;  ///< the upstream backend's pid
  std::string secret_key;        ///< the upstream backend's key
  /// Whose queries a cancel stops, for its audit record (empty when the
  /// audit log is off).
  SessionIdentity session;
};

class CancelRegistry {
 public:
  /// The key pair one client sees: its process id and secret.
  struct ClientKey {
    std::uint32_t process_id = 0;
    std::string secret_key;
  };

  /// Issues a client key for `target`: its backend's process id and a fresh
  /// secret of `key_length` random bytes.
  ClientKey add(CancelTarget target, std::size_t key_length);
  /// Forgets the key `add` issued; a key not registered is ignored.
  void remove(const ClientKey& key);
  /// The upstream session for a client's cancel request, if the key matches.
  std::optional<CancelTarget> find(std::uint32_t process_id, std::string_view secret_key) const;
  std::size_t size() const;

 private:
  struct Entry {
    std::string client_key;
    CancelTarget target;
  };
  mutable std::mutex mutex_;
  /// By process id: one server process can be behind two keys for a moment
  /// (a pooled connection handed from one client to the next).
  std::unordered_multimap<std::uint32_t, Entry> entries_;
};

}  // namespace pgwarden::proxy
