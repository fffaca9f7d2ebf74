#include "auth/people.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "config/yaml_reader.hpp"

namespace pgwarden::auth {

const Person* People::find(std::string_view name) const {
  auto it = people_.find(name);
  return it == people_.end() ? nullptr : &it->second;
}

namespace {

constexpr std::string_view accepted_format =
    "the people file accepts only SCRAM-SHA-256 secrets as PostgreSQL stores them, "
    "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey> (make one with `pgwarden people hash`)";

/// What a secret that is not SCRAM-SHA-256 looks like, for the error.
std::string recognised_format(std::string_view secret) {
  if (is_md5_secret(secret)) return "an md5 hash";
  if (secret.starts_with("$2a$") || secret.starts_with("$2b$") || secret.starts_with("$2y$")) return "a bcrypt hash";
  if (secret.starts_with("$argon2")) return "an Argon2 hash";
  if (secret.starts_with("$1$") || secret.starts_with("$5$") || secret.starts_with("$6$") || secret.starts_with("$y$"))
    return "a crypt(3) hash";
  if (secret.starts_with("{SSHA}") || secret.starts_with("{SHA}")) return "an LDAP password hash";
  if (secret.starts_with("SCRAM-SHA-1$") || secret.starts_with("SCRAM-SHA-512$")) return "a SCRAM hash of another digest";
  return "not a hash pgwarden knows (a plaintext password?)";
}

bool clean_name(std::string_view s) {
  return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

}  // namespace

/// Reads the people file, collecting every error with its position.
class PeopleParser {
 public:
  explicit PeopleParser(std::string_view name) : reader_(std::string(name), std::filesystem::path()) {}

  PeopleLoad parse(std::string_view text) {
    try {
      YAML::Node root = YAML::Load(std::string(text));
      if (!root.IsMap())
        reader_.error(root.IsNull() ? YAML::Mark::null_mark() : root.Mark(), "the people file must be a mapping with a 'people' list");
      else
        reader_.read_map(root, "the people file", {{"people", [&](const YAML::Node& n) { read_people(n); }, true}});
    } catch (const YAML::Exception& e) {
      reader_.error(e.mark, e.msg);
    }
    PeopleLoad out;
    out.errors = std::move(reader_.errors());
    std::stable_sort(out.errors.begin(), out.errors.end(), [](const auto& a, const auto& b) {
      return std::pair(a.line, a.column) < std::pair(b.line, b.column);
    });
    if (out.errors.empty()) out.people = std::move(people_);
    return out;
  }

 private:
  void read_people(const YAML::Node& list) {
    if (list.IsNull()) return;
    if (!list.IsSequence()) return reader_.error(list, "people: expected a list of people");
    for (const YAML::Node& entry : list) read_person(entry);
  }

  void read_person(const YAML::Node& entry) {
    Person person;
    std::optional<YAML::Node> name_node, scram_node;
    bool complete = true;
    reader_.read_map(entry, "a person",
                     {{"name", [&](const YAML::Node& n) { name_node = n; }, true},
                      {"scram", [&](const YAML::Node& n) { scram_node = n; }, true},
                      {"groups", [&](const YAML::Node& n) { complete &= read_groups(n, person.groups); }}});
    if (!name_node || !scram_node) return;
    auto name = reader_.string(*name_node, "name");
    if (!name) return;
    if (!clean_name(*name))
      return reader_.error(*name_node, "name: a person's name must be non-empty, without control characters");
    person.name = *name;
    complete &= read_secret(*scram_node, person);
    const int line = name_node->Mark().line + 1;
    if (auto [it, fresh] = first_line_.emplace(person.name, line); !fresh)
      return reader_.error(*name_node, "person \"" + person.name + "\" is listed twice (first on line " +
                                          std::to_string(it->second) + ")");
    if (complete) people_->people_.emplace(person.name, std::move(person));
  }

  bool read_secret(const YAML::Node& node, Person& person) {
    auto secret = reader_.string(node, "scram");
    if (!secret) return false;
    if (!secret->starts_with("SCRAM-SHA-256$")) {
      reader_.error(node, "scram of person \"" + person.name + "\": unknown hash format (" +
                              recognised_format(*secret) + "); " + std::string(accepted_format));
      return false;
    }
    auto verifier = ScramVerifier::parse(*secret);
    if (!verifier) {
      reader_.error(node, "scram of person \"" + person.name + "\": invalid SCRAM secret: " + verifier.error().detail);
      return false;
    }
    person.scram = std::move(*verifier);
    return true;
  }

  bool read_groups(const YAML::Node& node, std::vector<std::string>& groups) {
    const std::size_t before = reader_.errors().size();
    for (auto& [group, at] : reader_.strings(node, "groups")) {
      if (!clean_name(group))
        reader_.error(at, "groups: a group name must be non-empty, without control characters");
      else if (std::find(groups.begin(), groups.end(), group) != groups.end())
        reader_.error(at, "groups: \"" + group + "\" is listed twice");
      else
        groups.push_back(group);
    }
    return reader_.errors().size() == before;
  }

  config::Reader reader_;
  std::shared_ptr<People> people_ = std::make_shared<People>();
  std::map<std::string, int, std::less<>> first_line_;
};

PeopleLoad parse_people(std::string_view text, std::string_view name) { return PeopleParser(name).parse(text); }

PeopleLoad load_people_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    PeopleLoad out;
    out.errors.push_back(config::Diagnostic{path, 0, 0, std::string("cannot read the people file: ") + std::strerror(errno)});
    return out;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return parse_people(text.str(), path);
}

}  // namespace pgwarden::auth
