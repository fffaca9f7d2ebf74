#include "alerts/io.hpp"

#include <boost/beast/core/error.hpp>

namespace pgwarden::alerts {

std::string describe(const error_code& ec, std::string_view doing, std::chrono::milliseconds timeout) {
  if (ec == boost::beast::error::timeout) return "timed out after " + std::to_string(timeout.count()) + "ms";
  if (!ec) return std::string(doing) + ": no address";
  return std::string(doing) + ": " + ec.message();
}

}  // namespace pgwarden::alerts
