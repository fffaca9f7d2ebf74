#pragma once
/// systemd's readiness protocol (sd_notify(3)) without libsystemd: one
/// datagram to the socket named by $NOTIFY_SOCKET, so a unit with
/// Type=notify knows when pgwarden listens, reloads and stops.

#include <string_view>

namespace pgwarden::proxy {

/// Sends `state` (e.g. "READY=1", "STOPPING=1") when $NOTIFY_SOCKET is set.
/// Returns false when it is not set or the send failed; never throws.
bool sd_notify(std::string_view state) noexcept;

}  // namespace pgwarden::proxy
