#include "commands/check.hpp"

#include "config/config.hpp"

namespace pgwarden::commands {
namespace {

void print(std::ostream& to, const config::Diagnostic& d, std::string_view severity) {
  config::Diagnostic labelled = d;
  labelled.message = std::string(severity) + ": " + d.message;
  to << labelled.to_string() << '\n';
}

}  // namespace

int run_check(const std::string& path, std::ostream& out, std::ostream& err) {
  const config::LoadResult result = config::load_config_file(path);
  for (const auto& w : result.warnings) print(err, w, "warning");
  if (!result.ok()) {
    for (const auto& e : result.errors) print(err, e, "error");
    err << path << ": " << result.errors.size() << (result.errors.size() == 1 ? " error" : " errors") << '\n';
    return 1;
  }
  const auto& policy = result.config->policy;
  out << "ok: " << policy.rules().size() << " rules, " << policy.groups().size() << " groups, "
      << policy.networks().size() << " networks\n";
  return 0;
}

}  // namespace pgwarden::commands
