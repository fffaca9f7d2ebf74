#include "config/rule_loader.hpp"

#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

namespace pgwarden::config {
namespace {

using policy::Glob;
using policy::GlobCase;

// Time zones by name, each file read once per load.
class ZoneCache {
 public:
  std::shared_ptr<const policy::TimeZone> get(const std::string& name, std::string& error) {
    if (auto it = zones_.find(name); it != zones_.end()) return it->second;
    auto zone = load(name, error);
    if (zone) zones_.emplace(name, zone);
    return zone;
  }

 private:
  static std::shared_ptr<const policy::TimeZone> load(const std::string& name, std::string& error) {
    const bool valid = !name.empty() && name.front() != '/' && name.find("..") == std::string::npos &&
                       name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/_+-") ==
                           std::string::npos;
    const char* dir = std::getenv("TZDIR");
    std::ifstream in(std::string(dir && *dir ? dir : "/usr/share/zoneinfo") + "/" + name, std::ios::binary);
    if (!valid || !in) {
      if (name == "UTC") return std::make_shared<policy::TimeZone>(policy::TimeZone::utc());
      error = "unknown time zone '" + name + "' (use an IANA name such as Europe/Berlin or UTC)";
      return nullptr;
    }
    std::ostringstream bytes;
    bytes << in.rdbuf();
    auto zone = policy::TimeZone::from_tzif(name, bytes.str(), &error);
    if (!zone) return nullptr;
    return std::make_shared<policy::TimeZone>(std::move(*zone));
  }
  std::map<std::string, std::shared_ptr<const policy::TimeZone>> zones_;
};

struct Context {
  Reader& r;
  const policy::GroupMap& groups;
  const policy::NetworkMap& networks;
  ZoneCache& zones;
};

template <class Map>
std::vector<std::string_view> names_of(const Map& m) {
  std::vector<std::string_view> out;
  for (const auto& [k, v] : m) out.push_back(k);
  return out;
}

std::string undefined(std::string_view kind, const std::string& name, const std::vector<std::string_view>& known) {
  std::string msg = "undefined " + std::string(kind) + " '" + name + "'";
  if (auto close = closest_match(name, known); !close.empty()) msg += " (did you mean '" + std::string(close) + "'?)";
  return msg;
}

// Command tag patterns. A plain word also matches the tags it begins:
// TRUNCATE matches PostgreSQL's tag "TRUNCATE TABLE", DROP every "DROP ...".
std::vector<Glob> read_commands(Reader& r, const YAML::Node& v, const std::string& what) {
  std::vector<Glob> out = read_globs(r, v, what, GlobCase::Insensitive);
  const std::size_t written = out.size();
  for (std::size_t i = 0; i < written; ++i) {
    if (out[i].is_literal()) out.push_back(*Glob::compile(out[i].source() + " *", GlobCase::Insensitive));
  }
  return out;
}

std::vector<std::string> read_group_refs(Context& c, const YAML::Node& v, const std::string& what) {
  std::vector<std::string> out;
  for (const auto& [name, node] : c.r.strings(v, what)) {
    if (c.groups.contains(name)) out.push_back(name);
    else c.r.error(node, what + ": " + undefined("group", name, names_of(c.groups)));
  }
  return out;
}

bool looks_like_address(const std::string& s) {
  return !s.empty() && (std::isdigit(static_cast<unsigned char>(s[0])) || s.find_first_of(":/") != std::string::npos);
}

std::vector<std::string> read_network_refs(Context& c, const YAML::Node& v, const std::string& what) {
  return read_network_refs(c.r, c.networks, v, what);
}

policy::ClassSet read_classes(Reader& r, const YAML::Node& v, const std::string& what) {
  policy::ClassSet set;
  const std::vector<std::string_view> names = {"READ", "WRITE", "FUNCTION", "ROLE", "DDL", "MISC", "MISC_SET"};
  for (const auto& [name, node] : r.strings(v, what)) {
    policy::StatementClass cls;
    if (policy::parse_statement_class(name, cls)) {
      set.insert(cls);
      continue;
    }
    std::string msg = what + ": '" + name + "' is not a statement class (READ, WRITE, FUNCTION, ROLE, DDL, MISC, MISC_SET)";
    if (auto close = closest_match(name, names); !close.empty()) msg += " (did you mean '" + std::string(close) + "'?)";
    r.error(node, msg);
  }
  return set;
}

std::uint8_t read_protocols(Reader& r, const YAML::Node& v, const std::string& what) {
  std::uint8_t bits = 0;
  for (const auto& [name, node] : r.strings(v, what)) {
    policy::ProtocolPath p;
    if (policy::parse_protocol_path(name, p)) bits |= policy::protocol_bit(p);
    else r.error(node, what + ": '" + name + "' is not one of simple, extended, function_call, copy, replication");
  }
  return bits;
}

std::uint8_t read_auth_methods(Reader& r, const YAML::Node& v, const std::string& what) {
  std::uint8_t bits = 0;
  for (const auto& [name, node] : r.strings(v, what)) {
    policy::AuthMethod m;
    if (policy::parse_auth_method(name, m)) bits |= policy::auth_method_bit(m);
    else r.error(node, what + ": '" + name + "' is not one of passthrough, scram, md5, certificate, token, people");
  }
  return bits;
}

// Splits "schema.table" at the first dot outside double quotes.
// The schema part is nullopt when there is no such dot.
std::pair<std::optional<std::string>, std::string> split_qualified(const std::string& s) {
  bool quoted = false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '"') quoted = !quoted;
    if (s[i] == '.' && !quoted) return {s.substr(0, i), s.substr(i + 1)};
  }
  return {std::nullopt, s};
}

