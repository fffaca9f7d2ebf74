// pgwarden: a PostgreSQL access audit proxy. Command-line entry point.

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "auth/scram.hpp"
#include "audit/tools/search.hpp"
#include "audit/tools/verifier.hpp"
#include "commands/check.hpp"
#include "commands/people_hash.hpp"
#include "commands/serve.hpp"
#include "proxy/ops/build_info.hpp"
#include "commands/explain.hpp"

int main(int argc, char** argv) {
  CLI::App app{"pgwarden: a PostgreSQL access audit proxy"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("pgwarden ") + std::string(pgwarden::proxy::version()));

  std::string config_path;
  auto* serve = app.add_subcommand("serve", "Run the proxy");
  serve->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();

  auto* check = app.add_subcommand("check", "Validate a configuration file and print a summary");
  check->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();

  pgwarden::commands::ExplainRequest explain_request;
  auto* explain = app.add_subcommand("explain", "Show what the policy decides for one SQL text, as JSON");
  explain->add_option("-c,--config", explain_request.config_path, "Configuration file (YAML)")->required();
  explain->add_option("-u,--user", explain_request.user, "User name")->required();
  explain->add_option("-d,--database", explain_request.database, "Database (default: the user name)");
  explain->add_option("--client", explain_request.client, "Client IP address (default: a Unix-socket client)");
  explain->add_option("-a,--application", explain_request.application, "application_name");
  explain->add_option("--person", explain_request.person,
                      "The person a credential names (default: the user); with a person's --auth-method the role "
                      "comes from their grant");
  explain->add_option("--person-group", explain_request.person_groups,
                      "A group the credential states for the person (repeatable)");
  explain->add_option("--auth-method", explain_request.auth_method,
                      "passthrough (default), scram, md5, certificate, token or people");
  explain->add_option("--role", explain_request.role_setting,
                      "The pgwarden.role startup setting: the role a person asks for when --user is their own name");
  explain->add_option("--protocol", explain_request.protocol,
                      "simple, extended, function_call, copy or replication (default simple)");
  explain->add_option("--client-encoding", explain_request.client_encoding,
                      "The session's client_encoding: the text is read as the server converts it (default UTF8)");
  explain->add_option("--standard-conforming-strings", explain_request.standard_conforming_strings,
                      "on or off: whether a backslash in '...' escapes (default on)");
  explain->add_option("sql", explain_request.sql, "The SQL text")->required();

  auto* audit = app.add_subcommand("audit", "Verify and search audit files");
  audit->require_subcommand(1);
  pgwarden::audit::VerifyRequest verify_request;
  auto* verify = audit->add_subcommand(
      "verify", "Check that audit files are intact (exit 0), or name the first altered, removed or reordered record (exit 1)");
  verify->add_option("files", verify_request.files, "Audit files or directories, any order, plain or .gz")->required();
  verify->add_option("--hmac-key-file", verify_request.hmac_key_file, "The key of audit.hmac_key_file: check HMACs too");

  pgwarden::audit::SearchRequest search_request;
  auto* search = audit->add_subcommand("search", "Show the audit records that match, oldest first");
  search->add_option("files", search_request.files, "Audit files or directories, any order, plain or .gz")->required();
  search->add_option("-u,--user", search_request.user, "User name");
  search->add_option("--person", search_request.person, "Person (who logged in, by certificate, token or people file)");
  search->add_option("-d,--database", search_request.database, "Database");
  search->add_option("--client", search_request.client, "Client address or CIDR block");
  search->add_option("--since", search_request.since, "At or after: YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM], UTC by default");
  search->add_option("--until", search_request.until, "At or before, same forms as --since");
  search->add_option("--decision", search_request.decision, "allow or deny");
  search->add_option("--class", search_request.class_name, "Statement class: READ, WRITE, FUNCTION, ROLE, DDL, MISC, MISC_SET");
  search->add_option("--command", search_request.command, "Command tag, * matches any run (\"DROP *\")");
  search->add_option("--rule", search_request.rule, "Name of the deciding rule");
  search->add_option("--session", search_request.session, "Session id");
  search->add_option("--event", search_request.event, "Event, * matches any run (\"auth.*\"); checkpoints only when asked for");
  search->add_option("--format", search_request.format, "table (default) or jsonl");

  auto* people = app.add_subcommand("people", "Tools for the people file");
  people->require_subcommand(1);
  int hash_iterations = pgwarden::auth::scram_default_iterations;
  auto* hash = people->add_subcommand(
      "hash", "Read a password on standard input and print its SCRAM-SHA-256 secret for the people file");
  hash->add_option("--iterations", hash_iterations, "PBKDF2 iterations (default 4096, as PostgreSQL)")
      ->check(CLI::Range(1, 100000000));

  CLI11_PARSE(app, argc, argv);

  if (*hash) return pgwarden::commands::run_people_hash(hash_iterations);

  if (*verify) return pgwarden::audit::run_verify(verify_request, std::cout, std::cerr);
  if (*search) return pgwarden::audit::run_search(search_request, std::cout, std::cerr);

  if (*serve) return pgwarden::commands::serve(config_path);
  if (*explain) return pgwarden::commands::run_explain(explain_request, std::cout, std::cerr);
  if (*check) return pgwarden::commands::run_check(config_path, std::cout, std::cerr);
  return 2;
}
