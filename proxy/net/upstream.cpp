#include "proxy/net/upstream.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "protocol/encoder.hpp"
#include "protocol/messages.hpp"

namespace pgwarden::proxy {

using namespace asio::experimental::awaitable_operators;

std::string UpstreamTarget::describe() const {
  if (!unix_socket_dir.empty()) return unix_socket_dir + "/.s.PGSQL." + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace {

UpstreamConnection failed(std::string why) { return UpstreamConnection{std::nullopt, std::move(why), nullptr}; }

/// Per connection: SNI (for a host name, as libpq sends it) and, in
/// verify-full, the name or address the certificate must carry.
void name_the_server(SSL* ssl, const UpstreamTls& tls) {
  if (!tls.server_name_is_ip) SSL_set_tlsext_host_name(ssl, tls.server_name.c_str());
  if (tls.mode != config::UpstreamTlsMode::VerifyFull) return;
  if (tls.server_name_is_ip) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), tls.server_name.c_str());
  } else {
    SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    SSL_set1_host(ssl, tls.server_name.c_str());
  }
}

/// SSLRequest, then the server's one-byte answer: 'S' starts the TLS
/// handshake, 'N' means the server has no TLS (fine only for prefer).
awaitable<UpstreamConnection> negotiate_tls(tcp::socket socket, std::shared_ptr<UpstreamTls> tls) {
  std::string request;
  protocol::encode(protocol::SslRequest{}, request);
  auto [wec, wn] = co_await asio::async_write(socket, asio::buffer(request), use_nothrow);
  if (wec) co_return failed(wec.message());
  char answer = 0;
  auto [rec, rn] = co_await asio::async_read(socket, asio::buffer(&answer, 1), use_nothrow);
  if (rec) co_return failed("the server closed the connection in answer to SSLRequest");
  if (answer == 'N') {
    if (tls->mode == config::UpstreamTlsMode::Prefer) co_return UpstreamConnection{Stream(std::move(socket)), {}, nullptr};
    co_return failed("the server does not accept TLS connections (upstream.tls: " +
                     std::string(config::to_string(tls->mode)) + ")");
  }
  if (answer != 'S') co_return failed("the server answered SSLRequest with an unexpected byte");
  TlsStream stream(std::move(socket), tls->context);
  name_the_server(stream.native_handle(), *tls);
  auto [hec] = co_await stream.async_handshake(asio::ssl::stream_base::client, use_nothrow);
  if (hec) {
    UpstreamConnection out = failed("TLS handshake failed: " + describe_tls_failure(hec, stream.native_handle()));
    out.handshake = UpstreamConnection::Handshake::Failed;
    co_return out;
  }
  std::shared_ptr<X509> cert(SSL_get1_peer_certificate(stream.native_handle()), X509_free);
  co_return UpstreamConnection{Stream(std::move(stream)), {}, std::move(cert), UpstreamConnection::Handshake::Ok};
}

awaitable<UpstreamConnection> connect_tcp(const UpstreamTarget& target, std::shared_ptr<UpstreamTls> tls) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(target.host, std::to_string(target.port), use_nothrow);
  if (rec) co_return failed("could not resolve host: " + rec.message());
  tcp::socket socket(ex);
  auto [cec, ep] = co_await asio::async_connect(socket, endpoints, use_nothrow);
  if (cec) co_return failed(cec.message());
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  if (tls) co_return co_await negotiate_tls(std::move(socket), std::move(tls));
  co_return UpstreamConnection{Stream(std::move(socket)), {}, nullptr};
}

awaitable<UpstreamConnection> connect_unix(const UpstreamTarget& target) {
  unix_socket::socket socket(co_await asio::this_coro::executor);
  auto [ec] = co_await socket.async_connect(unix_socket::endpoint(target.describe()), use_nothrow);
  if (ec) co_return failed(ec.message());
  co_return UpstreamConnection{Stream(std::move(socket)), {}, nullptr};
}

}  // namespace

awaitable<UpstreamConnection> connect_upstream(const UpstreamTarget& target, std::shared_ptr<UpstreamTls> tls) {
  // PostgreSQL offers no TLS on its Unix socket (and libpq never asks there).
  auto attempt = target.unix_socket_dir.empty() ? connect_tcp(target, std::move(tls)) : connect_unix(target);
  auto result = co_await (std::move(attempt) || sleep_for(target.connect_timeout));
  if (result.index() == 1) {
    co_return failed("timed out after " + std::to_string(target.connect_timeout.count()) + " ms");
  }
  co_return std::move(std::get<0>(result));
}

}  // namespace pgwarden::proxy
