#pragma once
/// Who is connected and how: the session half of a policy decision. Built by
/// the proxy once per session (the protocol path per message); the evaluator
/// only reads it. Policy is pure, so the current time is passed in here too.

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

/// How the connection's person proved who they are. The first three are
/// the existing modes, where the person is the database role itself; the
/// last three establish a person apart from the role, who then needs a
/// grant for it (policy/grants.hpp).
enum class AuthMethod : std::uint8_t {
  Passthrough,  ///< auth: passthrough, the server authenticated the role
  Scram,        ///< auth: scram, pgwarden checked the role's SCRAM verifier
  Md5,          ///< auth: scram with an md5 secret in the auth file
  Certificate,  ///< a verified client certificate names the person
  Token,        ///< a signed token (JWT) given as the password names the person
  People,       ///< SCRAM against pgwarden's people file
};
inline constexpr std::size_t auth_method_count = 6;

/// "passthrough", "scram", "md5", "certificate", "token", "people".
std::string_view to_string(AuthMethod m) noexcept;
/// Inverse of to_string (case-insensitive); false when `name` is no method.
bool parse_auth_method(std::string_view name, AuthMethod& out) noexcept;
/// True for the methods that name a person apart from the database role
/// (certificate, token, people): such a session needs a grant for its role.
constexpr bool names_person(AuthMethod m) noexcept { return m >= AuthMethod::Certificate; }
/// Bit of an AuthMethod in Conditions::auth_methods.
constexpr std::uint8_t auth_method_bit(AuthMethod m) noexcept { return std::uint8_t(1u << unsigned(m)); }

/// The session a statement (or a connection attempt) belongs to.
struct SessionFacts {
  /// The database role: the StartupMessage's user, trusted once
  /// authenticated; for a person (names_person(auth_method)) the role their
  /// grant gives.
  std::string user;
  /// Who is connected: from the credential (certificate, token, people
  /// file); the role name itself with auth: passthrough or auth: scram.
  std::string person;
  /// The person's groups as the credential states them (certificate field,
  /// token claim, people file); pgwarden's own `groups:` are not copied here.
  std::vector<std::string> person_groups;
  AuthMethod auth_method = AuthMethod::Passthrough;
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