std::optional<policy::ObjectPattern> object_pattern(Reader& r, const YAML::Node& node, const std::string& text,
                                                    const std::string& what) {
  auto [schema, name] = split_qualified(text);
  policy::ObjectPattern p;
  p.source = text;
  std::string why;
  auto name_glob = Glob::compile(name, GlobCase::Identifier, &why);
  if (!name_glob) {
    r.error(node, what + ": bad pattern '" + text + "': " + why);
    return std::nullopt;
  }
  p.name = std::move(*name_glob);
  if (schema) {
    if (!(p.schema = Glob::compile(*schema, GlobCase::Identifier, &why))) {
      r.error(node, what + ": bad pattern '" + text + "': " + why);
      return std::nullopt;
    }
  }
  return p;
}

std::uint8_t read_access(Reader& r, const YAML::Node& v, const std::string& what) {
  std::uint8_t bits = 0;
  for (const auto& [name, node] : r.strings(v, what)) {
    policy::Access a;
    if (policy::parse_access(name, a)) bits |= policy::access_bit(a);
    else r.error(node, what + ": '" + name + "' is not one of read, write, ddl");
  }
  return bits;
}

std::vector<policy::ObjectPattern> read_objects(Reader& r, const YAML::Node& v, const std::string& what) {
  std::vector<policy::ObjectPattern> out;
  for (const auto& item : r.list(v, what)) {
    std::optional<std::string> text;
    std::uint8_t access = 0;
    YAML::Node name_node = item;
    if (item.IsMap()) {
      r.read_map(item, what, {
        {"name", [&](auto& n) { text = r.string(n, what + ".name"); name_node.reset(n); }, true},
        {"access", [&](auto& n) { access = read_access(r, n, what + ".access"); }},
      });
    } else {
      text = r.string(item, what);
    }
    if (!text) continue;
    if (auto p = object_pattern(r, name_node, *text, what)) {
      if (access != 0) p->access = access;
      out.push_back(std::move(*p));
    }
  }
  return out;
}

// "09:00" -> minutes after midnight; "24:00" allowed as an end.
std::optional<std::uint16_t> parse_clock(std::string_view s) {
  if (s.size() != 5 || s[2] != ':') return std::nullopt;
  for (std::size_t i : {0u, 1u, 3u, 4u})
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) return std::nullopt;
  const int h = (s[0] - '0') * 10 + (s[1] - '0');
  const int m = (s[3] - '0') * 10 + (s[4] - '0');
  if (m > 59 || h > 24 || (h == 24 && m != 0)) return std::nullopt;
  return static_cast<std::uint16_t>(h * 60 + m);
}

