#include "proxy/session/session_counters.hpp"

#include <algorithm>
#include <functional>

namespace pgwarden::proxy {

void SessionCounters::count_execution(const policy::RuleSet& rules, const policy::ClassifiedText& text,
                                      const policy::Decision& d) {
  for (const auto& s : text.statements) metrics_.statement(s.classes, d.denied()).increment();
  if (d.denied()) count_denial(rules, d);
  if (d.dry_run && d.dry_run_rule) rule_counter(rules, *d.dry_run_rule, true).increment();
}

void SessionCounters::count_denial(const policy::RuleSet& rules, const policy::Decision& d) {
  if (d.rule) rule_counter(rules, *d.rule, false).increment();
  else metrics_.builtin_denial(d.reason).increment();
}

metrics::Counter& SessionCounters::rule_counter(const policy::RuleSet& set, const policy::Rule& rule, bool dry_run) {
  const auto& rules = set.rules();
  const bool ours = !rules.empty() && std::less_equal<>()(rules.data(), &rule) &&
                    std::less<>()(&rule, rules.data() + rules.size());
  if (!ours) return dry_run ? metrics_.rule_dry_run_denial(rule.name) : metrics_.rule_denial(rule.name);
  if (rule_counters_.size() != rules.size()) rule_counters_.assign(rules.size(), {});
  auto& slot = rule_counters_[static_cast<std::size_t>(&rule - rules.data())];
  metrics::Counter*& counter = dry_run ? slot.second : slot.first;
  if (!counter) counter = dry_run ? &metrics_.rule_dry_run_denial(rule.name) : &metrics_.rule_denial(rule.name);
  return *counter;
}

void SessionCounters::count_connection(ConnectionResult r) {
  if (connection_counted_) return;
  connection_counted_ = true;
  metrics_.connection_result(r).increment();
}

void SessionCounters::count_close(CloseReason reason) {
  metrics_.closed(reason).increment();
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

void SessionCounters::sync_point_begun(std::uint64_t n, std::optional<std::chrono::system_clock::time_point> decided) {
  if (!decided) return;  // e.g. a Sync after Describe only: no statement to time
  sync_starts_[n % sync_starts_.size()] = SyncStart{n, *decided};
}

void SessionCounters::sync_point_answered(std::uint64_t ready_seen) {
  SyncStart& s = sync_starts_[ready_seen % sync_starts_.size()];
  if (s.sync_point != ready_seen) return;  // not timed, or overwritten by a deeper pipeline
  s.sync_point = 0;
  const auto elapsed = std::chrono::system_clock::now() - s.at;
  // Wall-clock (the time the decision read anyway): a clock step during the
  // statement distorts one observation, never below zero.
  metrics_.statement_duration.observe(std::max(0.0, std::chrono::duration<double>(elapsed).count()));
}

}  // namespace pgwarden::proxy
