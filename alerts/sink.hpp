#pragma once
/// A place alerts go. A sink makes one delivery attempt at a time on the
/// Dispatcher's thread; retrying, queueing and timing out whole attempts
/// are the Dispatcher's job, so a sink only says how the attempt went.

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "alerts/alert.hpp"
#include "config/config.hpp"

namespace pgwarden::alerts {

class Sink {
 public:
  virtual ~Sink() = default;
  /// One attempt to deliver `a`, ending within `timeout`. Returns "" when
  /// the receiver took it, else why not ("connection refused", "HTTP 500",
  /// "timed out after 2000ms").
  virtual boost::asio::awaitable<std::string> deliver(const Alert& a, std::chrono::milliseconds timeout) = 0;
};

/// The sink `c` describes; null with `error` set when it cannot be made
/// (an unreadable key file, a bad CA file).
std::unique_ptr<Sink> make_sink(const config::AlertSinkConfig& c, std::string& error);

}  // namespace pgwarden::alerts
