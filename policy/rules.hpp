#pragma once
/// The immutable rule set the evaluator runs over. Built once per
/// configuration (load or reload) by config/, which validates every name;
/// everything the evaluator needs per statement (group members, networks,
/// flag masks, denial messages) is resolved here so evaluation only reads.

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/cidr.hpp"
#include "policy/glob.hpp"
#include "policy/session_facts.hpp"
#include "policy/statement_facts.hpp"
#include "policy/time_zone.hpp"

namespace pgwarden::policy {

/// What a rule does when it matches.
enum class Action : std::uint8_t { Allow, Deny };
/// When a rule is checked: on every statement, or once at connection startup.
enum class Phase : std::uint8_t { Statement, Connect };

/// "allow" / "deny".
std::string_view to_string(Action a) noexcept;
/// "statement" / "connect".
std::string_view to_string(Phase p) noexcept;

/// Bit of a ProtocolPath in Conditions::protocols.
constexpr std::uint8_t protocol_bit(ProtocolPath p) noexcept { return std::uint8_t(1u << unsigned(p)); }
/// Bit of an Access in ObjectPattern::access.
constexpr std::uint8_t access_bit(Access a) noexcept { return std::uint8_t(1u << unsigned(a)); }

/// `schema.table` pattern with the kinds of access it covers. Without a
/// schema part it matches the name in any schema; an object written without a
/// schema in the SQL (resolved by search_path, unknown here) matches any
/// schema part, so a deny rule cannot be dodged by leaving the schema out.
struct ObjectPattern {
  std::optional<Glob> schema;
  Glob name;
  std::uint8_t access = access_bit(Access::Read) | access_bit(Access::Write) | access_bit(Access::Ddl);
  std::string source;  ///< as written

  /// True when `object` is covered by this pattern.
  bool matches(const ObjectRef& object) const noexcept;
};

/// Days of the week and an hour range in a named time zone. A range whose
/// end is not after its start wraps midnight ("22:00-06:00"): its early hours
/// belong to the day the window started.
struct TimeWindow {
  std::uint8_t days = 0x7F;         ///< bit 0 = Sunday ... bit 6 = Saturday
  std::uint16_t start_minute = 0;   ///< minutes after local midnight
  std::uint16_t end_minute = 1440;  ///< exclusive
  std::shared_ptr<const TimeZone> zone;

  /// True when `now` falls inside the window.
  bool contains(std::chrono::sys_seconds now) const noexcept;
};

/// Every condition a rule can combine. An empty list or unset value does not
/// constrain; a list matches when any entry matches; a rule matches when all
/// its conditions do.
/// The conditions on who is connected, from where, to what, and when:
/// decided once per session (and again when application_name or the rules
/// change), never per statement.
struct SessionConditions {
  std::vector<Glob> users;
  std::vector<std::string> user_in;      ///< group names
  std::vector<std::string> user_not_in;  ///< group names
  std::vector<Glob> databases;
  std::vector<Glob> applications;
  std::vector<std::string> client_in;      ///< network names, CIDRs, or `local` (Unix socket)
  std::vector<std::string> client_not_in;  ///< same
  std::vector<std::string> environments;
  std::optional<TimeWindow> time;
  /// Who is connected (SessionFacts::person), byte for byte.
  std::vector<Glob> persons;
  /// Group names: the person is in one when their credential states it, or
  /// when a pgwarden group of that name lists them.
  std::vector<std::string> person_in;
  std::uint8_t auth_methods = 0;  ///< auth_method_bit()s; 0 = any
};

struct Conditions {
  SessionConditions who;
  std::uint8_t protocols = 0;  ///< protocol_bit()s; 0 = any
  // Statement level.
  std::vector<Glob> commands;  ///< against StatementFacts::effective_tags
  ClassSet classes;
  std::vector<ObjectPattern> objects;
  std::vector<Glob> functions;  ///< unqualified patterns match the name in any schema
  std::optional<bool> update_or_delete_without_where;
  std::optional<bool> dynamic_sql;
  std::optional<bool> role_change;
  std::optional<bool> unparseable;
  /// COPY ... TO/FROM PROGRAM: a shell command on the database server.
  std::optional<bool> runs_program;
  /// The database server's files: COPY to or from a file name, lo_import,
  /// pg_read_file, pg_ls_dir ...
  std::optional<bool> server_file_access;
  /// pg_terminate_backend, pg_cancel_backend, pg_reload_conf ...
  std::optional<bool> signals_backends;
  /// lo_unlink, lo_put, lo_get ...
  std::optional<bool> large_objects;
  /// dblink, postgres_fdw's connection functions.
  std::optional<bool> remote_database;
  /// FOR UPDATE/SHARE, LOCK TABLE (stronger than ACCESS SHARE), advisory
  /// locks, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED.
  std::optional<bool> locks;
  /// NOTIFY, pg_notify().
  std::optional<bool> notify;
  /// VACUUM, ANALYZE, REINDEX, CLUSTER, CHECKPOINT.
  std::optional<bool> maintenance;

