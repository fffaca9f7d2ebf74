#include "proxy/upstream.hpp"

namespace pgwarden::proxy {

using namespace asio::experimental::awaitable_operators;

std::string UpstreamTarget::describe() const {
  if (!unix_socket_dir.empty()) return unix_socket_dir + "/.s.PGSQL." + std::to_string(port);
  return host + ":" + std::to_string(port);
}

namespace {

awaitable<UpstreamConnection> connect_tcp(const UpstreamTarget& target) {
  auto ex = co_await asio::this_coro::executor;
  tcp::resolver resolver(ex);
  auto [rec, endpoints] =
      co_await resolver.async_resolve(target.host, std::to_string(target.port), use_nothrow);
  if (rec) co_return UpstreamConnection{std::nullopt, "could not resolve host: " + rec.message()};
  tcp::socket socket(ex);
  auto [cec, ep] = co_await asio::async_connect(socket, endpoints, use_nothrow);
  if (cec) co_return UpstreamConnection{std::nullopt, cec.message()};
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  co_return UpstreamConnection{Stream(std::move(socket)), {}};
}

awaitable<UpstreamConnection> connect_unix(const UpstreamTarget& target) {
  unix_socket::socket socket(co_await asio::this_coro::executor);
  auto [ec] = co_await socket.async_connect(unix_socket::endpoint(target.describe()), use_nothrow);
  if (ec) co_return UpstreamConnection{std::nullopt, ec.message()};
  co_return UpstreamConnection{Stream(std::move(socket)), {}};
}

awaitable<void> sleep_for(std::chrono::milliseconds d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(use_nothrow);
}

}  // namespace

awaitable<UpstreamConnection> connect_upstream(const UpstreamTarget& target) {
  auto attempt = target.unix_socket_dir.empty() ? connect_tcp(target) : connect_unix(target);
  auto result = co_await (std::move(attempt) || sleep_for(target.connect_timeout));
  if (result.index() == 1) {
    co_return UpstreamConnection{
        std::nullopt, "timed out after " + std::to_string(target.connect_timeout.count()) + " ms"};
  }
  co_return std::move(std::get<0>(result));
}

}  // namespace pgwarden::proxy
