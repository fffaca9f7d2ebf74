// Stream, the one byte-stream type of both hops: whether the peer's bytes
// are still unread (what a draining session checks before it closes), and
// handing a plain connection to another event loop (session pooling).

#include <gtest/gtest.h>

#include <poll.h>

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "proxy/net/stream.hpp"

namespace pgwarden::proxy {
namespace {

/// Runs `coroutine` on `io` until it finishes; its result.
template <class T>
T run(asio::io_context& io, awaitable<T> coroutine) {
  std::optional<T> result;
  asio::co_spawn(io, std::move(coroutine), [&](std::exception_ptr e, T value) {
    if (e) std::rethrow_exception(e);
    result = std::move(value);
  });
  io.restart();
  io.run();
  return std::move(*result);
}

/// Waits until `fd` is readable: the peer's bytes have arrived.
bool readable_soon(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 2000) == 1;
}

awaitable<std::string> read_exactly(Stream& s, std::size_t n) {
  std::string out(n, '\0');
  std::size_t got = 0;
  while (got < n) {
    auto [ec, k] = co_await s.read_some(asio::buffer(out.data() + got, n - got));
    if (ec) break;
    got += k;
  }
  out.resize(got);
  co_return out;
}

struct TcpPair {
  asio::io_context io;
  tcp::socket client{io};
  tcp::socket server{io};
  TcpPair() {
    tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    client.connect(acceptor.local_endpoint());
    acceptor.accept(server);
  }
};

TEST(Stream, UnreadInputOfAPlainTcpConnection) {
  TcpPair pair;
  Stream s(std::move(pair.server));
  EXPECT_FALSE(s.has_unread_input());
  asio::write(pair.client, asio::buffer("X\0\0\0\4", 5));
  ASSERT_TRUE(readable_soon(s.native_handle()));
  EXPECT_TRUE(s.has_unread_input());
  EXPECT_EQ(run(pair.io, read_exactly(s, 5)).size(), 5u);
  EXPECT_FALSE(s.has_unread_input());
}

TEST(Stream, UnreadInputOfAUnixSocket) {
  asio::io_context io;
  unix_socket::socket a(io), b(io);
  asio::local::connect_pair(a, b);
  Stream s(std::move(a));
  EXPECT_FALSE(s.has_unread_input());
  asio::write(b, asio::buffer("abc", 3));
  ASSERT_TRUE(readable_soon(s.native_handle()));
  EXPECT_TRUE(s.has_unread_input());
  EXPECT_EQ(run(io, read_exactly(s, 3)), "abc");
  EXPECT_FALSE(s.has_unread_input());
}

// A pooled connection taken by a client of another event loop: the same
// descriptor, driven by the other loop, the peer's bytes still there.
TEST(Stream, PlainConnectionsMoveToAnotherLoop) {
  TcpPair pair;
  Stream s(std::move(pair.server));
  const int fd = s.native_handle();
  asio::write(pair.client, asio::buffer("tcp", 3));
  asio::io_context other;
  std::optional<Stream> moved = s.moved_to(other.get_executor());
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->native_handle(), fd);
  EXPECT_EQ(run(other, read_exactly(*moved, 3)), "tcp");

  asio::io_context io;
  unix_socket::socket a(io), b(io);
  asio::local::connect_pair(a, b);
  Stream local(std::move(a));
  asio::write(b, asio::buffer("unix", 4));
  std::optional<Stream> moved_local = local.moved_to(other.get_executor());
  ASSERT_TRUE(moved_local);
  EXPECT_EQ(run(other, read_exactly(*moved_local, 4)), "unix");
}

// A throwaway P-256 key and self-signed certificate for `context`.
void use_throwaway_certificate(asio::ssl::context& context) {
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  ASSERT_TRUE(key);
  std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), X509_free);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  ASSERT_GT(X509_sign(cert.get(), key.get(), EVP_sha256()), 0);
  ASSERT_EQ(SSL_CTX_use_certificate(context.native_handle(), cert.get()), 1);
  ASSERT_EQ(SSL_CTX_use_PrivateKey(context.native_handle(), key.get()), 1);
}

awaitable<error_code> handshake_as(TlsStream& stream, asio::ssl::stream_base::handshake_type side) {
  auto [ec] = co_await stream.async_handshake(side, use_nothrow);
  co_return ec;
}

awaitable<bool> handshake(TlsStream& client, TlsStream& server) {
  using namespace asio::experimental::awaitable_operators;
  auto [c, s] = co_await (handshake_as(client, asio::ssl::stream_base::client) &&
                          handshake_as(server, asio::ssl::stream_base::server));
  co_return !c && !s;
}

// Over TLS a record is read from the socket whole: what the reader did not
// take yet is in OpenSSL, not in the socket, and still counts as unread.
TEST(Stream, UnreadInputOfATlsConnectionIncludesWhatOpenSslHolds) {
  TcpPair pair;
  asio::ssl::context server_ctx(asio::ssl::context::tls_server);
  use_throwaway_certificate(server_ctx);
  asio::ssl::context client_ctx(asio::ssl::context::tls_client);
  TlsStream client(std::move(pair.client), client_ctx);
  TlsStream server(std::move(pair.server), server_ctx);
  ASSERT_TRUE(run(pair.io, handshake(client, server)));
  Stream s(std::move(server));
  EXPECT_FALSE(s.has_unread_input());

  asio::write(client, asio::buffer("hello world", 11));  // one TLS record
  EXPECT_EQ(run(pair.io, read_exactly(s, 1)), "h");
  EXPECT_EQ(s.tcp_socket()->available(), 0u);  // the record left the socket whole
  EXPECT_TRUE(s.has_unread_input());
  EXPECT_EQ(run(pair.io, read_exactly(s, 10)), "ello world");
  EXPECT_FALSE(s.has_unread_input());
}

// A TLS stream's state belongs to its loop: it does not move.
TEST(Stream, TlsConnectionsDoNotMove) {
  TcpPair pair;
  asio::ssl::context ctx(asio::ssl::context::tls_client);
  Stream s(TlsStream(std::move(pair.server), ctx));
  asio::io_context other;
  EXPECT_FALSE(s.moved_to(other.get_executor()));
}

}  // namespace
}  // namespace pgwarden::proxy