  /// True when any statement-level condition is set.
  bool has_statement_conditions() const noexcept;
};

/// StatementFacts booleans as bits, for CompiledRule::flag_mask.
inline constexpr std::uint16_t statement_flag_without_where = 1;
inline constexpr std::uint16_t statement_flag_dynamic_sql = 2;
inline constexpr std::uint16_t statement_flag_role_change = 4;
inline constexpr std::uint16_t statement_flag_unparseable = 8;
inline constexpr std::uint16_t statement_flag_runs_program = 16;
inline constexpr std::uint16_t statement_flag_server_file_access = 32;
inline constexpr std::uint16_t statement_flag_signals_backends = 64;
inline constexpr std::uint16_t statement_flag_large_objects = 128;
inline constexpr std::uint16_t statement_flag_remote_database = 256;
inline constexpr std::uint16_t statement_flag_locks = 512;
inline constexpr std::uint16_t statement_flag_notify = 1024;
inline constexpr std::uint16_t statement_flag_maintenance = 2048;

/// A statement effect a rule may require to be true or false: its key in
/// `when:`, the condition, the fact it is compared with and its bit.
struct StatementFlag {
  std::string_view name;
  std::optional<bool> Conditions::*condition;
  bool StatementFacts::*fact;
  std::uint16_t bit;
};

/// Every statement flag, once: the loader, the compiled masks and the
/// evaluator all read this list.
inline constexpr std::array<StatementFlag, 12> statement_flags{{
    {"update_or_delete_without_where", &Conditions::update_or_delete_without_where,
     &StatementFacts::update_or_delete_without_where, statement_flag_without_where},
    {"dynamic_sql", &Conditions::dynamic_sql, &StatementFacts::dynamic_sql, statement_flag_dynamic_sql},
    {"role_change", &Conditions::role_change, &StatementFacts::role_change, statement_flag_role_change},
    {"unparseable", &Conditions::unparseable, &StatementFacts::unparseable, statement_flag_unparseable},
    {"runs_program", &Conditions::runs_program, &StatementFacts::runs_program, statement_flag_runs_program},
    {"server_file_access", &Conditions::server_file_access, &StatementFacts::server_file_access,
     statement_flag_server_file_access},
    {"signals_backends", &Conditions::signals_backends, &StatementFacts::signals_backends,
     statement_flag_signals_backends},
    {"large_objects", &Conditions::large_objects, &StatementFacts::large_objects, statement_flag_large_objects},
    {"remote_database", &Conditions::remote_database, &StatementFacts::remote_database,
     statement_flag_remote_database},
    {"locks", &Conditions::locks, &StatementFacts::locks, statement_flag_locks},
    {"notify", &Conditions::notify, &StatementFacts::notify, statement_flag_notify},
    {"maintenance", &Conditions::maintenance, &StatementFacts::maintenance, statement_flag_maintenance},
}};

/// One named rule.
struct Rule {
  std::string name;
  Phase phase = Phase::Statement;
  Conditions when;
  Action action = Action::Deny;
  std::string message;   ///< extra text for the client's error; may be empty
  std::string sqlstate;  ///< default 42501 (statement) or 28000 (connect)
  bool enforce = true;   ///< false: dry run, only recorded
  bool alert = false;    ///< mark matching decisions for alerting
  /// Connect rules only: a session this rule matches is opened with
  /// default_transaction_read_only = on, and no statement may turn it off.
  bool read_only = false;
};

/// A named network: CIDRs plus, optionally, Unix-socket clients (`local`).
struct Network {
  std::vector<Cidr> cidrs;
  bool local = false;
  /// True when a client at `addr` (nullopt = Unix socket) is in the network.
  bool contains(const std::optional<IpAddress>& addr) const noexcept;
};

using GroupMap = std::map<std::string, std::vector<std::string>, std::less<>>;
using NetworkMap = std::map<std::string, Network, std::less<>>;

/// A rule with everything resolved that evaluation needs.
struct CompiledRule {
  std::uint32_t index = 0;              ///< into RuleSet::rules()
  std::vector<std::string> in_members;  ///< sorted union of user_in groups
  std::vector<std::string> not_in_members;
  std::vector<std::string> person_in_members;  ///< sorted union of the pgwarden groups person_in names
  Network client_in;
  Network client_not_in;
  std::uint16_t flag_mask = 0;   ///< statement_flag_* bits the rule constrains
  std::uint16_t flag_value = 0;  ///< required values of those bits
  std::string denial_message;   ///< full text sent to the client
};

/// The few bytes of a rule checked first, stored contiguously so that most
/// rules are rejected without touching their conditions.
struct RuleGuard {
  std::uint8_t classes = 0;    ///< ClassSet bits; 0 = any
  std::uint8_t protocols = 0;  ///< protocol_bit()s; 0 = any
  std::uint16_t flag_mask = 0;  ///< as CompiledRule
  std::uint16_t flag_value = 0;
  std::uint16_t session = 0;   ///< session_cond_* bits of the conditions that are set
  bool statement_globs = false;  ///< commands, objects or functions are set
};

/// Bits of RuleGuard::session.
inline constexpr std::uint16_t session_cond_users = 1, session_cond_user_in = 2, session_cond_user_not_in = 4,
                               session_cond_databases = 8, session_cond_applications = 16,
                               session_cond_client_in = 32, session_cond_client_not_in = 64,
                               session_cond_environments = 128, session_cond_time = 256,
                               session_cond_persons = 512, session_cond_person_in = 1024,
                               session_cond_auth_methods = 2048;

/// The session_cond_* bits of the session-level conditions `w` sets.
std::uint16_t session_condition_bits(const Conditions& w) noexcept;

/// The immutable, resolved rule set.
class RuleSet {
 public:
  /// An empty set: everything allowed (except the FunctionCall path and
  /// replication, which need an explicit rule).
  RuleSet() = default;
  /// Resolves groups and networks named by the rules. Names must exist (the
  /// loader reports undefined ones); an unknown name resolves to nobody.
  static RuleSet build(std::vector<Rule> rules, GroupMap groups, NetworkMap networks, Action default_action);