void read_hours(Reader& r, const YAML::Node& v, const std::string& what, policy::TimeWindow& w) {
  auto s = r.string(v, what);
  if (!s) return;
  const auto dash = s->find('-');
  auto start = parse_clock(std::string_view(*s).substr(0, dash));
  auto end = dash == std::string::npos ? std::nullopt : parse_clock(std::string_view(*s).substr(dash + 1));
  if (!start || !end || *start == 1440 || *start == *end) {
    r.error(v, what + ": expected a range such as 09:00-18:00 (22:00-06:00 wraps midnight), got '" + *s + "'");
    return;
  }
  w.start_minute = *start;
  w.end_minute = *end;
}

std::optional<int> day_index(std::string_view s) {
  static constexpr std::string_view days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
  for (int i = 0; i < 7; ++i)
    if (s == days[i]) return i;
  return std::nullopt;
}

void read_days(Reader& r, const YAML::Node& v, const std::string& what, policy::TimeWindow& w) {
  w.days = 0;
  for (auto [text, node] : r.strings(v, what)) {
    for (auto& c : text) c = char(std::tolower(static_cast<unsigned char>(c)));
    const auto dash = text.find('-');
    auto first = day_index(std::string_view(text).substr(0, dash));
    auto last = dash == std::string::npos ? first : day_index(std::string_view(text).substr(dash + 1));
    if (text == "weekdays") first = 1, last = 5;
    if (text == "weekend") first = 6, last = 0;
    if (!first || !last) {
      r.error(node, what + ": '" + text + "' is not a day (mon..sun), a range (mon-fri), weekdays or weekend");
      continue;
    }
    for (int d = *first;; d = (d + 1) % 7) {
      w.days |= std::uint8_t(1u << d);
      if (d == *last) break;
    }
  }
}

std::optional<policy::TimeWindow> read_time(Context& c, const YAML::Node& v, const std::string& what) {
  policy::TimeWindow w;
  bool ok = true;
  const std::size_t errors_before = c.r.errors().size();
  c.r.read_map(v, what, {
    {"days", [&](auto& n) { read_days(c.r, n, what + ".days", w); }},
    {"hours", [&](auto& n) { read_hours(c.r, n, what + ".hours", w); }},
    {"zone", [&](auto& n) {
       auto name = c.r.string(n, what + ".zone");
       std::string why;
       if (name && !(w.zone = c.zones.get(*name, why))) c.r.error(n, what + ".zone: " + why);
     }, true},
  });
  ok = c.r.errors().size() == errors_before;
  return ok ? std::optional(w) : std::nullopt;
}


// Reads `when:`; `statement_key` receives the first statement-level key seen.
void read_conditions(Context& c, const YAML::Node& v, const std::string& what, policy::Conditions& w,
                     std::optional<std::pair<std::string, YAML::Mark>>& statement_key) {
  Reader& r = c.r;
  auto stmt = [&](std::string_view key, auto read) {
    return [&, key, read](const YAML::Node& n) {
      if (!statement_key) statement_key.emplace(std::string(key), n.Mark());
      read(n);
    };
  };
  auto flag = [&](std::string_view key, std::optional<bool>& out) {
    return stmt(key, [&, key](const YAML::Node& n) { out = r.boolean(n, what + "." + std::string(key)); });
  };
  const auto k = [&](const char* key) { return what + "." + key; };
  std::vector<Reader::Key> keys = {
    {"user", [&](auto& n) { w.who.users = read_globs(r, n, k("user"), GlobCase::Identifier); }},
    {"user_in", [&](auto& n) { w.who.user_in = read_group_refs(c, n, k("user_in")); }},
    {"user_not_in", [&](auto& n) { w.who.user_not_in = read_group_refs(c, n, k("user_not_in")); }},
    {"database", [&](auto& n) { w.who.databases = read_globs(r, n, k("database"), GlobCase::Identifier); }},
    {"application_name", [&](auto& n) { w.who.applications = read_globs(r, n, k("application_name"), GlobCase::Exact); }},
    {"client_in", [&](auto& n) { w.who.client_in = read_network_refs(c, n, k("client_in")); }},
    {"client_not_in", [&](auto& n) { w.who.client_not_in = read_network_refs(c, n, k("client_not_in")); }},
    {"environment", [&](auto& n) {
       for (auto& [name, node] : r.strings(n, k("environment"))) w.who.environments.push_back(name);
     }},
    {"protocol", [&](auto& n) { w.protocols = read_protocols(r, n, k("protocol")); }},
    {"person", [&](auto& n) { w.who.persons = read_globs(r, n, k("person"), GlobCase::Exact); }},
    {"person_in", [&](auto& n) { w.who.person_in = read_person_groups(r, n, k("person_in")); }},
    {"auth_method", [&](auto& n) { w.who.auth_methods = read_auth_methods(r, n, k("auth_method")); }},
    {"time", [&](auto& n) { w.who.time = read_time(c, n, k("time")); }},
    {"command", stmt("command", [&](auto& n) { w.commands = read_commands(r, n, k("command")); })},
    {"class", stmt("class", [&](auto& n) { w.classes = read_classes(r, n, k("class")); })},
    {"object", stmt("object", [&](auto& n) { w.objects = read_objects(r, n, k("object")); })},
    {"function", stmt("function", [&](auto& n) { w.functions = read_globs(r, n, k("function"), GlobCase::Identifier); })},
  };
  for (const auto& f : policy::statement_flags) keys.push_back({f.name, flag(f.name, w.*f.condition)});
  r.read_map(v, what, keys);
}

