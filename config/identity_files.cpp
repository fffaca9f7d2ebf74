#include "config/identity_files.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "config/secret_file.hpp"

namespace pgwarden::config {
namespace {

// Why `path` cannot be read as a regular file, or "".
std::string readable_problem(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + ": " + std::strerror(errno);
  if (!S_ISREG(st.st_mode)) return path + ": not a regular file";
  if (::access(path.c_str(), R_OK) != 0) return path + ": cannot read: " + std::strerror(errno);
  return {};
}

}  // namespace

void check_identity_files(const Config& c, std::vector<Diagnostic>& errors, std::vector<Diagnostic>& warnings) {
  auto report = [&](std::vector<Diagnostic>& to, const std::string& key, const std::string& problem) {
    if (!problem.empty()) to.push_back({c.source, 0, 0, key + ": " + problem});
  };
  for (const auto& [role, credential] : c.credentials) {
    const std::string key = "credentials." + role;
    if (!credential.password_file.empty())
      report(errors, key + ".password_file", secret_file_problem(credential.password_file));
    if (!credential.cert.empty()) report(errors, key + ".cert", readable_problem(credential.cert));
    if (!credential.key.empty()) report(errors, key + ".key", secret_file_problem(credential.key));
  }
  if (!c.identity.people_file.empty()) {
    const std::string problem = readable_problem(c.identity.people_file);
    report(errors, "identity.people_file", problem);
    struct stat st {};
    if (problem.empty() && ::stat(c.identity.people_file.c_str(), &st) == 0 && (st.st_mode & S_IRWXO) != 0)
      report(warnings, "identity.people_file",
             c.identity.people_file + ": other users may read it, and its SCRAM verifiers allow offline guessing "
                                      "of weak passwords (chmod o-rwx)");
  }
  if (c.identity.token) report(errors, "identity.token.jwks_file", readable_problem(c.identity.token->jwks_file));
}

}  // namespace pgwarden::config
