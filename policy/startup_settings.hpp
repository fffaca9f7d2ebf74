#pragma once
/// The settings a StartupMessage makes, as the SET statements they are.
/// PostgreSQL applies every startup parameter it does not know itself
/// (anything but user, database, options, replication and `_pq_.` protocol
/// options) as a run-time setting, and the `options` parameter holds
/// command-line switches for the backend (`-c role=admin`, `--work-mem=1GB`,
/// `-O`). So a client can start its session as another role, or with another
/// search_path, without running a statement. Deciding each setting as the SET
/// that makes it means a rule on `role_change` or `class: MISC_SET` says the
/// same about a setting whichever way it arrives.

#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/statement_facts.hpp"

namespace pgwarden::policy {

/// The StartupMessage parameter that opens a session read-only at the server
/// (SessionFacts::read_only). Appended after the client's own parameters, so
/// it is the value the server applies; the client's attempts to set it are
/// decided like the SETs they are and refused in a read-only session.
inline constexpr std::pair<std::string_view, std::string_view> read_only_startup_parameter{
    "default_transaction_read_only", "on"};

/// One setting of a StartupMessage.
struct StartupSetting {
  std::string source;  ///< where it came from, for messages: `role=admin`, `options: -c role=admin`
  std::string sql;     ///< the statement that makes it: `SET "role" TO 'admin'`; empty for a
                       ///< switch that is no setting (a debug level, an output file ...)
};

/// The settings `parameters` make, in order. `options` is split as the
/// server splits it (at unescaped white space, `\` escaping the next
/// character) and read with the server's switches: `-c NAME=VALUE`,
/// `--NAME=VALUE` and the short switches that set one setting each. A
/// `*_preload_libraries` setting is followed by the LOAD it makes.
std::vector<StartupSetting> startup_settings(std::span<const std::pair<std::string_view, std::string_view>> parameters);

/// The words of an `options` parameter as the server splits them: at
/// unescaped white space, `\` taking the next character as it is.
std::vector<std::string> split_startup_options(std::string_view options);

/// The facts of `setting`: its SET as classify() reads it, or for a switch
/// that is no setting unparseable text, on which every deny rule that
/// matches the session fails closed.
ClassifiedText classify(const StartupSetting& setting);

}  // namespace pgwarden::policy
