#pragma once
/// `pgwarden.role`: the database role a person asks for when the startup
/// `user` is their own name (policy/grants.hpp). Standard clients can send
/// it: libpq and JDBC as `options=-c pgwarden.role=app`, drivers that pass
/// run-time settings (asyncpg's server_settings) as a parameter of its own.
/// It is pgwarden's, not the server's: PostgreSQL would take it as a custom
/// setting and show it to the session, so it is taken out of the
/// StartupMessage before the server sees it, and never decided as a SET.

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pgwarden::policy {

/// The setting's name, as a parameter or in `-c NAME=VALUE`; compared
/// without regard to case, as the server compares setting names.
inline constexpr std::string_view role_setting_name = "pgwarden.role";

/// A StartupMessage's parameters without pgwarden.role, and its value.
struct RoleSetting {
  /// The value the client gave (the last one, as the server would apply);
  /// nullopt when it gave none.
  std::optional<std::string> role;
  /// The parameters to send upstream, in order: `options` rewritten without
  /// the setting's switches (left byte for byte as it was when it held none,
  /// dropped when nothing else was in it), the parameter itself dropped.
  std::vector<std::pair<std::string, std::string>> parameters;
};

/// Takes pgwarden.role out of `parameters`: a parameter named so, and in
/// `options` the switches `-c pgwarden.role=V`, `-cpgwarden.role=V` and
/// `--pgwarden.role=V`.
RoleSetting take_role_setting(std::span<const std::pair<std::string_view, std::string_view>> parameters);

}  // namespace pgwarden::policy
