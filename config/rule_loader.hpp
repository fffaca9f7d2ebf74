#pragma once
/// Reading the policy sections (networks, groups, rules, default) of a
/// configuration. Internal to config/.

#include <yaml-cpp/yaml.h>

#include <vector>

#include "config/yaml_reader.hpp"
#include "policy/rules.hpp"

namespace pgwarden::config {

/// `networks:` name -> list of CIDRs (or `local` for Unix-socket clients).
void read_networks(Reader& r, const YAML::Node& node, policy::NetworkMap& out);
/// `groups:` name -> list of user names.
void read_groups(Reader& r, const YAML::Node& node, policy::GroupMap& out);
/// `rules:` a list of rules; group and network names must be defined.
void read_rules(Reader& r, const YAML::Node& node, const policy::GroupMap& groups,
                const policy::NetworkMap& networks, std::vector<policy::Rule>& out);

}  // namespace pgwarden::config
