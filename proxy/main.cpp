// pgwarden: a PostgreSQL access audit proxy. Command-line entry point.

#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "config/check.hpp"
#include "proxy/app.hpp"
#include "proxy/build_info.hpp"

int main(int argc, char** argv) {
  CLI::App app{"pgwarden: a PostgreSQL access audit proxy"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("pgwarden ") + std::string(pgwarden::proxy::version()));

  std::string config_path;
  auto* serve = app.add_subcommand("serve", "Run the proxy");
  serve->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();

  auto* check = app.add_subcommand("check", "Validate a configuration file and print a summary");
  check->add_option("-c,--config", config_path, "Configuration file (YAML)")->required();

  CLI11_PARSE(app, argc, argv);

  if (*serve) return pgwarden::proxy::serve(config_path);
  if (*check) return pgwarden::config::run_check(config_path, std::cout, std::cerr);
  return 2;
}
