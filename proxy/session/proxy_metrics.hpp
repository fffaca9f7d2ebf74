#pragma once
/// Every metric pgwarden exports, declared once in one list, and the
/// children the data path updates, resolved up front so that counting an
/// event is one relaxed atomic add: no lookup, no lock, no allocation.

#include <array>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "audit/stats.hpp"
#include "policy/evaluator.hpp"
#include "policy/statement_facts.hpp"
#include "proxy/session/close_reason.hpp"
#include "metrics/registry.hpp"

namespace pgwarden::proxy {

/// The list: COUNTER(member, help, label names...), GAUGE(...), and
/// HISTOGRAM(member, bucket bounds, help, label names...). The metric's
/// name is "pgwarden_" + member. Label values are bounded sets (enums, rule
/// names from the configuration, the version); never SQL text or addresses.
#define PGWARDEN_METRICS(COUNTER, GAUGE, HISTOGRAM)                                                         \
  GAUGE(client_connections, "Client connections open now.")                                                 \
  COUNTER(client_connections_total,                                                                        \
          "Client connections by how their startup ended: accepted (the startup was forwarded upstream), "  \
          "refused_limit, refused_policy, refused_protocol, startup_timeout, upstream_unavailable, "        \
          "client_gone, cancel_request, shutdown.",                                                         \
          "result")                                                                                         \
  COUNTER(connections_closed_total, "Client connections closed, by reason.", "reason")                      \
  COUNTER(statements_total,                                                                                \
          "Statements decided when they are executed (Query, Bind, FunctionCall), by their most "           \
          "consequential pgaudit class (UNKNOWN: unparseable) and the decision.",                           \
          "class", "decision")                                                                              \
  COUNTER(denials_total,                                                                                   \
          "Executed statements and connections denied, by deciding rule (or default, "                      \
          "function_call_not_allowed, replication_not_allowed).",                                           \
          "rule")                                                                                           \
  COUNTER(dry_run_denials_total, "Executed statements a rule with enforce: false would have denied.", "rule") \
  HISTOGRAM(statement_duration_seconds, statement_duration_bounds,                                          \
            "Time from deciding the statements of a sync point (Query, FunctionCall, or an extended-protocol " \
            "batch up to Sync) to the server's ReadyForQuery for it.")                                      \
  COUNTER(bytes_total, "Bytes received from clients and from the upstream server.", "direction")            \
  COUNTER(upstream_connect_errors_total, "Connection attempts to the upstream server that failed.")          \
  GAUGE(pool_idle_connections, "Server connections idle in the session pool (auth: scram).")               \
  COUNTER(tls_handshakes_total, "TLS handshakes, by side (client, upstream) and result.", "side", "result") \
  COUNTER(config_reloads_total, "Configuration reloads (SIGHUP), by result.", "result")                     \
  GAUGE(config_last_reload_success_timestamp_seconds,                                                      \
        "When the configuration in force was loaded, in seconds since the Unix epoch.")                     \
  COUNTER(audit_records_total, "Audit records written.")                                                    \
  COUNTER(audit_write_errors_total, "Audit writes that failed.")                                            \
  GAUGE(audit_queue_depth, "Audit records waiting to be written.")                                          \
  HISTOGRAM(audit_sync_seconds, audit_sync_bounds, "Time one audit file sync (fsync) took.")                \
  HISTOGRAM(audit_durable_wait_seconds, audit_sync_bounds,                                                  \
            "Time statements waited for their audit records to be written and synced before they were "     \
            "forwarded (durability: synced), once per Query or extended-protocol batch: the sync, a sync "  \
            "already in progress, and the hand-offs to the audit writer and back.")                        \
  GAUGE(build_info, "Always 1; the labels say which pgwarden this is.", "version")

/// Upper bounds of pgwarden_statement_duration_seconds (100 us to 30 s).
inline const std::vector<double> statement_duration_bounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                              0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                              1,      2.5,     5,      10,    30};
/// Upper bounds of pgwarden_audit_sync_seconds and
/// pgwarden_audit_durable_wait_seconds (50 us to 1 s): the audit log's own
/// fdatasync buckets (audit::Stats), in seconds, so the sync histogram is
/// read from its counters as they are.
inline const std::vector<double> audit_sync_bounds = [] {
  std::vector<double> out;
  for (std::uint64_t us : audit::Stats::sync_bounds_us) out.push_back(static_cast<double>(us) / 1e6);
  return out;
}();

/// How a client connection's startup ended (label of client_connections_total).
enum class ConnectionResult : std::uint8_t {
  Accepted,
  RefusedLimit,
  RefusedPolicy,
  RefusedProtocol,
  StartupTimeout,
  UpstreamUnavailable,
  ClientGone,
  CancelRequest,
  Shutdown,
  RefusedServer,         ///< the server refused the startup (too many connections, no such database ...)
  AuthenticationFailed,  ///< the client did not prove its identity, to pgwarden or to the server
};
inline constexpr std::size_t connection_result_count =
    static_cast<std::size_t>(ConnectionResult::AuthenticationFailed) + 1;
