#include "config/config.hpp"

#include <array>

namespace pgwarden::config {

std::string Endpoint::to_string() const {
  const bool v6 = host.find(':') != std::string::npos;
  return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::string UpstreamConfig::socket_path() const {
  if (unix_socket.empty()) return {};
  return unix_socket + "/.s.PGSQL." + std::to_string(port);
}

std::string Diagnostic::to_string() const {
  if (line <= 0) return file + ": " + message;
  return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::string_view to_string(UpstreamTlsMode m) noexcept {
  static constexpr std::array<std::string_view, 5> names = {"disable", "prefer", "require", "verify-ca",
                                                            "verify-full"};
  return names[static_cast<std::size_t>(m)];
}

std::string_view to_string(AuthMode m) noexcept { return m == AuthMode::Passthrough ? "passthrough" : "scram"; }

std::string_view to_string(Durability d) noexcept { return d == Durability::Buffered ? "buffered" : "synced"; }

std::string_view to_string(CertificateField f) noexcept {
  static constexpr std::array<std::string_view, 5> names = {"none", "san_email", "san_uri", "cn", "ou"};
  return names[static_cast<std::size_t>(f)];
}

}  // namespace pgwarden::config
