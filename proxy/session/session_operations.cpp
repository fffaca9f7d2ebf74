// What a Session does for the operator rather than for the client: ending at
// a transaction boundary when the server drains, counting what it sees into
// the process's metrics, and its lines in the operational log.
//
// Everything here that runs per statement or per read is a relaxed atomic
// add on a child resolved in advance, or plain session state.

#include "audit/redact.hpp"
#include "protocol/encoder.hpp"
#include "protocol/sqlstate.hpp"
#include "proxy/ops/log_setup.hpp"
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
  return ready_status_ == 'I' && ready_seen_ == sync_points_sent_ && !unsynced_ && client_in_.empty();
}

bool Session::drain_now() const {
  return drain_ && (*drain_ == DrainMode::Immediate || ready_seen_ == 0);  // not logged in yet: nothing to finish
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

void Session::note_client_message(char type) {
  switch (type) {
    case 'P': case 'B': case 'E': case 'D': case 'C': case 'H':
      unsynced_ = true;
      break;
    case 'S': case 'Q': case 'F':
      unsynced_ = false;
      break;
    default:
      break;
  }
}

void Session::begin_sync_point() {
  ++sync_points_sent_;
  if (!decided_since_sync_) return;  // e.g. a Sync after Describe only: no statement to time
  decided_since_sync_ = false;
  sync_starts_[sync_points_sent_ % sync_starts_.size()] = SyncStart{sync_points_sent_, decided_at_};
}

void Session::observe_sync_point() {
  SyncStart& s = sync_starts_[ready_seen_ % sync_starts_.size()];
  if (s.sync_point != ready_seen_) return;  // not timed, or overwritten by a deeper pipeline
  s.sync_point = 0;
  const auto elapsed = std::chrono::system_clock::now() - s.at;
  // Wall-clock (the time decide() already read): a clock step during the
  // statement distorts one observation, never below zero.
  ctx_.metrics->statement_duration.observe(std::max(0.0, std::chrono::duration<double>(elapsed).count()));
}

void Session::count_execution(const policy::ClassifiedText& text, const policy::Decision& d) {
  for (const auto& s : text.statements) ctx_.metrics->statement(s.classes, d.denied()).increment();
  if (d.denied()) count_denial(d);
  if (d.dry_run && d.dry_run_rule) rule_counter(*d.dry_run_rule, true).increment();
}

void Session::count_denial(const policy::Decision& d) {
  if (d.rule) rule_counter(*d.rule, false).increment();
  else ctx_.metrics->builtin_denial(d.reason).increment();
}

metrics::Counter& Session::rule_counter(const policy::Rule& rule, bool dry_run) {
  const auto& rules = config_->policy.rules();
  const bool ours = !rules.empty() && std::less_equal<>()(rules.data(), &rule) && std::less<>()(&rule, rules.data() + rules.size());
  if (!ours) return dry_run ? ctx_.metrics->rule_dry_run_denial(rule.name) : ctx_.metrics->rule_denial(rule.name);
  if (rule_counters_.size() != rules.size()) rule_counters_.assign(rules.size(), {});
  auto& slot = rule_counters_[static_cast<std::size_t>(&rule - rules.data())];
  metrics::Counter*& counter = dry_run ? slot.second : slot.first;
  if (!counter) counter = dry_run ? &ctx_.metrics->rule_dry_run_denial(rule.name) : &ctx_.metrics->rule_denial(rule.name);
  return *counter;
}

void Session::count_connection(ConnectionResult r) {
  if (connection_counted_) return;
  connection_counted_ = true;
  ctx_.metrics->connection_result(r).increment();
}

void Session::count_close(CloseReason reason) {
  ctx_.metrics->closed(reason).increment();
  if (connection_counted_) return;
  // The startup never got as far as the upstream: say why.
  ConnectionResult r = startup_result_.value_or(ConnectionResult::RefusedProtocol);
  switch (reason) {
    case CloseReason::StartupTimeout: r = ConnectionResult::StartupTimeout; break;
    case CloseReason::UpstreamUnavailable:
    case CloseReason::ServerProtocolError: r = ConnectionResult::UpstreamUnavailable; break;
    case CloseReason::CancelRequest: r = ConnectionResult::CancelRequest; break;
    case CloseReason::Shutdown: r = ConnectionResult::Shutdown; break;
    case CloseReason::AuthenticationFailed: r = ConnectionResult::AuthenticationFailed; break;
    case CloseReason::UpstreamLoginFailed: r = startup_result_.value_or(ConnectionResult::RefusedServer); break;
    case CloseReason::ClientClosed:
    case CloseReason::ClientWriteError: r = ConnectionResult::ClientGone; break;
    default: break;
  }
  count_connection(r);
}

void Session::log_close(CloseReason reason) const {
  const auto elapsed =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started_);
  const std::string client = peer_.address().to_string();
  log_event(spdlog::level::info, "connection closed",
            {{"client", client},
             {"client_port", std::uint64_t{peer_.port()}},
             {"user", facts_.user},
             {"database", facts_.database},
             {"reason", to_string(reason)},
             {"duration_ms", std::int64_t{elapsed.count()}},
             {"bytes_from_client", bytes_from_client_},
             {"bytes_from_server", bytes_from_server_}});
}

void Session::log_statement(std::string_view protocol, std::string_view sql, const policy::Decision& d) const {
  // Passwords are redacted exactly as in the audit record.
  thread_local std::string scratch;
  const std::string_view shown = audit::redact_sql(sql, false, scratch);
  const std::string client = peer_.address().to_string();
  log_event(spdlog::level::info, "statement",
            {{"client", client},
             {"user", facts_.user},
             {"database", facts_.database},
             {"protocol", protocol},
             {"decision", d.denied() ? std::string_view("deny") : std::string_view("allow")},
             {"rule", d.rule_name()},
             {"sql", shown}});
}

}  // namespace pgwarden::proxy
