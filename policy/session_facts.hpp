#pragma once
/// Who is connected and how: the session half of a policy decision. Built by
/// the proxy once per session (the protocol path per message); the evaluator
/// only reads it. Policy is pure, so the current time is passed in here too.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/cidr.hpp"

namespace pgwarden::policy {

/// The protocol path a message takes into the server.
enum class ProtocolPath : std::uint8_t {
  Simple,        ///< Query ('Q')
  Extended,      ///< Parse / Bind / Execute
  FunctionCall,  ///< FunctionCall ('F'), the fast-path interface
  Copy,          ///< data of COPY ... FROM STDIN
  Replication,   ///< a walsender connection (startup parameter replication)
};
inline constexpr std::size_t protocol_path_count = 5;

/// "simple", "extended", "function_call", "copy", "replication".
std::string_view to_string(ProtocolPath p) noexcept;
/// Inverse of to_string (case-insensitive); false when `name` is no path.
bool parse_protocol_path(std::string_view name, ProtocolPath& out) noexcept;

/// The session a statement (or a connection attempt) belongs to.
struct SessionFacts {
  std::string user;              ///< from the StartupMessage, trusted once authenticated
  std::string database;          ///< from the StartupMessage
  std::string application_name;  ///< startup parameter; may change with SET, the proxy tracks it
  /// The client's address; empty for a Unix-socket client.
  std::optional<IpAddress> client;
  /// The deployment this proxy guards (Config::environment), e.g. "production".
  std::string environment;
  ProtocolPath protocol = ProtocolPath::Simple;
  /// Opened read-only at the server (a connect rule with read_only: true):
  /// no statement may turn that off.
  bool read_only = false;
  /// The time of the decision (the evaluator never reads a clock).
  std::chrono::sys_seconds now{};
};

}  // namespace pgwarden::policy
