#pragma once
/// The files the people sections name, checked as `pgwarden check` does:
/// loading a configuration resolves their paths but opens none of them, so
/// no secret ever enters a Config.

#include <vector>

#include "config/config.hpp"

namespace pgwarden::config {

/// Appends to `errors` each credential file that is missing, unreadable or,
/// for a password file or a key, not pgwarden's alone (secret_file.hpp), and
/// each people file or JWKS file that is missing or unreadable; to
/// `warnings` a people file other users may read (its verifiers allow
/// offline guessing). Each message names the configuration key and the path.
void check_identity_files(const Config& c, std::vector<Diagnostic>& errors, std::vector<Diagnostic>& warnings);

}  // namespace pgwarden::config