  const std::vector<Rule>& rules() const noexcept { return rules_; }
  const GroupMap& groups() const noexcept { return groups_; }
  const NetworkMap& networks() const noexcept { return networks_; }
  /// What applies when no rule matches.
  Action default_action() const noexcept { return default_; }
  /// Statement-phase rules, in configuration order.
  std::span<const CompiledRule> statement_rules() const noexcept { return statement_rules_; }
  /// Connect-phase rules, in configuration order.
  std::span<const CompiledRule> connect_rules() const noexcept { return connect_rules_; }
  /// RuleGuard of each statement rule, parallel to statement_rules().
  std::span<const RuleGuard> statement_guards() const noexcept { return statement_guards_; }
  const Rule& rule(const CompiledRule& c) const noexcept { return rules_[c.index]; }
  /// The rule called `name`, or nullptr.
  const Rule* find(std::string_view name) const noexcept;

 private:
  CompiledRule compile(std::uint32_t index) const;
  Network resolve_networks(const std::vector<std::string>& names) const;
  std::vector<std::string> resolve_members(const std::vector<std::string>& groups) const;

  std::vector<Rule> rules_;
  GroupMap groups_;
  NetworkMap networks_;
  Action default_ = Action::Allow;
  std::vector<CompiledRule> statement_rules_;
  std::vector<CompiledRule> connect_rules_;
  std::vector<RuleGuard> statement_guards_;
};

}  // namespace pgwarden::policy
