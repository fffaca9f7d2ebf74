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

}  // namespace pgwarden::proxy
