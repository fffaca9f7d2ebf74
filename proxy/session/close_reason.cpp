#include "proxy/session/close_reason.hpp"

namespace pgwarden::proxy {

std::string_view to_string(CloseReason r) noexcept {
  switch (r) {
    case CloseReason::None: return "open";
    case CloseReason::ClientTerminate: return "client_terminate";
    case CloseReason::ClientClosed: return "client_closed";
    case CloseReason::ServerClosed: return "server_closed";
    case CloseReason::ClientProtocolError: return "client_protocol_error";
    case CloseReason::ServerProtocolError: return "server_protocol_error";
    case CloseReason::UpstreamUnavailable: return "upstream_unavailable";
    case CloseReason::StartupTimeout: return "startup_timeout";
    case CloseReason::IdleTimeout: return "idle_timeout";
    case CloseReason::StartupRefused: return "startup_refused";
    case CloseReason::TlsHandshakeFailed: return "tls_handshake_failed";
    case CloseReason::AuthenticationFailed: return "authentication_failed";
    case CloseReason::UpstreamLoginFailed: return "upstream_login_failed";
    case CloseReason::AuditUnavailable: return "audit_unavailable";
    case CloseReason::CancelRequest: return "cancel_request";
    case CloseReason::Shutdown: return "shutdown";
    case CloseReason::ClientWriteError: return "client_write_error";
    case CloseReason::ServerWriteError: return "server_write_error";
    case CloseReason::ServerRefused: return "server_refused";
  }
  return "unknown";
}

}  // namespace pgwarden::proxy
