#include "alerts/alert.hpp"

namespace pgwarden::alerts {

std::string_view to_string(AlertKind k) noexcept {
  switch (k) {
    case AlertKind::Rule: return "rule";
    case AlertKind::ConnectRefused: return "connect_refused";
    case AlertKind::AuthFailures: return "auth_failures";
    case AlertKind::AuditFailing: return "audit_failing";
    case AlertKind::ConfigRejected: return "config_rejected";
  }
  return "unknown";
}

std::string_view to_string(Severity s) noexcept {
  switch (s) {
    case Severity::Critical: return "critical";
    case Severity::Warning: return "warning";
    case Severity::Info: return "info";
  }
  return "unknown";
}

Severity severity(const Alert& a) noexcept {
  switch (a.kind) {
    case AlertKind::AuditFailing: return Severity::Critical;
    case AlertKind::Rule:
      if (!a.denied) return Severity::Info;
      return a.dry_run ? Severity::Warning : Severity::Critical;
    default: return Severity::Warning;
  }
}

std::string_view decision(const Alert& a) noexcept { return a.denied ? "deny" : "allow"; }

std::string summary(const Alert& a) {
  std::string who = a.person.empty() ? a.user : a.person + " (as " + a.user + ")";
  if (who.empty()) who = "unknown user";
  std::string out = "pgwarden: ";
  switch (a.kind) {
    case AlertKind::Rule:
      out += who + (a.dry_run ? " would be " : " ") + (a.denied ? "denied" : "allowed") + " by rule " + a.rule;
      break;
    case AlertKind::ConnectRefused: out += "connection of " + who + " refused by rule " + a.rule; break;
    case AlertKind::AuthFailures: out += "authentication failures for " + who; break;
    case AlertKind::AuditFailing: out += "the audit log is failing; statements are blocked"; break;
    case AlertKind::ConfigRejected: out += "a configuration reload was rejected"; break;
  }
  if (!a.client_addr.empty()) out += " from " + a.client_addr;
  if (!a.database.empty()) out += " on " + a.database;
  if (a.count > 1) out += " (" + std::to_string(a.count) + " times)";
  return out;
}

std::string aggregation_key(const Alert& a) {
  std::string key(to_string(a.kind));
  for (const std::string* part : {&a.rule, &a.user, &a.person, &a.client_addr}) {
    key += '\0';
    key += *part;
  }
  return key;
}

}  // namespace pgwarden::alerts