std::string_view to_string(ConnectionResult r) noexcept;

/// Which hop a TLS handshake was on, and how it went.
enum class TlsSide : std::uint8_t { Client, Upstream };
enum class TlsResult : std::uint8_t { Ok, Error };

/// The label of a statement with classes `c`: its most consequential class
/// (ROLE, DDL, WRITE, FUNCTION, MISC, MISC_SET, READ in that order), as an
/// index into StatementClass values; statement_class_count for none.
inline std::size_t primary_class_index(policy::ClassSet c) noexcept {
  using C = policy::StatementClass;
  constexpr C order[] = {C::Role, C::Ddl, C::Write, C::Function, C::Misc, C::MiscSet, C::Read};
  for (C k : order) {
    if (c.contains(k)) return static_cast<std::size_t>(k);
  }
  return policy::statement_class_count;
}

/// pgwarden's families and the children the proxy updates.
struct ProxyMetrics {
  /// Declares every family in `registry` and resolves the fixed children;
  /// the audit metrics read 0 until the audit log attaches its callbacks.
  explicit ProxyMetrics(metrics::Registry& registry);

#define PGWARDEN_FAMILY_COUNTER(member, help, ...) metrics::Family<metrics::Counter>& member;
#define PGWARDEN_FAMILY_GAUGE(member, help, ...) metrics::Family<metrics::Gauge>& member;
#define PGWARDEN_FAMILY_HISTOGRAM(member, bounds, help, ...) metrics::Family<metrics::Histogram>& member;
  PGWARDEN_METRICS(PGWARDEN_FAMILY_COUNTER, PGWARDEN_FAMILY_GAUGE, PGWARDEN_FAMILY_HISTOGRAM)
#undef PGWARDEN_FAMILY_COUNTER
#undef PGWARDEN_FAMILY_GAUGE
#undef PGWARDEN_FAMILY_HISTOGRAM

  /// client_connections_total for how a startup ended.
  metrics::Counter& connection_result(ConnectionResult r) noexcept {
    return *connection_results_[static_cast<std::size_t>(r)];
  }
  /// connections_closed_total for why a connection closed.
  metrics::Counter& closed(CloseReason r) noexcept { return *closed_[static_cast<std::size_t>(r)]; }
  /// statements_total for a statement with classes `c` and this decision.
  metrics::Counter& statement(policy::ClassSet c, bool denied) noexcept {
    return *statements_[primary_class_index(c)][denied ? 1 : 0];
  }
  /// denials_total for a denial no rule made (the default, a protocol path).
  metrics::Counter& builtin_denial(policy::DecisionReason r) noexcept {
    return *builtin_denials_[static_cast<std::size_t>(r)];
  }
  /// denials_total / dry_run_denials_total of a named rule: a locked lookup,
  /// so callers keep the reference (per session, per rule).
  metrics::Counter& rule_denial(std::string_view rule) { return denials_total.add({{"rule", rule}}); }
  metrics::Counter& rule_dry_run_denial(std::string_view rule) { return dry_run_denials_total.add({{"rule", rule}}); }
  /// Makes every rule of `rules` visible (at 0) before it first denies; a
  /// reload calls it again for rules it adds.
  void add_rules(const policy::RuleSet& rules);

  /// Counts one TLS handshake; for the TLS code on either hop.
  void count_tls_handshake(TlsSide side, TlsResult result) noexcept {
    tls_handshakes_[static_cast<std::size_t>(side)][static_cast<std::size_t>(result)]->increment();
  }
  /// Counts a reload; a successful one also sets the success timestamp.
  void count_config_reload(bool ok, std::chrono::system_clock::time_point when);
  /// Sets the success timestamp for the configuration loaded at startup.
  void note_config_loaded(std::chrono::system_clock::time_point when);

  /// Children without a choice of label the data path updates directly.
  metrics::Counter& bytes_from_client;
  metrics::Counter& bytes_from_server;
  metrics::Counter& upstream_connect_errors;
  metrics::Histogram& statement_duration;
  metrics::Histogram& audit_durable_wait;

 private:
  std::array<metrics::Counter*, connection_result_count> connection_results_{};
  std::array<metrics::Counter*, close_reason_count> closed_{};
  std::array<std::array<metrics::Counter*, 2>, policy::statement_class_count + 1> statements_{};
  std::array<metrics::Counter*, policy::decision_reason_count> builtin_denials_{};
  std::array<std::array<metrics::Counter*, 2>, 2> tls_handshakes_{};
  std::array<metrics::Counter*, 2> config_reloads_{};
};

}  // namespace pgwarden::proxy
