#include "proxy/net/stream.hpp"

#include <unistd.h>

#include <openssl/ssl.h>

#include <type_traits>

namespace pgwarden::proxy {

namespace {

/// Calls `f` with the socket under any of the stream types.
template <class F>
decltype(auto) on_socket(std::variant<tcp::socket, unix_socket::socket, TlsStream>& s, F&& f) {
  return std::visit(
      [&](auto& stream) -> decltype(auto) {
        if constexpr (std::is_same_v<std::decay_t<decltype(stream)>, TlsStream>) return f(stream.lowest_layer());
        else return f(stream);
      },
      s);
}

/// The descriptor of `socket` taken over by a socket of the same protocol
/// on `executor`'s loop.
template <class Socket>
std::optional<Stream> rehome(Socket& socket, const asio::any_io_executor& executor) {
  error_code ec;
  const auto protocol = socket.local_endpoint(ec).protocol();
  if (ec) return std::nullopt;
  const int fd = socket.release(ec);
  if (ec) return std::nullopt;
  Socket moved(executor);
  moved.assign(protocol, fd, ec);
  if (ec) {
    ::close(fd);
    return std::nullopt;
  }
  return Stream(std::move(moved));
}

}  // namespace

void Stream::close() {
  on_socket(s_, [](auto& socket) {
    error_code ignored;
    socket.shutdown(asio::socket_base::shutdown_both, ignored);
    socket.close(ignored);
  });
}

void Stream::cancel() {
  on_socket(s_, [](auto& socket) {
    error_code ignored;
    socket.cancel(ignored);
  });
}

std::optional<Stream> Stream::moved_to(const asio::any_io_executor& executor) {
  if (auto* tcp = std::get_if<tcp::socket>(&s_)) return rehome(*tcp, executor);
  if (auto* local = std::get_if<unix_socket::socket>(&s_)) return rehome(*local, executor);
  return std::nullopt;
}

bool Stream::has_unread_input() {
  if (auto* tls = std::get_if<TlsStream>(&s_)) {
    // Decrypted and not yet returned, or received and not yet decrypted.
    SSL* ssl = tls->native_handle();
    if (SSL_pending(ssl) > 0 || BIO_ctrl_pending(SSL_get_rbio(ssl)) > 0) return true;
  }
  return on_socket(s_, [](auto& socket) {
    error_code ec;
    return socket.available(ec) > 0 && !ec;
  });
}

int Stream::native_handle() {
  return on_socket(s_, [](auto& socket) { return static_cast<int>(socket.native_handle()); });
}

tcp::socket* Stream::tcp_socket() {
  if (auto* p = std::get_if<tcp::socket>(&s_)) return p;
  if (auto* p = std::get_if<TlsStream>(&s_)) return &p->next_layer();
  return nullptr;
}

awaitable<std::tuple<error_code, std::size_t>> Stream::write_gathered(TlsStream& tls,
                                                                     std::span<const asio::const_buffer> b) {
  joined_.clear();
  for (const auto& piece : b) joined_.append(static_cast<const char*>(piece.data()), piece.size());
  auto result = co_await asio::async_write(tls, asio::buffer(joined_), use_nothrow);
  if (joined_.capacity() > 256 * 1024) std::string().swap(joined_);
  co_return result;
}

}  // namespace pgwarden::proxy
