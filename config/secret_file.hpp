#pragma once
/// Files that hold a secret pgwarden logs in with (credentials:
/// password_file, a client key). Such a file must be pgwarden's alone:
/// owned by the user pgwarden runs as, with no permission for its group or
/// anyone else (0600 or 0400), as libpq demands of sslkey and ssh of a
/// private key. `pgwarden check` reports a file that is not; the session
/// refuses to read one.

#include <cstddef>
#include <string>
#include <string_view>

namespace pgwarden::config {

/// The largest secret file read (a password, a PEM key): anything longer is
/// not one.
inline constexpr std::size_t max_secret_file_bytes = 64u << 10;

/// Why `path` may not hold a secret ("" when it may): missing, not a regular
/// file, owned by another user, open to its group or others, or unreadable.
std::string secret_file_problem(const std::string& path);

/// Reads the secret file `path` into `out`, after the checks of
/// secret_file_problem() made on the opened file itself, so that the file
/// checked is the file read. False with `error` set otherwise.
bool read_secret_file(const std::string& path, std::string& out, std::string& error);

/// The password a password_file holds: its first line, without the line end.
std::string password_of(std::string_view file_contents);

}  // namespace pgwarden::config
