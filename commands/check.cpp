#include "commands/check.hpp"

#include <filesystem>

#include "auth/jwks.hpp"
#include "auth/people.hpp"
#include "config/config.hpp"
#include "config/identity_files.hpp"

namespace pgwarden::commands {
namespace {

void print(std::ostream& to, const config::Diagnostic& d, std::string_view severity) {
  config::Diagnostic labelled = d;
  labelled.message = std::string(severity) + ": " + d.message;
  to << labelled.to_string() << '\n';
}

// The contents of the people file and the JWKS file, read by the loaders
// serve uses: each problem at the file's own line:col. Files that do not
// exist or cannot be read are reported by config::check_identity_files.
void check_identity_file_contents(const config::Config& c, std::vector<config::Diagnostic>& errors) {
  const auto readable = [](const std::string& path) {
    std::error_code ec;
    return !path.empty() && std::filesystem::is_regular_file(path, ec);
  };
  if (readable(c.identity.people_file)) {
    auth::PeopleLoad people = auth::load_people_file(c.identity.people_file);
    errors.insert(errors.end(), people.errors.begin(), people.errors.end());
  }
  if (c.identity.token && readable(c.identity.token->jwks_file)) {
    auth::JwksLoad jwks = auth::load_jwks_file(c.identity.token->jwks_file);
    errors.insert(errors.end(), jwks.errors.begin(), jwks.errors.end());
  }
}

}  // namespace

int run_check(const std::string& path, std::ostream& out, std::ostream& err) {
  const config::LoadResult result = config::load_config_file(path);
  std::vector<config::Diagnostic> errors = result.errors;
  std::vector<config::Diagnostic> warnings = result.warnings;
  if (result.ok()) {
    config::check_identity_files(*result.config, errors, warnings);
    check_identity_file_contents(*result.config, errors);
  }
  for (const auto& w : warnings) print(err, w, "warning");
  if (!errors.empty()) {
    for (const auto& e : errors) print(err, e, "error");
    err << path << ": " << errors.size() << (errors.size() == 1 ? " error" : " errors") << '\n';
    return 1;
  }
  const auto& c = *result.config;
  out << "ok: " << c.policy.rules().size() << " rules, " << c.policy.groups().size() << " groups, "
      << c.policy.networks().size() << " networks";
  if (!c.grants.empty() || !c.credentials.empty())
    out << ", " << c.grants.grants().size() << " grants, " << c.credentials.size() << " credentials";
  out << '\n';
  return 0;
}

}  // namespace pgwarden::commands
