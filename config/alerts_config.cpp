#include <array>
#include <charconv>

#include "config/config.hpp"

namespace pgwarden::config {

std::string HttpUrl::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return std::string(tls ? "https://" : "http://") + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) +
         target;
}

std::string_view to_string(AlertSinkType t) noexcept {
  static constexpr std::array<std::string_view, 4> names = {"webhook", "slack", "alertmanager", "syslog"};
  return names[static_cast<std::size_t>(t)];
}

std::string_view to_string(SyslogTransport t) noexcept {
  static constexpr std::array<std::string_view, 3> names = {"udp", "tcp", "tls"};
  return names[static_cast<std::size_t>(t)];
}

std::optional<HttpUrl> parse_http_url(std::string_view text, std::string& error) {
  HttpUrl u;
  if (text.starts_with("https://")) {
    u.tls = true;
    text.remove_prefix(8);
  } else if (text.starts_with("http://")) {
    text.remove_prefix(7);
  } else {
    error = "must start with http:// or https://";
    return std::nullopt;
  }
  const std::size_t slash = text.find('/');
  std::string_view authority = text.substr(0, slash);
  u.target = slash == std::string_view::npos ? "/" : std::string(text.substr(slash));
  if (authority.find('@') != std::string_view::npos) {
    error = "user information in the address is not supported";
    return std::nullopt;
  }
  std::string_view port;
  if (authority.starts_with("[")) {
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      error = "an IPv6 address needs its closing ]";
      return std::nullopt;
    }
    u.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty() && rest.front() != ':') {
      error = "unexpected text after ]";
      return std::nullopt;
    }
    if (!rest.empty()) port = rest.substr(1);
  } else {
    const std::size_t colon = authority.find(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) {
    error = "a host is required";
    return std::nullopt;
  }
  u.port = u.tls ? 443 : 80;
  if (!port.empty()) {
    unsigned value = 0;
    auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
    if (ec != std::errc{} || end != port.data() + port.size() || value == 0 || value > 65535) {
      error = "the port must be from 1 to 65535";
      return std::nullopt;
    }
    u.port = static_cast<std::uint16_t>(value);
  }
  return u;
}

}  // namespace pgwarden::config
