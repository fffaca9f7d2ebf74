// pgwarden: a PostgreSQL access audit proxy. Command-line entry point.

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "config/check.hpp"
#include "proxy/app.hpp"
#include "proxy/build_info.hpp"
#include "proxy/explain_command.hpp"

int main(int argc, char** argv) {
  CLI::App app{"pgwarden: a PostgreSQL access audit proxy"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("pgwarden ") + std::string(pgwarden::proxy::version()));

  std::string config_path;
  auto* serve = app.add_subcommand("serve", "Run the proxy");
  serve->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();

  auto* check = app.add_subcommand("check", "Validate a configuration file and print a summary");
  check->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();

  pgwarden::proxy::ExplainRequest explain_request;
  auto* explain = app.add_subcommand("explain", "Show what the policy decides for one SQL text, as JSON");
  explain->add_option("-c,--config", explain_request.config_path, "Configuration file (YAML)")->required();
  explain->add_option("-u,--user", explain_request.user, "User name")->required();
  explain->add_option("-d,--database", explain_request.database, "Database (default: the user name)");
  explain->add_option("--client", explain_request.client, "Client IP address (default: a Unix-socket client)");
  explain->add_option("-a,--application", explain_request.application, "application_name");
  explain->add_option("--protocol", explain_request.protocol,
                      "simple, extended, function_call, copy or replication (default simple)");
  explain->add_option("sql", explain_request.sql, "The SQL text")->required();

  CLI11_PARSE(app, argc, argv);

  if (*serve) return pgwarden::proxy::serve(config_path);
  if (*explain) return pgwarden::proxy::run_explain(explain_request, std::cout, std::cerr);
  if (*check) return pgwarden::config::run_check(config_path, std::cout, std::cerr);
  return 2;
}
