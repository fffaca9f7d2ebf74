#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include <sys/stat.h>

#include "config/alerts_loader.hpp"
#include "config/config.hpp"
#include "config/secret_file.hpp"
#include "config/identity_loader.hpp"
#include "config/rule_loader.hpp"
#include "config/yaml_reader.hpp"

namespace pgwarden::config {
namespace {

// A top-level section and whether the file has it (a default-constructed
// YAML::Node is a defined null, so it cannot say).
struct Slot {
  YAML::Node node;
  bool present = false;
  explicit operator bool() const { return present; }
  operator const YAML::Node&() const { return node; }
};

// The top-level sections, kept for the positions of cross-section checks.
struct Sections {
  YAML::Node root;
  Slot listen, upstream, tls, auth, limits, admin, log, environment, networks, groups, rules,
      default_action, audit, catalog_lookup, alerts, shutdown_timeout, workers, identity, credentials, grants;
};

void read_listen(Reader& r, const YAML::Node& node, std::vector<Endpoint>& out) {
  const std::size_t errors_before = r.errors().size();
  for (const auto& item : r.list(node, "listen")) {
    auto e = r.endpoint(item, "listen");
    if (!e) continue;
    if (std::find(out.begin(), out.end(), *e) != out.end()) {
      r.error(item, "listen: " + e->to_string() + " is listed twice");
      continue;
    }
    out.push_back(*e);
  }
  if (out.empty() && r.errors().size() == errors_before) r.error(node, "listen: at least one host:port is required");
}

void read_upstream(Reader& r, const YAML::Node& node, UpstreamConfig& u) {
  r.read_map(node, "upstream", {
    {"host", [&](auto& v) { assign(u.host, r.string(v, "upstream.host")); }},
    {"port", [&](auto& v) {
       auto p = r.unsigned_int(v, "upstream.port", 65535);
       if (p == 0u) r.error(v, "upstream.port: must be from 1 to 65535");
       else assign(u.port, p);
     }},
    {"unix_socket", [&](auto& v) { assign(u.unix_socket, r.file_path(v, "upstream.unix_socket", false)); }},
    {"tls", [&](auto& v) {
       r.assign_enum(v, "upstream.tls", {"disable", "prefer", "require", "verify-ca", "verify-full"}, u.tls);
     }},
    {"ca", [&](auto& v) { assign(u.ca, r.file_path(v, "upstream.ca", true)); }},
    {"cert", [&](auto& v) { assign(u.cert, r.file_path(v, "upstream.cert", true)); }},
    {"key", [&](auto& v) { assign(u.key, r.file_path(v, "upstream.key", true)); }},
    {"server_name", [&](auto& v) { assign(u.server_name, r.string(v, "upstream.server_name")); }},
    {"connect_timeout", [&](auto& v) { assign(u.connect_timeout, r.duration(v, "upstream.connect_timeout")); }},
    {"pool_size", [&](auto& v) { assign(u.pool_size, r.unsigned_int(v, "upstream.pool_size", 100'000)); }},
    {"pool_idle_timeout", [&](auto& v) { assign(u.pool_idle_timeout, r.duration(v, "upstream.pool_idle_timeout")); }},
  });
}

void read_tls(Reader& r, const YAML::Node& node, TlsConfig& t) {
  r.read_map(node, "tls", {
    {"cert", [&](auto& v) { assign(t.cert, r.file_path(v, "tls.cert", true)); }},
    {"key", [&](auto& v) { assign(t.key, r.file_path(v, "tls.key", true)); }},
    {"ca", [&](auto& v) { assign(t.ca, r.file_path(v, "tls.ca", true)); }},
    {"required", [&](auto& v) { assign(t.required, r.boolean(v, "tls.required")); }},
    {"min_version", [&](auto& v) {
       auto i = r.one_of(v, "tls.min_version", {"1.2", "1.3", "tlsv1.2", "tlsv1.3"});
       if (i) t.min_version = *i % 2 == 0 ? TlsVersion::V1_2 : TlsVersion::V1_3;
     }},
    {"ciphers", [&](auto& v) { assign(t.ciphers, r.string(v, "tls.ciphers")); }},
    {"client_cert", [&](auto& v) { r.assign_enum(v, "tls.client_cert", {"none", "optional", "require"}, t.client_cert); }},
  });
}

void read_auth(Reader& r, const YAML::Node& node, AuthConfig& a) {
  const std::vector<std::string_view> modes = {"passthrough", "scram"};
  if (node.IsScalar()) return r.assign_enum(node, "auth", modes, a.mode);
  r.read_map(node, "auth", {
    {"mode", [&](auto& v) { r.assign_enum(v, "auth.mode", modes, a.mode); }},
    {"auth_file", [&](auto& v) { assign(a.auth_file, r.file_path(v, "auth.auth_file", true)); }},
    {"auth_query", [&](auto& v) { assign(a.auth_query, r.string(v, "auth.auth_query")); }},
    {"auth_user", [&](auto& v) { assign(a.auth_user, r.string(v, "auth.auth_user")); }},
    {"cache_ttl", [&](auto& v) { assign(a.cache_ttl, r.duration(v, "auth.cache_ttl")); }},
  });
}

void read_limits(Reader& r, const YAML::Node& node, Limits& l) {
  r.read_map(node, "limits", {
    {"max_client_connections", [&](auto& v) {
       auto n = r.unsigned_int(v, "limits.max_client_connections", 1'000'000);
       if (n == 0u) r.error(v, "limits.max_client_connections: must be at least 1");
       else assign(l.max_client_connections, n);
     }},
    {"startup_timeout", [&](auto& v) { assign(l.startup_timeout, r.duration(v, "limits.startup_timeout")); }},
    {"idle_timeout", [&](auto& v) { assign(l.idle_timeout, r.duration(v, "limits.idle_timeout")); }},
    {"max_message_bytes", [&](auto& v) {
       auto n = r.size(v, "limits.max_message_bytes");
       if (n && (*n < 1024 || *n > (1ull << 30))) r.error(v, "limits.max_message_bytes: must be from 1KiB to 1GiB");
       else assign(l.max_message_bytes, n);
     }},
  });
}

void read_log(Reader& r, const YAML::Node& node, LogConfig& l) {
  r.read_map(node, "log", {
    {"level", [&](auto& v) {
       r.assign_enum(v, "log.level", {"trace", "debug", "info", "warn", "error", "critical", "off"}, l.level);
     }},
    {"format", [&](auto& v) { r.assign_enum(v, "log.format", {"text", "json"}, l.format); }},
    {"statements", [&](auto& v) { assign(l.statements, r.boolean(v, "log.statements")); }},
  });
}

void read_audit(Reader& r, const YAML::Node& node, AuditConfig& a) {
  r.read_map(node, "audit", {
    {"file", [&](auto& v) { assign(a.file, r.file_path(v, "audit.file", false)); }},
    {"durability", [&](auto& v) { r.assign_enum(v, "audit.durability", {"buffered", "synced"}, a.durability); }},
    {"on_failure", [&](auto& v) { r.assign_enum(v, "audit.on_failure", {"block", "continue"}, a.on_failure); }},
    {"parameters", [&](auto& v) { r.assign_enum(v, "audit.parameters", {"none", "redacted", "full"}, a.parameters); }},
    {"redact_literals", [&](auto& v) { assign(a.redact_literals, r.boolean(v, "audit.redact_literals")); }},
    {"hmac_key_file", [&](auto& v) { assign(a.hmac_key_file, r.file_path(v, "audit.hmac_key_file", true)); }},
    {"rotate_bytes", [&](auto& v) { assign(a.rotate_bytes, r.size(v, "audit.rotate_bytes")); }},
    {"rotate_interval", [&](auto& v) { assign(a.rotate_interval, r.duration(v, "audit.rotate_interval")); }},
    {"retention", [&](auto& v) { assign(a.retention, r.unsigned_int(v, "audit.retention", 1'000'000)); }},
    {"preallocate", [&](auto& v) { assign(a.preallocate, r.size(v, "audit.preallocate")); }},
    {"queue_records", [&](auto& v) {
       auto n = r.unsigned_int(v, "audit.queue_records", 100'000'000);
       if (n == 0u) r.error(v, "audit.queue_records: must be at least 1");
       else assign(a.queue_records, n);
     }},
  });
}

void read_catalog_lookup(Reader& r, const YAML::Node& node, CatalogLookupConfig& c) {
  r.read_map(node, "catalog_lookup", {
    {"user", [&](auto& v) {
       assign(c.user, r.string(v, "catalog_lookup.user"));
       if (c.user.empty()) r.error(v, "catalog_lookup.user: must not be empty");
     }, true},
    {"password_file", [&](auto& v) {
       assign(c.password_file, r.file_path(v, "catalog_lookup.password_file", true));
       // The lookup role's password must be pgwarden's alone.
       if (!c.password_file.empty()) {
         if (auto problem = secret_file_problem(c.password_file); !problem.empty())
           r.error(v, "catalog_lookup.password_file: " + problem);
       }
     }},
    {"refresh", [&](auto& v) { assign(c.refresh, r.duration(v, "catalog_lookup.refresh")); }},
    {"first_load_wait", [&](auto& v) {
       assign(c.first_load_wait, r.duration(v, "catalog_lookup.first_load_wait"));
       if (c.first_load_wait > std::chrono::seconds(30))
         r.error(v, "catalog_lookup.first_load_wait: must be at most 30s (a session's first statement waits this long)");
     }},
  });
}

Sections read_sections(Reader& r, const YAML::Node& root) {
  Sections s;
  s.root = root;
  auto keep = [](Slot& slot) {
    return [&slot](const YAML::Node& v) {
      slot.node.reset(v);
      slot.present = true;
    };
  };
  r.read_map(root, "the configuration", {
    {"listen", keep(s.listen), true}, {"upstream", keep(s.upstream), true}, {"tls", keep(s.tls)},
    {"auth", keep(s.auth)}, {"limits", keep(s.limits)}, {"admin", keep(s.admin)}, {"log", keep(s.log)},
    {"environment", keep(s.environment)}, {"networks", keep(s.networks)}, {"groups", keep(s.groups)},
    {"rules", keep(s.rules)}, {"default", keep(s.default_action)}, {"audit", keep(s.audit)},
    {"catalog_lookup", keep(s.catalog_lookup)},
    {"alerts", keep(s.alerts)},
    {"shutdown_timeout", keep(s.shutdown_timeout)}, {"workers", keep(s.workers)},
    {"identity", keep(s.identity)}, {"credentials", keep(s.credentials)}, {"grants", keep(s.grants)},
  });
  return s;
}

// Reads each present section into `c`; policy sections resolve into c.policy.
void read_config(Reader& r, const Sections& s, Config& c) {
  if (s.listen) read_listen(r, s.listen, c.listen);
  if (s.upstream) read_upstream(r, s.upstream, c.upstream);
  if (s.tls) read_tls(r, s.tls, c.tls);
  if (s.auth) read_auth(r, s.auth, c.auth);
  if (s.limits) read_limits(r, s.limits, c.limits);
  if (s.admin) {
    r.read_map(s.admin, "admin", {{"listen", [&](auto& v) { c.admin.listen = r.endpoint(v, "admin.listen"); }}});
  }
  if (s.log) read_log(r, s.log, c.log);
  if (s.environment) assign(c.environment, r.string(s.environment, "environment"));
  if (s.audit) read_audit(r, s.audit, c.audit);
  if (s.catalog_lookup) read_catalog_lookup(r, s.catalog_lookup, c.catalog_lookup);
  if (s.alerts) read_alerts(r, s.alerts, c.alerts);
  if (s.shutdown_timeout) assign(c.shutdown_timeout, r.duration(s.shutdown_timeout, "shutdown_timeout"));
  if (s.workers) assign(c.workers, r.unsigned_int(s.workers, "workers", 256));
  policy::NetworkMap networks;
  policy::GroupMap groups;
  std::vector<policy::Rule> rules;
  auto default_action = policy::Action::Allow;
  if (s.networks) read_networks(r, s.networks, networks);
  if (s.groups) read_groups(r, s.groups, groups);
  if (s.rules) read_rules(r, s.rules, groups, networks, rules);
  if (s.default_action) r.assign_enum(s.default_action, "default", {"allow", "deny"}, default_action);
  if (s.identity) read_identity(r, s.identity, c.identity);
  if (s.credentials) read_credentials(r, s.credentials, c.credentials);
  std::vector<policy::Grant> grants;
  // Only people log in through injected credentials: without identity the
  // grants are inert (check_identity warns), so their roles need none.
  if (s.grants) read_grants(r, s.grants, networks, c.identity.enabled() ? &c.credentials : nullptr, grants);
  c.grants = policy::GrantSet::build(std::move(grants), groups, networks);
  c.policy = policy::RuleSet::build(std::move(rules), std::move(groups), std::move(networks), default_action);
}

YAML::Mark mark_of(const Slot& section, const YAML::Node& fallback) {
  return section ? section.node.Mark() : fallback.Mark();
}

void check_tls_and_auth(Reader& r, const Sections& s, const Config& c) {
  const auto tls_at = mark_of(s.tls, s.root);
  if (c.tls.cert.empty() != c.tls.key.empty()) r.error(tls_at, "tls: cert and key must be given together");
  if (c.tls.required && c.tls.cert.empty()) r.error(tls_at, "tls.required: needs tls.cert and tls.key");
  if (c.tls.client_cert != ClientCertMode::None && c.tls.ca.empty())
    r.error(tls_at, "tls.client_cert: verifying client certificates needs tls.ca");
  const auto up_at = mark_of(s.upstream, s.root);
  if (c.upstream.cert.empty() != c.upstream.key.empty()) r.error(up_at, "upstream: cert and key must be given together");
  if (!c.upstream.unix_socket.empty() && c.upstream.tls != UpstreamTlsMode::Disable &&
      c.upstream.tls != UpstreamTlsMode::Prefer)
    r.error(up_at, "upstream.tls: " + std::string(to_string(c.upstream.tls)) +
                       " cannot be used with upstream.unix_socket: PostgreSQL offers no TLS on its Unix socket");
  if ((c.upstream.tls == UpstreamTlsMode::VerifyCa || c.upstream.tls == UpstreamTlsMode::VerifyFull) && c.upstream.ca.empty())
    r.warning(up_at, "upstream.tls: " + std::string(to_string(c.upstream.tls)) +
                         " without upstream.ca verifies against the system's default trust store");
  const auto auth_at = mark_of(s.auth, s.root);
  if (c.auth.mode == AuthMode::Scram && c.auth.auth_file.empty() && c.auth.auth_query.empty())
    r.error(auth_at, "auth: scram needs auth_file or auth_query to find users' SCRAM secrets");
  if (!c.auth.auth_query.empty() && c.auth.auth_user.empty()) r.error(auth_at, "auth.auth_query: needs auth.auth_user");
  if (c.auth.mode == AuthMode::Passthrough && c.tls.enabled() && c.upstream.tls != UpstreamTlsMode::Disable)
    r.warning(auth_at,
              "auth: passthrough with TLS on both hops cannot relay SCRAM-SHA-256: libpq answers the server's "
              "channel-binding offer with flag 'y' and PostgreSQL refuses it as a downgrade; use auth: scram "
              "(with auth_file or auth_query), or upstream.tls: disable");
}

// How people log in, checked against TLS, grants and credentials.
void check_identity(Reader& r, const Sections& s, const Config& c) {
  const auto id_at = mark_of(s.identity, s.root);
  const YAML::Node id = s.identity ? s.identity.node : YAML::Node();
  if (c.identity.certificate && c.tls.client_cert == ClientCertMode::None)
    r.error(id.IsMap() ? id["certificate"].Mark() : id_at,
            "identity.certificate: needs tls.client_cert (optional or require) and tls.ca to verify certificates");
  if (c.identity.token && !c.tls.enabled())
    r.error(id.IsMap() ? id["token"].Mark() : id_at,
            "identity.token: a token is a bearer credential and is accepted only over TLS; configure tls.cert and "
            "tls.key");
  if (!c.identity.enabled()) {
    if (!c.grants.empty())
      r.warning(mark_of(s.grants, s.root), "grants: no identity (people_file, certificate or token) is configured, "
                                          "so no person can log in and the grants apply to nobody");
    return;
  }
  if (c.grants.empty())
    r.warning(id_at, "identity: no grants are configured, so every person is refused at login");
  const auto roles = c.grants.roles();
  for (const auto& [role, credential] : c.credentials) {
    if (!std::binary_search(roles.begin(), roles.end(), role))
      r.warning(s.credentials.node[role].Mark(), "credentials." + role + ": no grant names role '" + role + "'");
  }
}

}  // namespace

LoadResult load_config_string(const std::string& text, const std::string& name) {
  std::error_code ec;
  auto absolute = std::filesystem::absolute(name, ec);
  Reader r(name, ec ? std::filesystem::current_path(ec) : absolute.parent_path());
  LoadResult result;
  auto config = std::make_shared<Config>();
  config->source = ec ? name : absolute.lexically_normal().string();
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap()) {
      r.error(root.IsNull() ? YAML::Mark::null_mark() : root.Mark(), "the configuration must be a mapping of keys (listen, upstream, rules, ...)");
    } else {
      Sections s = read_sections(r, root);
      read_config(r, s, *config);
      check_tls_and_auth(r, s, *config);
      check_identity(r, s, *config);
    }
  } catch (const YAML::Exception& e) {
    r.error(e.mark, e.msg);
  }
  auto by_position = [](const Diagnostic& a, const Diagnostic& b) {
    return std::pair(a.line, a.column) < std::pair(b.line, b.column);
  };
  result.errors = std::move(r.errors());
  result.warnings = std::move(r.warnings());
  std::stable_sort(result.errors.begin(), result.errors.end(), by_position);
  std::stable_sort(result.warnings.begin(), result.warnings.end(), by_position);
  if (result.errors.empty()) result.config = std::move(config);
  return result;
}

LoadResult load_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult result;
    result.errors.push_back({path, 0, 0, "cannot open configuration file: " + std::string(std::strerror(errno))});
    return result;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return load_config_string(text.str(), path);
}

}  // namespace pgwarden::config
