#pragma once
/// One byte-stream type for both hops of a session: plain TCP, a Unix socket
/// (PostgreSQL's local socket upstream) or TLS over TCP. The session is
/// written once against Stream; the transport is chosen at negotiation.

#include <optional>
#include <span>
#include <string>
#include <tuple>
#include <variant>

#include <boost/asio/ssl.hpp>

#include "proxy/net/asio.hpp"

namespace pgwarden::proxy {

using TlsStream = asio::ssl::stream<tcp::socket>;

class Stream {
 public:
  explicit Stream(tcp::socket s) : s_(std::move(s)) {}
  explicit Stream(unix_socket::socket s) : s_(std::move(s)) {}
  explicit Stream(TlsStream s) : s_(std::move(s)) {}

  awaitable<std::tuple<error_code, std::size_t>> read_some(asio::mutable_buffer b) {
    return std::visit([&](auto& s) { return s.async_read_some(b, use_nothrow); }, s_);
  }
  awaitable<std::tuple<error_code, std::size_t>> write(std::span<const asio::const_buffer> b) {
    if (b.size() > 1) {
      if (auto* tls = std::get_if<TlsStream>(&s_)) return write_gathered(*tls, b);
    }
    return std::visit([&](auto& s) { return asio::async_write(s, b, use_nothrow); }, s_);
  }
  awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer b) {
    return std::visit([&](auto& s) { return asio::async_write(s, b, use_nothrow); }, s_);
  }

  asio::any_io_executor executor() {
    return std::visit([](auto& s) -> asio::any_io_executor { return s.get_executor(); }, s_);
  }
  /// Closes the transport at once (no TLS close_notify); pending operations end.
  void close();
  /// Cancels pending operations: each completes with operation_aborted, or
  /// with its result if it had completed already.
  void cancel();
  bool is_tls() const { return std::holds_alternative<TlsStream>(s_); }
  /// Whether the peer has sent bytes not read yet: in the socket's receive
  /// queue, or for TLS also in OpenSSL (received records not decrypted yet,
  /// decrypted bytes not returned yet).
  bool has_unread_input();
  /// The underlying TCP socket, or nullptr for a Unix socket.
  tcp::socket* tcp_socket();
  /// The file descriptor of the transport (TCP or Unix socket); -1 once closed.
  int native_handle();
  /// The same connection driven by another event loop: a plain TCP or Unix
  /// socket is handed over as it is; a TLS stream cannot be (its TLS state
  /// stays with the loop it has), so nullopt. No operation may be pending.
  std::optional<Stream> moved_to(const asio::any_io_executor& executor);
  TlsStream* tls() { return std::get_if<TlsStream>(&s_); }

 private:
  /// TLS seals each buffer of a gathered write into records of its own;
  /// joining them first sends full records and far fewer of them.
  awaitable<std::tuple<error_code, std::size_t>> write_gathered(TlsStream& tls,
                                                               std::span<const asio::const_buffer> b);

  std::variant<tcp::socket, unix_socket::socket, TlsStream> s_;
  std::string joined_;  // write_gathered's buffer, kept for reuse
};

}  // namespace pgwarden::proxy
