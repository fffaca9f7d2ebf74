#pragma once
/// The `pgwarden serve` process: loads the configuration, starts the
/// server, handles signals, and returns the process exit code.

#include <string>

namespace pgwarden::commands {

/// Runs the proxy with the configuration file at `config_path` until a
/// signal stops it. Returns the process exit code.
int serve(const std::string& config_path);

}  // namespace pgwarden::commands
