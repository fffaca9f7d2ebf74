#pragma once
/// One alert: what happened, who did it, from where, and how to find it in
/// the audit trail. A plain value made by the session (or the process) and
/// handed to the Dispatcher, which owns every copy from then on.

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace pgwarden::alerts {

/// What raised the alert.
enum class AlertKind : std::uint8_t {
  Rule,            ///< a rule with alert: true matched a statement
  ConnectRefused,  ///< a rule refused a connection at startup
  AuthFailures,    ///< a burst of authentication failures
  AuditFailing,    ///< the audit log fails while it blocks statements
  ConfigRejected,  ///< a configuration reload was rejected
};
/// "rule", "connect_refused", "auth_failures", "audit_failing", "config_rejected".
std::string_view to_string(AlertKind k) noexcept;

/// How urgent an alert is, in the words Alertmanager and Slack users expect.
enum class Severity : std::uint8_t { Critical, Warning, Info };
std::string_view to_string(Severity s) noexcept;

struct Alert {
  AlertKind kind = AlertKind::Rule;
  // who and from where
  std::string person;            ///< the human behind the role, when known
  std::string user;              ///< the database role
  std::string database;
  std::string client_addr;
  std::string application_name;
  // what
  std::string statement;         ///< already redacted as the audit settings redact it
  std::string rule;              ///< the rule that decided, or ""
  bool denied = false;           ///< the decision: deny (true) or allow
  bool dry_run = false;          ///< the rule only records (enforce: false)
  std::string detail;            ///< a sentence for kinds without a statement
  // when, and where in the trail
  std::chrono::system_clock::time_point time;
  std::string session_id;
  std::string record_hash;       ///< the audit record's hash, when the caller has it
  /// How many alerts this one stands for: 1, or the repeats aggregated
  /// into it within one window.
  std::uint64_t count = 1;
};

/// Critical for audit failures and enforced denials, Warning for dry runs,
/// connect refusals, authentication bursts and rejected reloads, Info for
/// allowed statements.
Severity severity(const Alert& a) noexcept;
/// "deny" or "allow".
std::string_view decision(const Alert& a) noexcept;
/// One line a person reads first: "pgwarden: bob denied by no-drop ... (3 times)".
std::string summary(const Alert& a);
/// What makes repeats "the same alert": kind, rule, user, client address.
std::string aggregation_key(const Alert& a);

}  // namespace pgwarden::alerts
