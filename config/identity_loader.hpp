#pragma once
/// Reading the people sections of a configuration: `identity:` (how people
/// prove who they are), `credentials:` (the secrets pgwarden logs in to
/// PostgreSQL with, as paths only) and `grants:` (which person may use which
/// role). Internal to config/.

#include <yaml-cpp/yaml.h>

#include <vector>

#include "config/config.hpp"
#include "config/yaml_reader.hpp"
#include "policy/grants.hpp"
#include "policy/rules.hpp"

namespace pgwarden::config {

/// `identity:` people_file, certificate, token.
void read_identity(Reader& r, const YAML::Node& node, IdentityConfig& out);
/// `credentials:` role -> { password_file } or { cert, key }.
void read_credentials(Reader& r, const YAML::Node& node, CredentialMap& out);
/// `grants:` a list. Networks must be defined; with `credentials` given, every
/// role a grant names must have an entry there (reported where the role is
/// written).
void read_grants(Reader& r, const YAML::Node& node, const policy::NetworkMap& networks,
                 const CredentialMap* credentials, std::vector<policy::Grant>& out);

}  // namespace pgwarden::config
