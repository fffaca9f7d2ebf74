#pragma once
/// The Asio vocabulary the proxy uses: coroutines that return errors as
/// values (as_tuple) so that network failures stay ordinary control flow.

#include <chrono>

#include <boost/asio.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>

namespace pgwarden::proxy {

namespace asio = boost::asio;
using asio::awaitable;
using boost::system::error_code;
using tcp = asio::ip::tcp;
using unix_socket = asio::local::stream_protocol;

/// Completion token for `co_await op(..., use_nothrow)`: yields a tuple whose
/// first element is the error_code instead of throwing.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

/// Completes after `d` on the calling coroutine's executor: the other side
/// of a timeout, `co_await (op() || sleep_for(limit))`.
inline awaitable<void> sleep_for(std::chrono::steady_clock::duration d) {
  asio::steady_timer timer(co_await asio::this_coro::executor, d);
  co_await timer.async_wait(use_nothrow);
}

}  // namespace pgwarden::proxy
