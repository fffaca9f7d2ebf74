#pragma once
/// Reading the policy sections (networks, groups, rules, default) of a
/// configuration. Internal to config/.

#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "config/yaml_reader.hpp"
#include "policy/rules.hpp"

namespace pgwarden::config {

/// Shell-style patterns, each reported where written when it does not compile.
std::vector<policy::Glob> read_globs(Reader& r, const YAML::Node& v, const std::string& what, policy::GlobCase mode);
/// Names of `networks:`, `local`, or CIDRs written in place; undefined names
/// are reported with the closest defined one.
std::vector<std::string> read_network_refs(Reader& r, const policy::NetworkMap& networks, const YAML::Node& v,
                                           const std::string& what);
/// Group names a person may be in: pgwarden's own groups, or those a
/// credential states (a certificate's OU, a token's groups claim) that no
/// configuration can list; so any plain name is accepted, but no pattern.
std::vector<std::string> read_person_groups(Reader& r, const YAML::Node& v, const std::string& what);

/// `networks:` name -> list of CIDRs (or `local` for Unix-socket clients).
void read_networks(Reader& r, const YAML::Node& node, policy::NetworkMap& out);
/// `groups:` name -> list of user names.
void read_groups(Reader& r, const YAML::Node& node, policy::GroupMap& out);
/// `rules:` a list of rules; group and network names must be defined.
void read_rules(Reader& r, const YAML::Node& node, const policy::GroupMap& groups,
                const policy::NetworkMap& networks, std::vector<policy::Rule>& out);

}  // namespace pgwarden::config
