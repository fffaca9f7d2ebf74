#include "config/identity_loader.hpp"

#include <algorithm>
#include <map>

#include "config/rule_loader.hpp"

namespace pgwarden::config {
namespace {

// Exact names (people, roles): no patterns, nothing empty.
std::vector<std::pair<std::string, YAML::Node>> read_names(Reader& r, const YAML::Node& v, const std::string& what,
                                                          std::string_view kind) {
  std::vector<std::pair<std::string, YAML::Node>> out;
  for (auto& [name, node] : r.strings(v, what)) {
    if (name.empty() || name.find_first_of("*?") != std::string::npos) {
      r.error(node, what + ": '" + name + "' is not a " + std::string(kind) + " name (exact names, no patterns)");
      continue;
    }
    out.emplace_back(std::move(name), node);
  }
  return out;
}

void read_certificate(Reader& r, const YAML::Node& node, CertificateIdentity& c) {
  r.read_map(node, "identity.certificate", {
    {"person", [&](auto& v) {
       if (auto i = r.one_of(v, "identity.certificate.person", {"san_email", "san_uri", "cn"}))
         c.person = static_cast<CertificateField>(*i + 1);
     }},
    {"groups", [&](auto& v) {
       if (auto i = r.one_of(v, "identity.certificate.groups", {"ou", "none"}))
         c.groups = *i == 0 ? CertificateField::Ou : CertificateField::None;
     }},
  });
}

void read_token(Reader& r, const YAML::Node& node, TokenIdentity& t) {
  const std::string what = "identity.token";
  r.read_map(node, what, {
    {"jwks_file", [&](auto& v) { assign(t.jwks_file, r.file_path(v, what + ".jwks_file", false)); }, true},
    {"issuer", [&](auto& v) { assign(t.issuer, r.string(v, what + ".issuer")); }, true},
    {"audience", [&](auto& v) {
       for (auto& [aud, n] : r.strings(v, what + ".audience")) {
         if (aud.empty()) r.error(n, what + ".audience: empty audience");
         else t.audience.push_back(aud);
       }
     }, true},
    {"person_claim", [&](auto& v) {
       auto s = r.string(v, what + ".person_claim");
       if (s && s->empty()) r.error(v, what + ".person_claim: must name a claim (sub, email, ...)");
       else assign(t.person_claim, s);
     }},
    {"groups_claim", [&](auto& v) { assign(t.groups_claim, r.string(v, what + ".groups_claim")); }},
    {"clock_skew", [&](auto& v) {
       auto d = r.duration(v, what + ".clock_skew");
       if (d && *d > std::chrono::minutes(5)) r.error(v, what + ".clock_skew: at most 5m (a token's lifetime is its defence)");
       else assign(t.clock_skew, d);
     }},
    {"max_bytes", [&](auto& v) {
       auto n = r.size(v, what + ".max_bytes");
       if (n && (*n < 1024 || *n > (1u << 20))) r.error(v, what + ".max_bytes: must be from 1KiB to 1MiB");
       else assign(t.max_bytes, n);
     }},
  });
  if (node.IsMap() && node["issuer"] && t.issuer.empty()) r.error(node["issuer"], what + ".issuer: must not be empty");
}

void read_credential(Reader& r, const std::string& role, const YAML::Node& node, RoleCredential& c) {
  const std::string what = "credentials." + role;
  r.read_map(node, what, {
    {"password_file", [&](auto& v) { assign(c.password_file, r.file_path(v, what + ".password_file", false)); }},
    {"cert", [&](auto& v) { assign(c.cert, r.file_path(v, what + ".cert", false)); }},
    {"key", [&](auto& v) { assign(c.key, r.file_path(v, what + ".key", false)); }},
  });
  if (!node.IsMap()) return;
  if (c.cert.empty() != c.key.empty()) r.error(node, what + ": cert and key must be given together");
  else if (c.password_file.empty() == c.cert.empty())
    r.error(node, what + ": needs either password_file or cert and key (one way to log in as the role)");
}

struct GrantNodes {
  std::vector<std::pair<std::string, YAML::Node>> roles;
  YAML::Node default_role;
};

void read_grant_keys(Reader& r, const YAML::Node& node, const std::string& what, const policy::NetworkMap& networks,
                     policy::Grant& g, GrantNodes& x) {
  r.read_map(node, what, {
    {"name", [&](auto& v) { assign(g.name, r.string(v, what + ".name")); }},
    {"people", [&](auto& v) {
       for (auto& [name, n] : read_names(r, v, what + ".people", "person")) g.people.push_back(name);
     }},
    {"groups", [&](auto& v) { g.groups = read_person_groups(r, v, what + ".groups"); }},
    {"roles", [&](auto& v) {
       x.roles = read_names(r, v, what + ".roles", "role");
       for (auto& [name, n] : x.roles) g.roles.push_back(name);
     }, true},
    {"default_role", [&](auto& v) {
       x.default_role.reset(v);
       assign(g.default_role, r.string(v, what + ".default_role"));
     }},
    {"databases", [&](auto& v) { g.databases = read_globs(r, v, what + ".databases", policy::GlobCase::Identifier); }},
    {"networks", [&](auto& v) { g.networks = read_network_refs(r, networks, v, what + ".networks"); }},
  });
}

void read_grant(Reader& r, const YAML::Node& node, std::size_t index, const policy::NetworkMap& networks,
                const CredentialMap* credentials, std::map<std::string, int>& seen, std::vector<policy::Grant>& out) {
  policy::Grant g;
  GrantNodes x;
  const std::string what = "grants[" + std::to_string(index) + "]";
  const std::size_t errors_before = r.errors().size();
  read_grant_keys(r, node, what, networks, g, x);
  if (!node.IsMap()) return;
  if (g.people.empty() && g.groups.empty() && r.errors().size() == errors_before)
    r.error(node, what + ": needs people or groups (whom the grant is for)");
  if (!g.default_role.empty() && std::find(g.roles.begin(), g.roles.end(), g.default_role) == g.roles.end())
    r.error(x.default_role, what + ".default_role: '" + g.default_role + "' is not one of the grant's roles");
  if (g.default_role.empty() && g.roles.size() == 1) g.default_role = g.roles.front();
  for (const auto& [role, n] : x.roles) {
    if (credentials && !credentials->contains(role))
      r.error(n, what + ".roles: role '" + role + "' has no entry in credentials: pgwarden cannot log in as it");
  }
  if (g.name.empty()) {
    g.name = what;
  } else if (auto [it, fresh] = seen.emplace(g.name, node.Mark().line + 1); !fresh) {
    r.error(node["name"], what + ".name: duplicate grant name '" + g.name + "' (first defined at line " +
                              std::to_string(it->second) + ")");
  }
  out.push_back(std::move(g));
}

}  // namespace

void read_identity(Reader& r, const YAML::Node& node, IdentityConfig& out) {
  r.read_map(node, "identity", {
    {"people_file", [&](auto& v) { assign(out.people_file, r.file_path(v, "identity.people_file", false)); }},
    {"certificate", [&](auto& v) { read_certificate(r, v, out.certificate.emplace()); }},
    {"token", [&](auto& v) { read_token(r, v, out.token.emplace()); }},
  });
}

void read_credentials(Reader& r, const YAML::Node& node, CredentialMap& out) {
  if (!node.IsMap()) {
    if (!node.IsNull()) r.error(node, "credentials: expected a mapping of role: { password_file: ... } or { cert, key }");
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string role = it->first.Scalar();
    if (role.empty() || out.contains(role)) {
      r.error(it->first, "credentials: " + (role.empty() ? std::string("empty role name") : "duplicate role '" + role + "'"));
      continue;
    }
    read_credential(r, role, it->second, out[role]);
  }
}

void read_grants(Reader& r, const YAML::Node& node, const policy::NetworkMap& networks,
                 const CredentialMap* credentials, std::vector<policy::Grant>& out) {
  if (!node.IsSequence()) {
    if (!node.IsNull()) r.error(node, "grants: expected a list of grants");
    return;
  }
  std::map<std::string, int> seen;
  for (std::size_t i = 0; i < node.size(); ++i) read_grant(r, node[i], i, networks, credentials, seen, out);
}

}  // namespace pgwarden::config
