#pragma once
/// Session pooling of upstream connections, as pgbouncer does in session
/// mode: when pgwarden itself authenticated the client (auth: scram), the
/// server connection it logged into outlives the client, is reset with
/// DISCARD ALL and is handed to the next client of the same user, database
/// and startup parameters, which then skips the connect, the TLS handshake,
/// the backend fork and the login.
///
/// One pool for the process. A connection is reset and swept on the event
/// loop it belongs to; a client on another loop takes it over when it is a
/// plain TCP or Unix socket (a TLS connection stays with its loop).

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.hpp"
#include "proxy/net/asio.hpp"
#include "proxy/net/stream.hpp"
#include "proxy/net/tls.hpp"

namespace pgwarden::proxy {

/// A server's run-time parameters as its ParameterStatus messages last
/// reported them, in the order first reported.
using ServerParameters = std::vector<std::pair<std::string, std::string>>;

/// Records a ParameterStatus: a new value for `name`, or a new parameter.
void set_parameter(ServerParameters& params, std::string_view name, std::string_view value);

/// An upstream connection logged in, idle outside a transaction, with what
/// a new client must be told about it.
struct PooledServer {
  Stream stream;
  std::shared_ptr<UpstreamTls> tls;  ///< keeps the TLS context of `stream` alive
  ServerParameters parameters;
  std::int32_t process_id = 0;  ///< the backend's BackendKeyData
  std::string secret_key;
  std::chrono::steady_clock::time_point idle_since{};
};

class UpstreamPool {
 public:
  struct Settings {
    std::size_t max_idle = 0;  ///< per startup packet; 0 = pooling off
    std::chrono::milliseconds idle_timeout{60000};
  };
  /// upstream.pool_size and upstream.pool_idle_timeout.
  static Settings settings_of(const config::UpstreamConfig& cfg);

  /// An idle connection logged in with exactly `startup` (the StartupMessage
  /// pgwarden sent), still open, usable on `executor`'s loop.
  std::optional<PooledServer> take(const std::string& startup, const Settings& settings,
                                   const asio::any_io_executor& executor);

  /// Resets `server` with DISCARD ALL on its own loop and keeps it for
  /// `startup` if the server answers cleanly and there is room; otherwise
  /// closes it. Returns at once.
  void give_back(std::string startup, PooledServer server, const Settings& settings);

  /// Idle connections held now (all keys).
  std::size_t idle() const;

  /// Closes every idle connection; on shutdown, once the loops have stopped.
  void clear();

 private:
  struct Idle {
    PooledServer server;
    const void* loop;  ///< the io_context it belongs to
  };
  static const void* loop_of(const asio::any_io_executor& executor);
  awaitable<void> reset_and_keep(std::string startup, PooledServer server, Settings settings);
  awaitable<void> sweep(std::chrono::milliseconds idle_timeout);
  void keep(std::string startup, PooledServer server, const Settings& settings);

  mutable std::mutex mutex_;
  std::map<std::string, std::vector<Idle>, std::less<>> idle_;
  std::size_t idle_count_ = 0;
  bool sweeping_ = false;
};

}  // namespace pgwarden::proxy
