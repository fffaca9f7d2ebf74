#pragma once
/// `pgwarden check --config FILE`: validate a configuration without starting.

#include <ostream>
#include <string>

namespace pgwarden::commands {

/// Loads `path` and checks the files its people sections name (secret
/// files must be pgwarden's alone); prints every error
/// (`file:line:col: error: ...`) to `err`, or `ok: N rules, M groups, K
/// networks[, G grants, C credentials]` to `out`; warnings go to `err`
/// either way. Returns the process exit code: 0 when valid, 1 otherwise.
int run_check(const std::string& path, std::ostream& out, std::ostream& err);

}  // namespace pgwarden::commands
