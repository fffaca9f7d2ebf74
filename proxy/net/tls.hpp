#pragma once
/// TLS for both hops, built from the configuration: pgwarden's own
/// certificate towards clients, and the libpq-style sslmode towards the
/// upstream. Each is an immutable object shared by the sessions that use it;
/// a reload builds new ones (certificates re-read from disk) and new
/// connections take them, while open connections keep theirs.

#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/ssl.hpp>

#include "config/config.hpp"

namespace pgwarden::proxy {

/// ALPN protocol name PostgreSQL 17 uses, required with direct TLS.
inline constexpr std::string_view alpn_postgresql = "postgresql";

/// TLS towards clients (pgwarden is the TLS server).
struct ClientTls {
  explicit ClientTls(boost::asio::ssl::context c) : context(std::move(c)) {}
  boost::asio::ssl::context context;
  /// RFC 5929 tls-server-end-point hash of pgwarden's certificate, the
  /// channel binding SCRAM-SHA-256-PLUS clients compute.
  std::string end_point_hash;
  /// Plaintext clients are refused (tls.required).
  bool required = false;
};

/// TLS towards the upstream (pgwarden is the TLS client).
struct UpstreamTls {
  explicit UpstreamTls(boost::asio::ssl::context c) : context(std::move(c)) {}
  boost::asio::ssl::context context;
  config::UpstreamTlsMode mode = config::UpstreamTlsMode::Disable;
  /// Sent as SNI (unless an IP address) and checked against the
  /// certificate in verify-full.
  std::string server_name;
  bool server_name_is_ip = false;
};

/// Builds the client-side context from `tls:`; null with `error` set when a
/// file cannot be read or the key does not match the certificate. Null
/// without error when TLS towards clients is not configured.
std::shared_ptr<ClientTls> make_client_tls(const config::TlsConfig& cfg, std::string& error);

/// Builds the upstream context; null without error for `tls: disable`.
std::shared_ptr<UpstreamTls> make_upstream_tls(const config::UpstreamConfig& cfg, std::string& error);

/// The TLS contexts in force; a reload replaces both at once.
class TlsHolder {
 public:
  void replace(std::shared_ptr<ClientTls> client, std::shared_ptr<UpstreamTls> upstream) {
    std::lock_guard lock(mutex_);
    client_ = std::move(client);
    upstream_ = std::move(upstream);
  }
  std::shared_ptr<ClientTls> client() const {
    std::lock_guard lock(mutex_);
    return client_;
  }
  std::shared_ptr<UpstreamTls> upstream() const {
    std::lock_guard lock(mutex_);
    return upstream_;
  }

 private:
  mutable std::mutex mutex_;
  std::shared_ptr<ClientTls> client_;
  std::shared_ptr<UpstreamTls> upstream_;
};

/// Why a TLS handshake failed, in words an operator can act on: the OpenSSL
/// reason and, for a rejected certificate, the verification error
/// ("unable to get local issuer certificate", "hostname mismatch").
std::string describe_tls_failure(const boost::system::error_code& ec, SSL* ssl);

}  // namespace pgwarden::proxy
