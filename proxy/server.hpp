#pragma once
/// The generic server: listening sockets, one event loop per core, the set
/// of live connections and stopping. Knows nothing of PostgreSQL; each
/// accepted socket is handed to the connection handler.

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "proxy/asio.hpp"

namespace pgwarden::proxy {

class Server {
 public:
  /// Serves one accepted connection until it closes.
  using Handler = std::function<awaitable<void>(tcp::socket)>;

  /// Binds every endpoint on every worker (SO_REUSEPORT spreads connections
  /// over the workers in the kernel, so no connection changes thread).
  /// Throws std::system_error when an endpoint cannot be bound.
  Server(const std::vector<tcp::endpoint>& endpoints, unsigned workers, Handler handler);
  ~Server();

  /// Runs the workers; returns once stop() was called and every worker ended.
  void run();
  /// Stops accepting and ends the event loops. Safe from any thread.
  void stop();
  /// Stops accepting new connections; live ones continue.
  void stop_accepting();

  /// The first worker's io_context, for signal handling and timers.
  asio::io_context& main_context() { return *workers_.front()->io; }
  /// Endpoints actually bound (port 0 resolved), one per configured endpoint.
  std::vector<tcp::endpoint> local_endpoints() const;
  std::size_t connections() const { return connections_.load(std::memory_order_relaxed); }

 private:
  struct Worker {
    std::unique_ptr<asio::io_context> io;
    std::vector<tcp::acceptor> acceptors;
  };
  awaitable<void> accept(tcp::acceptor& acceptor);
  awaitable<void> serve(tcp::socket socket);

  std::vector<std::unique_ptr<Worker>> workers_;
  Handler handler_;
  std::atomic<std::size_t> connections_{0};
};

/// Parses "host:port" / "[v6]:port" / ":port" (all interfaces) into endpoints.
std::vector<tcp::endpoint> resolve_listen_address(const std::string& address);

}  // namespace pgwarden::proxy
