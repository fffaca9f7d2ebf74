#include "policy/grants.hpp"

#include <algorithm>

namespace pgwarden::policy {
namespace {

bool contains(const std::vector<std::string>& list, std::string_view s) noexcept {
  return std::find(list.begin(), list.end(), s) != list.end();
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string from(const std::optional<IpAddress>& client) {
  return client ? "from " + client->to_string() : std::string("from the local socket");
}

}  // namespace

GrantSet GrantSet::build(std::vector<Grant> grants, const GroupMap& groups, const NetworkMap& networks) {
  GrantSet set;
  set.grants_ = std::move(grants);
  for (const Grant& g : set.grants_) {
    Resolved r;
    for (const auto& name : g.groups) {
      if (auto it = groups.find(name); it != groups.end()) r.members.insert(r.members.end(), it->second.begin(), it->second.end());
    }
    std::sort(r.members.begin(), r.members.end());
    r.members.erase(std::unique(r.members.begin(), r.members.end()), r.members.end());
    for (const auto& n : g.networks) {
      if (auto it = networks.find(n); it != networks.end()) {
        r.network.cidrs.insert(r.network.cidrs.end(), it->second.cidrs.begin(), it->second.cidrs.end());
        r.network.local = r.network.local || it->second.local;
      } else if (n == "local") {
        r.network.local = true;
      } else if (auto cidr = Cidr::parse(n)) {
        r.network.cidrs.push_back(*cidr);
      }
    }
    set.resolved_.push_back(std::move(r));
  }
  return set;
}

std::vector<std::string> GrantSet::roles() const {
  std::vector<std::string> out;
  for (const Grant& g : grants_) out.insert(out.end(), g.roles.begin(), g.roles.end());
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool GrantSet::covers(std::size_t i, const GrantRequest& r) const noexcept {
  const Grant& g = grants_[i];
  const Resolved& x = resolved_[i];
  bool person = contains(g.people, r.person) || std::binary_search(x.members.begin(), x.members.end(), r.person);
  for (const auto& group : r.person_groups) person = person || contains(g.groups, group);
  if (!person) return false;
  if (!g.databases.empty() &&
      std::none_of(g.databases.begin(), g.databases.end(), [&](const Glob& d) { return d.matches(r.database); }))
    return false;
  return g.networks.empty() || x.network.contains(r.client);
}

GrantDecision GrantSet::resolve(const GrantRequest& r) const {
  GrantDecision d;
  if (!names_person(r.auth_method)) {
    if (!r.role_setting.empty() && r.role_setting != r.user) {
      d.refusal = "pgwarden.role " + quoted(r.role_setting) + " applies only to people (certificate, token or " +
                  "people file); " + quoted(r.user) + " logged in as a database role";
    } else {
      d.role = std::string(r.user);
    }
    return d;
  }
  if (r.person.empty()) {
    d.refusal = "no person established for user " + quoted(r.user);
    return d;
  }
  std::string_view asked = r.user == r.person ? r.role_setting : r.user;
  if (r.user != r.person && !r.role_setting.empty() && r.role_setting != r.user) {
    d.refusal = "person " + quoted(r.person) + ": user " + quoted(r.user) + " and pgwarden.role " +
                quoted(r.role_setting) + " name different roles";
    return d;
  }
  for (std::size_t i = 0; i < grants_.size(); ++i) {
    const Grant& g = grants_[i];
    if (!asked.empty() ? !contains(g.roles, asked) : g.default_role.empty()) continue;
    if (!covers(i, r)) continue;
    d.grant = &g;
    d.index = static_cast<std::uint32_t>(i);
    d.role = asked.empty() ? g.default_role : std::string(asked);
    return d;
  }
  d.refusal = "person " + quoted(r.person) + " holds no grant " +
              (asked.empty() ? std::string() : "for role " + quoted(asked) + " ") + "on database " +
              quoted(r.database) + " " + from(r.client);
  return d;
}

}  // namespace pgwarden::policy
