#pragma once
/// `pgwarden explain`: what the policy in a configuration file decides for
/// one SQL text from a given user, database, client and application.

#include <iosfwd>
#include <string>

namespace pgwarden::commands {

struct ExplainRequest {
  std::string config_path;
  std::string user;
  std::string database;      ///< default: the user name, as PostgreSQL does
  std::string client;        ///< IP address; empty = a Unix-socket client
  std::string application;
  std::string protocol = "simple";
  std::string client_encoding = "UTF8";             ///< as the server reports it
  std::string standard_conforming_strings = "on";  ///< on | off
  std::string sql;
};

/// Prints the JSON decision to `out` (errors to `err`); returns the exit code:
/// 0 allowed, 1 denied, 2 bad configuration or arguments.
int run_explain(const ExplainRequest& request, std::ostream& out, std::ostream& err);

}  // namespace pgwarden::commands
