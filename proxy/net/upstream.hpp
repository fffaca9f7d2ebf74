#pragma once
/// Where the PostgreSQL server is and how to open a connection to it.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "proxy/net/asio.hpp"
#include "proxy/net/stream.hpp"
#include "proxy/net/tls.hpp"

namespace pgwarden::proxy {

/// The upstream server's address: TCP host:port, or PostgreSQL's Unix socket
/// `<unix_socket_dir>/.s.PGSQL.<port>` when a directory is given.
struct UpstreamTarget {
  std::string host;
  std::uint16_t port = 5432;
  std::string unix_socket_dir;
  std::chrono::milliseconds connect_timeout{5000};

  /// "host:port" or the socket path, for messages and logs.
  std::string describe() const;
};

/// The outcome of connect_upstream: a stream, or a message saying why not.
struct UpstreamConnection {
  std::optional<Stream> stream;
  std::string error;  ///< "connection refused", "timed out after 5000 ms", ...
  /// The server's certificate, when the connection uses TLS (for
  /// SCRAM-SHA-256-PLUS channel binding towards the upstream).
  std::shared_ptr<X509> server_certificate;
  /// Whether a TLS handshake was attempted, and how it went (for metrics).
  enum class Handshake : std::uint8_t { None, Ok, Failed } handshake = Handshake::None;
};

/// Opens a connection to the upstream (TCP with TCP_NODELAY, or the Unix
/// socket), then negotiates TLS as `tls` says (libpq's sslmode: prefer falls
/// back to plaintext when the server declines, require and verify-* fail),
/// all bounded by the target's connect timeout. `tls` may be null (disable).
awaitable<UpstreamConnection> connect_upstream(const UpstreamTarget& target, std::shared_ptr<UpstreamTls> tls);

}  // namespace pgwarden::proxy