bool valid_sqlstate(const std::string& s) {
  if (s.size() != 5 || s.starts_with("00") || s.starts_with("01") || s.starts_with("02")) return false;
  return s.find_first_not_of("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ") == std::string::npos;
}

struct RuleExtras {
  YAML::Node sqlstate;
  YAML::Node read_only;
  std::optional<std::pair<std::string, YAML::Mark>> statement_key;
};

void read_rule_keys(Context& c, const YAML::Node& node, const std::string& what, policy::Rule& rule, RuleExtras& x) {
  Reader& r = c.r;
  r.read_map(node, what, {
    {"name", [&](auto& v) { assign(rule.name, r.string(v, what + ".name")); }, true},
    {"on", [&](auto& v) { r.assign_enum(v, what + ".on", {"statement", "connect"}, rule.phase); }},
    {"when", [&](auto& v) { read_conditions(c, v, what + ".when", rule.when, x.statement_key); }},
    {"action", [&](auto& v) { r.assign_enum(v, what + ".action", {"allow", "deny"}, rule.action); }, true},
    {"message", [&](auto& v) { assign(rule.message, r.string(v, what + ".message")); }},
    {"sqlstate", [&](auto& v) {
       x.sqlstate.reset(v);
       assign(rule.sqlstate, r.string(v, what + ".sqlstate"));
     }},
    {"enforce", [&](auto& v) { assign(rule.enforce, r.boolean(v, what + ".enforce")); }},
    {"alert", [&](auto& v) { assign(rule.alert, r.boolean(v, what + ".alert")); }},
    {"read_only", [&](auto& v) {
       x.read_only.reset(v);
       assign(rule.read_only, r.boolean(v, what + ".read_only"));
     }},
  });
}

void read_rule(Context& c, const YAML::Node& node, std::size_t index, std::map<std::string, int>& seen,
               std::vector<policy::Rule>& out) {
  policy::Rule rule;
  RuleExtras x;
  const std::string what = "rules[" + std::to_string(index) + "]";
  read_rule_keys(c, node, what, rule, x);
  if (rule.phase == policy::Phase::Connect && x.statement_key) {
    c.r.error(x.statement_key->second, what + ".when." + x.statement_key->first +
                                           ": a statement condition cannot be used in a rule with on: connect");
  }
  if (rule.read_only && rule.phase != policy::Phase::Connect) {
    c.r.error(x.read_only, what + ".read_only: a session is opened read-only at connect; use it in a rule with "
                                  "on: connect");
  }
  if (!rule.sqlstate.empty() && !valid_sqlstate(rule.sqlstate)) {
    c.r.error(x.sqlstate, what + ".sqlstate: '" + rule.sqlstate +
                              "' is not an error SQLSTATE (five characters 0-9 A-Z, not class 00, 01 or 02)");
  }
  if (rule.sqlstate.empty()) rule.sqlstate = rule.phase == policy::Phase::Connect ? "28000" : "42501";
  if (node.IsMap() && !rule.name.empty()) {
    auto [it, fresh] = seen.emplace(rule.name, node.Mark().line + 1);
    if (!fresh) {
      c.r.error(node["name"], what + ".name: duplicate rule name '" + rule.name + "' (first defined at line " +
                                  std::to_string(it->second) + ")");
    }
  }
  out.push_back(std::move(rule));
}

}  // namespace

