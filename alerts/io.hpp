#pragma once
/// The Asio vocabulary of alerts/: coroutines that return errors as values.

#include <chrono>
#include <string>
#include <string_view>

#include <boost/asio.hpp>

namespace pgwarden::alerts {

namespace asio = boost::asio;
using boost::system::error_code;

/// Completion token that yields (error_code, ...) instead of throwing.
inline constexpr auto use_nothrow = asio::as_tuple(asio::use_awaitable);

/// Why an attempt failed, for the undelivered record: "connecting: Connection
/// refused", or "timed out after 2000ms" when the stream's deadline passed.
std::string describe(const error_code& ec, std::string_view doing, std::chrono::milliseconds timeout);

}  // namespace pgwarden::alerts
