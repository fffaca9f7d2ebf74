#pragma once
/// `pgwarden explain`: what the policy in a configuration file decides for
/// one SQL text from a given user, database, client and application.

#include <iosfwd>
#include <string>
#include <vector>

namespace pgwarden::commands {

struct ExplainRequest {
  std::string config_path;
  std::string user;          ///< the StartupMessage's user: a role, or a person's own name
  /// The person a credential names; default: the user (as with auth:
  /// passthrough and scram). A person other than the user needs a person's
  /// auth_method (certificate, token, people) and a grant for the role.
  std::string person;
  std::vector<std::string> person_groups;  ///< as the credential states them
  std::string auth_method;   ///< passthrough (default), scram, md5, certificate, token, people
  std::string role_setting;  ///< the pgwarden.role startup setting
  std::string database;      ///< default: the user name, as PostgreSQL does
  std::string client;        ///< IP address; empty = a Unix-socket client
  std::string application;
  std::string protocol = "simple";
  std::string client_encoding = "UTF8";             ///< as the server reports it
  std::string standard_conforming_strings = "on";  ///< on | off
  std::string sql;
};

/// Prints the JSON decision to `out` (errors to `err`); returns the exit code:
/// 0 allowed, 1 denied (a person without a grant too), 2 bad configuration
/// or arguments.
int run_explain(const ExplainRequest& request, std::ostream& out, std::ostream& err);

}  // namespace pgwarden::commands
