#include "proxy/session/proxy_metrics.hpp"

#include "proxy/ops/build_info.hpp"

namespace pgwarden::proxy {

namespace {

constexpr std::string_view unknown = "unknown";

/// Fills `out[i]` with the child labelled `name(i)` for every index whose
/// enum value has a name, and with the `unknown` child past the last one,
/// so an enum value added later can never index a missing child.
template <class Array, class Name>
void resolve_by_enum(Array& out, metrics::Family<metrics::Counter>& family, std::string_view label, Name name) {
  for (std::size_t i = 0; i < out.size(); ++i) {
    const std::string_view n = name(i);
    out[i] = &family.add({{label, n.empty() ? unknown : n}});
  }
}

}  // namespace

std::string_view to_string(ConnectionResult r) noexcept {
  switch (r) {
    case ConnectionResult::Accepted: return "accepted";
    case ConnectionResult::RefusedLimit: return "refused_limit";
    case ConnectionResult::RefusedPolicy: return "refused_policy";
    case ConnectionResult::RefusedProtocol: return "refused_protocol";
    case ConnectionResult::StartupTimeout: return "startup_timeout";
    case ConnectionResult::UpstreamUnavailable: return "upstream_unavailable";
    case ConnectionResult::ClientGone: return "client_gone";
    case ConnectionResult::CancelRequest: return "cancel_request";
    case ConnectionResult::Shutdown: return "shutdown";
    case ConnectionResult::RefusedServer: return "refused_server";
    case ConnectionResult::AuthenticationFailed: return "auth_failed";
  }
  return unknown;
}

#define PGWARDEN_INIT_COUNTER(member, help, ...) member(registry.add_counter("pgwarden_" #member, help, {__VA_ARGS__})),
#define PGWARDEN_INIT_GAUGE(member, help, ...) member(registry.add_gauge("pgwarden_" #member, help, {__VA_ARGS__})),
#define PGWARDEN_INIT_HISTOGRAM(member, bounds, help, ...) \
  member(registry.add_histogram("pgwarden_" #member, help, {__VA_ARGS__}, bounds)),

ProxyMetrics::ProxyMetrics(metrics::Registry& registry)
    : PGWARDEN_METRICS(PGWARDEN_INIT_COUNTER, PGWARDEN_INIT_GAUGE, PGWARDEN_INIT_HISTOGRAM)
      bytes_from_client(bytes_total.add({{"direction", "from_client"}})),
      bytes_from_server(bytes_total.add({{"direction", "from_server"}})),
      upstream_connect_errors(upstream_connect_errors_total.add({})),
      statement_duration(statement_duration_seconds.add({})),
      audit_durable_wait(audit_durable_wait_seconds.add({})) {
  resolve_by_enum(connection_results_, client_connections_total, "result", [](std::size_t i) {
    return to_string(static_cast<ConnectionResult>(i));
  });
  resolve_by_enum(closed_, connections_closed_total, "reason", [](std::size_t i) {
    const auto r = static_cast<CloseReason>(i);
    return r == CloseReason::None ? unknown : to_string(r);  // None: never a reason to close
  });
  // One pass per class, index = StatementClass value; the last is UNKNOWN.
  for (std::size_t c = 0; c < statements_.size(); ++c) {
    const std::string_view name =
        c < policy::statement_class_count ? policy::to_string(static_cast<policy::StatementClass>(c)) : "UNKNOWN";
    statements_[c][0] = &statements_total.add({{"class", name}, {"decision", "allow"}});
    statements_[c][1] = &statements_total.add({{"class", name}, {"decision", "deny"}});
  }
  // Denials no rule made: the protocol paths and read-only sessions by name,
  // everything else is the default.
  for (std::size_t i = 0; i < builtin_denials_.size(); ++i) {
    const auto r = static_cast<policy::DecisionReason>(i);
    const bool named = r == policy::DecisionReason::FunctionCallNotAllowed ||
                       r == policy::DecisionReason::ReplicationNotAllowed ||
                       r == policy::DecisionReason::ReadOnlySession;
    builtin_denials_[i] = &denials_total.add({{"rule", named ? policy::to_string(r) : "default"}});
  }
  constexpr std::string_view sides[] = {"client", "upstream"};
  constexpr std::string_view results[] = {"ok", "error"};
  for (std::size_t s = 0; s < 2; ++s) {
    for (std::size_t r = 0; r < 2; ++r) {
      tls_handshakes_[s][r] = &tls_handshakes_total.add({{"side", sides[s]}, {"result", results[r]}});
    }
  }
  config_reloads_[0] = &config_reloads_total.add({{"result", "success"}});
  config_reloads_[1] = &config_reloads_total.add({{"result", "error"}});
  config_last_reload_success_timestamp_seconds.add({});
  audit_records_total.add_callback({}, [] { return 0.0; });
  audit_write_errors_total.add_callback({}, [] { return 0.0; });
  audit_queue_depth.add_callback({}, [] { return 0.0; });
  audit_sync_seconds.add_callback({}, [] { return metrics::HistogramSnapshot{}; });
  build_info.add({{"version", version()}}).set(1);
}

#undef PGWARDEN_INIT_COUNTER
#undef PGWARDEN_INIT_GAUGE
#undef PGWARDEN_INIT_HISTOGRAM

void ProxyMetrics::add_rules(const policy::RuleSet& rules) {
  for (const policy::Rule& r : rules.rules()) {
    if (r.action != policy::Action::Deny || r.name.empty()) continue;
    if (r.enforce) rule_denial(r.name);
    else rule_dry_run_denial(r.name);
  }
}

void ProxyMetrics::count_config_reload(bool ok, std::chrono::system_clock::time_point when) {
  config_reloads_[ok ? 0 : 1]->increment();
  if (ok) note_config_loaded(when);
}

void ProxyMetrics::note_config_loaded(std::chrono::system_clock::time_point when) {
  const auto since_epoch = std::chrono::duration<double>(when.time_since_epoch());
  config_last_reload_success_timestamp_seconds.add({}).set(since_epoch.count());
}

}  // namespace pgwarden::proxy
