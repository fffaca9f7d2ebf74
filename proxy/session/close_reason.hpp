#pragma once
/// Why a session ended: every closed connection has one, for the log and
/// for a bounded metric label.

#include <cstddef>
#include <string_view>

namespace pgwarden::proxy {

enum class CloseReason {
  None,               ///< still open
  ClientTerminate,    ///< the client sent Terminate
  ClientClosed,       ///< the client closed its socket
  ServerClosed,       ///< the server closed its socket
  ClientProtocolError,
  ServerProtocolError,
  UpstreamUnavailable,
  StartupTimeout,
  IdleTimeout,
  StartupRefused,     ///< a startup packet we refuse (bad version, injection after SSLRequest)
  TlsHandshakeFailed, ///< the client's TLS handshake failed
  AuthenticationFailed, ///< auth: scram, the client did not prove its password
  UpstreamLoginFailed,  ///< auth: scram, the server refused pgwarden's login as the user
  AuditUnavailable,     ///< synced audit records could not be written
  CancelRequest,      ///< the connection only carried a CancelRequest
  Shutdown,
  ClientWriteError,
  ServerWriteError,
  ServerRefused,      ///< the server refused the startup with an error (too many connections, no such database ...)
};
/// How many CloseReason values there are: arrays indexed by them are this long.
inline constexpr std::size_t close_reason_count = static_cast<std::size_t>(CloseReason::ServerRefused) + 1;

std::string_view to_string(CloseReason r) noexcept;

}  // namespace pgwarden::proxy