std::vector<Glob> read_globs(Reader& r, const YAML::Node& v, const std::string& what, GlobCase mode) {
  std::vector<Glob> out;
  for (const auto& [text, node] : r.strings(v, what)) {
    std::string why;
    if (auto g = Glob::compile(text, mode, &why)) out.push_back(std::move(*g));
    else r.error(node, what + ": bad pattern '" + text + "': " + why);
  }
  return out;
}

std::vector<std::string> read_network_refs(Reader& r, const policy::NetworkMap& networks, const YAML::Node& v,
                                           const std::string& what) {
  std::vector<std::string> out;
  for (const auto& [name, node] : r.strings(v, what)) {
    std::string why;
    if (networks.contains(name) || name == "local") {
      out.push_back(name);
    } else if (!looks_like_address(name)) {
      r.error(node, what + ": " + undefined("network", name, names_of(networks)));
    } else if (policy::Cidr::parse(name, &why)) {
      out.push_back(name);
    } else {
      r.error(node, what + ": bad CIDR: " + why);
    }
  }
  return out;
}

std::vector<std::string> read_person_groups(Reader& r, const YAML::Node& v, const std::string& what) {
  std::vector<std::string> out;
  for (const auto& [name, node] : r.strings(v, what)) {
    if (name.empty() || name.find_first_of("*?") != std::string::npos) {
      r.error(node, what + ": '" + name + "' is not a group name (no patterns)");
      continue;
    }
    out.push_back(name);
  }
  return out;
}

void read_networks(Reader& r, const YAML::Node& node, policy::NetworkMap& out) {
  if (!node.IsMap()) {
    if (!node.IsNull()) r.error(node, "networks: expected a mapping of name: [CIDR, ...]");
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string name = it->first.Scalar();
    if (name == "local" || out.contains(name)) {
      r.error(it->first, "networks: " + std::string(name == "local" ? "'local' is reserved for Unix-socket clients"
                                                                       : "duplicate network '" + name + "'"));
      continue;
    }
    policy::Network net;
    for (const auto& [text, item] : r.strings(it->second, "networks." + name)) {
      std::string why;
      if (text == "local") net.local = true;
      else if (auto cidr = policy::Cidr::parse(text, &why)) net.cidrs.push_back(*cidr);
      else r.error(item, "networks." + name + ": bad CIDR: " + why);
    }
    out.emplace(name, std::move(net));
  }
}

void read_groups(Reader& r, const YAML::Node& node, policy::GroupMap& out) {
  if (!node.IsMap()) {
    if (!node.IsNull()) r.error(node, "groups: expected a mapping of name: [user, ...]");
    return;
  }
  for (auto it = node.begin(); it != node.end(); ++it) {
    const std::string name = it->first.Scalar();
    if (out.contains(name)) {
      r.error(it->first, "groups: duplicate group '" + name + "'");
      continue;
    }
    std::vector<std::string> members;
    for (const auto& [user, item] : r.strings(it->second, "groups." + name)) {
      if (user.empty() || user.find_first_of("*?") != std::string::npos) {
        r.error(item, "groups." + name + ": '" + user + "' is not a user name (groups list exact role names)");
        continue;
      }
      members.push_back(user);
    }
    out.emplace(name, std::move(members));
  }
}

void read_rules(Reader& r, const YAML::Node& node, const policy::GroupMap& groups, const policy::NetworkMap& networks,
                std::vector<policy::Rule>& out) {
  if (!node.IsSequence()) {
    if (!node.IsNull()) r.error(node, "rules: expected a list of rules");
    return;
  }
  ZoneCache zones;
  Context c{r, groups, networks, zones};
  std::map<std::string, int> seen;
  for (std::size_t i = 0; i < node.size(); ++i) read_rule(c, node[i], i, seen, out);
}

}  // namespace pgwarden::config
