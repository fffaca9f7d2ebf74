#pragma once
/// The Asio vocabulary the proxy uses: coroutines that return errors as
/// values (as_tuple) so that network failures stay ordinary control flow.

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

}  // namespace pgwarden::proxy
