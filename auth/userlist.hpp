#pragma once
/// The users `auth: scram` can verify, read from an `auth_file` in
/// pgbouncer's userlist format:
///
///     "username" "secret"
///
/// one user per line, each field in double quotes, a double quote inside a
/// field written twice (""). Lines starting with ';' or '#' (after optional
/// blanks) are comments; blank lines are ignored; as in pgbouncer, anything
/// after the secret (separated by a blank) is ignored. The secret is
/// PostgreSQL's stored form, pg_authid.rolpassword: a SCRAM-SHA-256 secret
/// or an md5 hash. Plaintext passwords are refused: pgwarden stores none.
/// A user listed twice is an error (which line meant it is ambiguous).

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "config/config.hpp"
#include "auth/scram.hpp"

namespace pgwarden::auth {

/// PostgreSQL's md5 secret: "md5" + md5(password + user), 32 lowercase hex digits.
struct Md5Secret {
  std::string hash;  ///< with the "md5" prefix
  friend bool operator==(const Md5Secret&, const Md5Secret&) = default;
};

/// What pgwarden holds for one user.
using UserSecret = std::variant<ScramVerifier, Md5Secret>;

/// The parsed auth file: user name to secret. Immutable once loaded; a
/// reload builds a new one.
class Userlist {
 public:
  /// The user's secret, or null when the user is not listed. Names compare
  /// exactly (PostgreSQL role names are case-sensitive once quoted).
  const UserSecret* find(std::string_view user) const;
  std::size_t size() const noexcept { return users_.size(); }

 private:
  friend class UserlistParser;
  std::map<std::string, UserSecret, std::less<>> users_;
};

/// The loaded userlist, or every error found, each with line and column.
struct UserlistLoad {
  std::shared_ptr<const Userlist> userlist;  ///< null when errors is not empty
  std::vector<config::Diagnostic> errors;
  bool ok() const noexcept { return userlist != nullptr; }
};

/// Parses userlist `text`; `name` is the file name used in diagnostics.
UserlistLoad parse_userlist(std::string_view text, std::string_view name);
/// Reads and parses the file at `path`.
UserlistLoad load_userlist_file(const std::string& path);

}  // namespace pgwarden::auth
