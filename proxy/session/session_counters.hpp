#pragma once
/// What one session counts into the process's metrics: statements by class
/// and decision, denials by rule, the connection's result and close reason,
/// bytes, and each sync point's duration. Everything on the data path is a
/// relaxed atomic add on a child resolved in advance.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "policy/evaluator.hpp"
#include "proxy/session/close_reason.hpp"
#include "proxy/session/proxy_metrics.hpp"

namespace pgwarden::proxy {

class SessionCounters {
 public:
  explicit SessionCounters(ProxyMetrics& metrics) : metrics_(metrics) {}

  /// One run of `text` decided `d`, under `rules`.
  void count_execution(const policy::RuleSet& rules, const policy::ClassifiedText& text, const policy::Decision& d);
  void count_denial(const policy::RuleSet& rules, const policy::Decision& d);
  /// The rules were reloaded: the children resolved for the old ones go.
  void rules_changed() { rule_counters_.clear(); }

  /// The result of the startup, known before the session ends.
  void set_startup_result(ConnectionResult r) { startup_result_ = r; }
  std::optional<ConnectionResult> startup_result() const { return startup_result_; }
  /// Counts the connection's result, once.
  void count_connection(ConnectionResult r);
  /// Counts the close, and the connection's result when the startup never
  /// got as far as the upstream.
  void count_close(CloseReason reason);

  /// Sync point `n` began; its statements were first decided at `decided`.
  void sync_point_begun(std::uint64_t n, std::optional<std::chrono::system_clock::time_point> decided);
  /// The ReadyForQuery that made `ready_seen` answered sync point `ready_seen`.
  void sync_point_answered(std::uint64_t ready_seen);

  void from_client(std::size_t n) {
    bytes_from_client_ += n;
    metrics_.bytes_from_client.increment(n);
  }
  void from_server(std::size_t n) {
    bytes_from_server_ += n;
    metrics_.bytes_from_server.increment(n);
  }
  void to_client(std::size_t n) { bytes_to_client_ += n; }
  std::uint64_t bytes_from_client() const { return bytes_from_client_; }
  std::uint64_t bytes_from_server() const { return bytes_from_server_; }
  std::uint64_t bytes_to_client() const { return bytes_to_client_; }

 private:
  metrics::Counter& rule_counter(const policy::RuleSet& rules, const policy::Rule& rule, bool dry_run);

  /// When a sync point's statements were decided, for statement_duration.
  struct SyncStart {
    std::uint64_t sync_point = 0;  ///< 0: slot unused
    std::chrono::system_clock::time_point at;
  };

  ProxyMetrics& metrics_;
  /// denials_total / dry_run_denials_total children by rule index, resolved
  /// at a rule's first denial in this session.
  std::vector<std::pair<metrics::Counter*, metrics::Counter*>> rule_counters_;
  std::optional<ConnectionResult> startup_result_;
  bool connection_counted_ = false;
  std::array<SyncStart, 16> sync_starts_{};
  std::uint64_t bytes_from_client_ = 0;
  std::uint64_t bytes_from_server_ = 0;
  std::uint64_t bytes_to_client_ = 0;  ///< rewritten and pgwarden's own messages included
};

}  // namespace pgwarden::proxy
