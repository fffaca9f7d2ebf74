#pragma once
/// A small HTTP/1.1 server (Boost.Beast) for the admin endpoints. It runs on
/// an io_context the process already has (no thread of its own) and knows
/// nothing of PostgreSQL: paths map to handlers. Everything a client can
/// make it hold is bounded: header size, time to send a request and to
/// read a response, concurrent connections.

#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "proxy/net/asio.hpp"

namespace pgwarden::proxy {

/// What a handler answers.
struct HttpResponse {
  unsigned status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// The bounds of the admin server.
struct AdminServerLimits {
  std::size_t max_header_bytes = 8 * 1024;  ///< request line and headers; 431 beyond
  std::size_t max_body_bytes = 1024;        ///< GET and HEAD carry none; 413 beyond
  std::chrono::milliseconds read_timeout{10000};  ///< for a request, also between keep-alive requests
  std::chrono::milliseconds write_timeout{10000};
  std::size_t max_connections = 32;  ///< beyond it a new connection is closed at once
};

class AdminServer {
 public:
  /// Produces the response for one request to its path.
  using Handler = std::function<awaitable<HttpResponse>()>;

  /// Binds `endpoint` on `io`; throws std::system_error when it cannot.
  AdminServer(asio::io_context& io, const tcp::endpoint& endpoint, AdminServerLimits limits = {});
  ~AdminServer();
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  /// Answers GET and HEAD on exactly `path` (the query string is ignored);
  /// other methods get 405, unknown paths 404. Register before start().
  void route(std::string path, Handler handler);
  /// Starts accepting connections.
  void start();
  /// Stops accepting; open connections end at their next request.
  void stop();
  tcp::endpoint local_endpoint() const;

 private:
  struct Request;
  awaitable<void> accept();
  awaitable<void> serve(tcp::socket socket);
  awaitable<HttpResponse> respond(const Request& request);

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  AdminServerLimits limits_;
  std::map<std::string, Handler, std::less<>> routes_;
  std::size_t active_ = 0;  // connections being served (this io_context only)
  bool stopped_ = false;
};

}  // namespace pgwarden::proxy
