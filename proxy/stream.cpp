#include "proxy/stream.hpp"

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
