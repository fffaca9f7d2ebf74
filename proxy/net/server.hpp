#pragma once
/// The generic server: listening sockets, one event loop per core, the set
/// of live connections and stopping. Knows nothing of PostgreSQL; each
/// accepted socket is handed to the connection handler.

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <boost/intrusive/list.hpp>

#include "proxy/net/asio.hpp"

namespace pgwarden::proxy {

/// How a draining server wants its connections to end.
enum class DrainMode : std::uint8_t {
  Graceful,   ///< at the connection's next clean point (its protocol decides)
  Immediate,  ///< now
};

/// One live connection as the server sees it: something it can ask to drain.
class Connection
    : public boost::intrusive::list_base_hook<boost::intrusive::link_mode<boost::intrusive::auto_unlink>> {
 public:
  /// Sets what the server's drain() runs for this connection, on the
  /// connection's own executor; runs it at once if a drain already began.
  void on_drain(std::function<void(DrainMode)> fn);

 private:
  friend class Server;
  void drain(DrainMode mode);

  std::function<void(DrainMode)> on_drain_;
  std::optional<DrainMode> mode_;
};

class Server {
 public:
  /// Serves one accepted connection until it closes.
  using Handler = std::function<awaitable<void>(tcp::socket, Connection&)>;

  /// Binds every endpoint on every worker (SO_REUSEPORT spreads connections
  /// over the workers in the kernel, so no connection changes thread).
  /// Throws std::system_error when an endpoint cannot be bound, also when
  /// another process listens on it (with SO_REUSEPORT or not), so two
  /// instances never share a port unknowingly.
  Server(const std::vector<tcp::endpoint>& endpoints, unsigned workers, Handler handler);
  ~Server();

  /// Runs the workers; returns once stop() was called and every worker ended.
  void run();
  /// Stops accepting and ends the event loops. Safe from any thread.
  void stop();
  /// Stops accepting new connections; live ones continue.
  void stop_accepting();
  /// Stops accepting and asks every live connection to drain in `mode`
  /// (each on its own executor). Safe from any thread; Immediate may follow
  /// Graceful, never the other way round.
  void drain(DrainMode mode);
  /// Calls `fn` on the main context once no connection is left (at once if
  /// none is). Meant for shutdown, after drain().
  void when_idle(std::function<void()> fn);

  /// The first worker's io_context, for signal handling and timers.
  asio::io_context& main_context() { return *workers_.front()->io; }
  /// Endpoints actually bound (port 0 resolved), one per configured endpoint.
  std::vector<tcp::endpoint> local_endpoints() const;
  std::size_t connections() const { return connections_.load(std::memory_order_relaxed); }

 private:
  struct Worker {
    std::unique_ptr<asio::io_context> io;
    std::vector<tcp::acceptor> acceptors;
    /// Live connections of this worker; touched only on its thread.
    boost::intrusive::list<Connection, boost::intrusive::constant_time_size<false>> live;
    std::optional<DrainMode> drain;
  };
  awaitable<void> accept(Worker& worker, tcp::acceptor& acceptor);
  awaitable<void> serve(Worker& worker, tcp::socket socket);
  void check_idle();

  std::vector<std::unique_ptr<Worker>> workers_;
  Handler handler_;
  std::atomic<std::size_t> connections_{0};
  std::atomic<bool> draining_{false};
  std::function<void()> on_idle_;  // main context only
};

/// Parses "host:port" / "[v6]:port" / ":port" (all interfaces) into endpoints.
std::vector<tcp::endpoint> resolve_listen_address(const std::string& address);

}  // namespace pgwarden::proxy
