#pragma once
/// pgwarden's own people file: the people who log in to pgwarden as
/// themselves with SCRAM-SHA-256(-PLUS), their secrets and their groups.
/// They are people, not database roles: which role a person may use is the
/// business of grants.
///
///     people:
///       - name: alice
///         scram: "SCRAM-SHA-256$4096:<salt>$<StoredKey>:<ServerKey>"
///         groups: [dba, oncall]
///
/// `scram` is PostgreSQL's stored form (what pg_authid.rolpassword holds,
/// and what `pgwarden people hash` prints); no other hash format is
/// accepted, and the error says so and names the format it saw (md5,
/// bcrypt, ...). `groups` is optional. Unknown keys, missing fields and a
/// name listed twice are errors; every error has file:line:col.

#include <cstddef>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth/scram.hpp"
#include "config/config.hpp"

namespace pgwarden::auth {

/// One person of the file.
struct Person {
  std::string name;
  ScramVerifier scram;
  std::vector<std::string> groups;  ///< in file order, no duplicates
};

/// The parsed people file. Immutable once loaded; a reload builds a new one.
class People {
 public:
  /// The person with this exact name, or null.
  const Person* find(std::string_view name) const;
  std::size_t size() const noexcept { return people_.size(); }

 private:
  friend class PeopleParser;
  std::map<std::string, Person, std::less<>> people_;
};

/// The loaded file, or every error found.
struct PeopleLoad {
  std::shared_ptr<const People> people;  ///< null when errors is not empty
  std::vector<config::Diagnostic> errors;
  bool ok() const noexcept { return people != nullptr; }
};

/// Parses people-file YAML `text`; `name` is the file name used in diagnostics.
PeopleLoad parse_people(std::string_view text, std::string_view name);
/// Reads and parses the file at `path`.
PeopleLoad load_people_file(const std::string& path);

}  // namespace pgwarden::auth
