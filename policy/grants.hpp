#pragma once
/// Grants: which person (by name or group) may log in as which database
/// role, on which databases, from which networks. Resolution is a pure
/// function of the configuration's GrantSet and what a connection presents
/// at startup, so a reload that removes a grant refuses the next connection
/// that needed it, with nothing else to invalidate.

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/cidr.hpp"
#include "policy/glob.hpp"
#include "policy/rules.hpp"
#include "policy/session_facts.hpp"

namespace pgwarden::policy {

/// One entry of `grants:`. A person it covers may use any of `roles`.
struct Grant {
  std::string name;                   ///< as written, or "grants[N]" (for audit records)
  std::vector<std::string> people;    ///< person names, exact
  std::vector<std::string> groups;    ///< the person's credential groups, or pgwarden `groups:` listing them
  std::vector<std::string> roles;     ///< database roles, exact; at least one
  std::string default_role;           ///< one of roles: the role when the client asks for none
  std::vector<Glob> databases;        ///< empty = any database
  std::vector<std::string> networks;  ///< names of `networks:`, `local`, CIDRs; empty = anywhere
};

/// What a connection presents at startup, once its credential is verified.
struct GrantRequest {
  std::string_view person;                      ///< from the credential
  std::span<const std::string> person_groups;   ///< from the credential
  AuthMethod auth_method = AuthMethod::Passthrough;
  std::string_view user;          ///< the StartupMessage's user
  std::string_view role_setting;  ///< the `pgwarden.role` startup setting; "" = not given
  std::string_view database;
  std::optional<IpAddress> client;  ///< nullopt = a Unix-socket client
};

/// The role a connection logs in as and the grant that allows it, or why it
/// is refused. `grant` points into the GrantSet: keep its Config alive.
struct GrantDecision {
  const Grant* grant = nullptr;  ///< null when refused, or when no grant is needed
  std::uint32_t index = 0;       ///< of `grant` in GrantSet::grants()
  std::string role;              ///< the database role (when not refused)
  /// When refused: the message for FATAL 28000. It names the person and the
  /// role asked for, never a secret, and not which grants exist.
  std::string refusal;

  bool refused() const noexcept { return !refusal.empty(); }
  /// The grant's name for the audit record; "" when none was needed.
  std::string_view grant_name() const noexcept { return grant ? std::string_view(grant->name) : ""; }
};

/// The resolved `grants:` of one configuration.
class GrantSet {
 public:
  GrantSet() = default;
  /// Resolves the pgwarden groups and networks the grants name. Names must
  /// exist (the loader reports undefined networks); unknown ones match nothing.
  static GrantSet build(std::vector<Grant> grants, const GroupMap& groups, const NetworkMap& networks);

  const std::vector<Grant>& grants() const noexcept { return grants_; }
  bool empty() const noexcept { return grants_.empty(); }
  /// Every role some grant names, sorted, once each: pgwarden needs a
  /// credential for each.
  std::vector<std::string> roles() const;

  /// The role and grant for `request`.
  ///
  /// A role that authenticated itself (auth: passthrough or scram) needs no
  /// grant: the role is `user`. A person (certificate, token, people file)
  /// asks for the role `user` names, except when `user` is their own name:
  /// then for `role_setting`, or, without one, for the default role of
  /// their grant. The first grant in configuration order that covers the
  /// person, the database and the client's network and holds the role wins.
  GrantDecision resolve(const GrantRequest& request) const;

 private:
  struct Resolved {
    std::vector<std::string> members;  // sorted people of the pgwarden groups named
    Network network;
  };
  bool covers(std::size_t i, const GrantRequest& r) const noexcept;

  std::vector<Grant> grants_;
  std::vector<Resolved> resolved_;
};

}  // namespace pgwarden::policy
