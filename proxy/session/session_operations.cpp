// What a Session does for the operator rather than for the client: ending at
// a transaction boundary when the server drains, and what the statement gate
// reports, passed on to the audit, the metrics and the operational log.

#include "audit/redact.hpp"
#include "protocol/encoder.hpp"
#include "protocol/sqlstate.hpp"
#include "proxy/ops/log_setup.hpp"
#include "proxy/session/alerts_holder.hpp"
#include "proxy/session/session.hpp"

namespace pgwarden::proxy {

void Session::drain(DrainMode mode) {
  if (drain_ && *drain_ >= mode) return;
  drain_ = mode;
  poke_watchdog();  // the watchdog closes the session if it may go now
}

bool Session::at_transaction_boundary() const {
  // Idle outside a transaction, every sync point answered, no extended
  // batch open and no partial message from the client: closing now
  // interrupts nothing.
  return gate_.at_boundary() && from_client_.in.empty();
}

bool Session::drain_now() const {
  return drain_ && (*drain_ == DrainMode::Immediate || gate_.ready_seen() == 0);  // not logged in yet: nothing to finish
}

bool Session::drain_due() {
  if (!drain_) return false;
  if (drain_now()) return true;
  // A write to the client still under way carries the answer the boundary
  // follows; relay_server checks again once it is done. What the client
  // has already sent (often its Terminate) is read first: the session then
  // ends as the client meant, or at the boundary after that request.
  return at_transaction_boundary() && !writing_to_client_ && !client_.has_unread_input();
}

// The read under way may already hold what the client sent last (the
// reactor took it off the socket, the coroutine has not run yet), so the
// session does not end here: the read is cancelled, and relay_client ends
// the session when it comes back empty, or handles what it brought first.
void Session::stop_reading_client() {
  drain_stop_ = true;
  client_.cancel();
}

CloseReason Session::shut_down() {
  return fail(protocol::sqlstate::admin_shutdown, "terminating connection due to administrator command", CloseReason::Shutdown);
}

void Session::decided(const policy::Decision& d) {
  if (!(d.dry_run && d.dry_run_rule) && !d.denied()) return;
  const policy::SessionFacts& facts = policy_.facts();
  if (d.dry_run && d.dry_run_rule) {
    log_event(spdlog::level::info, "dry run: a rule would have denied a statement",
              {{"rule", d.dry_run_rule->name}, {"user", facts.user}, {"client", audit_.client_addr()}});
  }
  if (d.denied()) {
    log_event(spdlog::level::info, "denied",
              {{"user", facts.user}, {"database", facts.database}, {"client", audit_.client_addr()}, {"rule", d.rule_name()},
               {"reason", to_string(d.reason)}});
  }
}

void Session::counted(const policy::ClassifiedText& text, const policy::Decision& d) {
  counters_.count_execution(policy_.rules(), text, d);
}

void Session::read(std::string_view protocol, std::string_view sql, const policy::Decision& d) {
  if (!policy_.config().log.statements) return;
  // Passwords are redacted exactly as in the audit record.
  thread_local std::string scratch;
  const std::string_view shown = audit::redact_sql(sql, false, scratch);
  const policy::SessionFacts& facts = policy_.facts();
  log_event(spdlog::level::info, "statement",
            {{"client", audit_.client_addr()},
             {"user", facts.user},
             {"database", facts.database},
             {"protocol", protocol},
             {"decision", d.denied() ? std::string_view("deny") : std::string_view("allow")},
             {"rule", d.rule_name()},
             {"sql", shown}});
}

void Session::refused(const GatedStatement& s, const policy::Decision& d) {
  audit_.refused(s, d);
  if (d.alert) raise_alert(&s, d.rule_name(), true, false);
}

bool Session::forwarding(const GatedStatement& s, const AuditedDecision& d) {
  if (!audit_.forwarding(s, d)) return false;
  // A dry run forwards what its rule would have denied: the alert says so.
  if (d.alert) raise_alert(&s, d.rule, d.dry_run, d.dry_run);
  return true;
}

void Session::raise_alert(const GatedStatement* s, std::string_view rule, bool denied, bool dry_run) {
  if (!ctx_.alerts) return;
  SessionIdentity who = audit_.identity();
  alerts::Alert a;
  a.kind = s ? alerts::AlertKind::Rule : alerts::AlertKind::ConnectRefused;
  a.person = policy_.facts().person;
  a.user = std::move(who.user);
  a.database = std::move(who.database);
  a.client_addr = std::move(who.client_addr);
  a.application_name = std::move(who.application_name);
  if (s) {
    std::string scratch;
    a.statement = audit::redact_sql(s->sql, policy_.config().audit.redact_literals, scratch);
  }
  a.rule = rule;
  a.denied = denied;
  a.dry_run = dry_run;
  a.time = std::chrono::system_clock::now();
  a.session_id = std::move(who.session_id);
  ctx_.alerts->raise(std::move(a));
}

void Session::sync_point_begun(std::uint64_t n, std::optional<std::chrono::system_clock::time_point> decided) {
  counters_.sync_point_begun(n, decided);
}

void Session::log_close(CloseReason reason) const {
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
  const std::string client = peer_.address().to_string();
  log_event(spdlog::level::info, "connection closed",
            {{"client", client},
             {"client_port", std::uint64_t{peer_.port()}},
             {"user", policy_.facts().user},
             {"database", policy_.facts().database},
             {"reason", to_string(reason)},
             {"duration_ms", std::int64_t{elapsed.count()}},
             {"bytes_from_client", counters_.bytes_from_client()},
             {"bytes_from_server", counters_.bytes_from_server()}});
}

}  // namespace pgwarden::proxy
