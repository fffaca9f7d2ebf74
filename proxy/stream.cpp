#include "proxy/stream.hpp"

#include <unistd.h>

namespace pgwarden::proxy {

void Stream::close() {
  error_code ignored;
  std::visit(
      [&](auto& s) {
        auto& sock = [&]() -> auto& {
          if constexpr (std::is_same_v<std::decay_t<decltype(s)>, TlsStream>) return s.lowest_layer();
          else return s;
        }();
        sock.shutdown(asio::socket_base::shutdown_both, ignored);
        sock.close(ignored);
      },
      s_);
}

std::optional<Stream> Stream::moved_to(const asio::any_io_executor& executor) {
  error_code ec;
  if (auto* tcp = std::get_if<tcp::socket>(&s_)) {
    const auto protocol = tcp->local_endpoint(ec).protocol();
    if (ec) return std::nullopt;
    const int fd = tcp->release(ec);
    if (ec) return std::nullopt;
    tcp::socket moved(executor);
    moved.assign(protocol, fd, ec);
    if (ec) {
      ::close(fd);
      return std::nullopt;
    }
    return Stream(std::move(moved));
  }
  if (auto* local = std::get_if<unix_socket::socket>(&s_)) {
    const int fd = local->release(ec);
    if (ec) return std::nullopt;
    unix_socket::socket moved(executor);
    moved.assign(unix_socket(), fd, ec);
    if (ec) {
      ::close(fd);
      return std::nullopt;
    }
    return Stream(std::move(moved));
  }
  return std::nullopt;
}

bool Stream::has_unread_input() {
  error_code ec;
  const std::size_t n = std::visit(
      [&](auto& s) -> std::size_t {
        if constexpr (std::is_same_v<std::decay_t<decltype(s)>, TlsStream>) return s.lowest_layer().available(ec);
        else return s.available(ec);
      },
      s_);
  return !ec && n > 0;
}

int Stream::native_handle() {
  if (auto* p = std::get_if<unix_socket::socket>(&s_)) return p->native_handle();
  tcp::socket* tcp = tcp_socket();
  return tcp ? tcp->native_handle() : -1;
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
