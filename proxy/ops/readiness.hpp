#pragma once
/// Whether this pgwarden can serve clients right now, for /readyz: the
/// upstream accepts connections and every registered check passes (the
/// audit sink is writable, the process is not shutting down, ...).

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "proxy/net/asio.hpp"
#include "proxy/net/upstream.hpp"

namespace pgwarden::proxy {

class Readiness {
 public:
  /// Returns "" when its part is ready, else why not. Runs on the admin
  /// server's executor at each /readyz; must be quick and must not block.
  using Check = std::function<std::string()>;

  /// The upstream is probed with a plain connect bounded by `probe_timeout`
  /// (and the upstream's own connect timeout); an answer is reused for
  /// `cache_for`, so frequent probes do not each open a connection.
  explicit Readiness(UpstreamTarget upstream,
                     std::chrono::milliseconds probe_timeout = std::chrono::milliseconds(1000),
                     std::chrono::milliseconds cache_for = std::chrono::milliseconds(1000));

  /// Adds a check named `name` (the name prefixes its reason).
  void add_check(std::string name, Check check);

  /// "" when ready, else every reason, one per line.
  awaitable<std::string> check();

 private:
  awaitable<std::string> probe_upstream();

  UpstreamTarget upstream_;
  std::chrono::milliseconds cache_for_;
  std::vector<std::pair<std::string, Check>> checks_;
  std::chrono::steady_clock::time_point probed_at_{};
  bool probed_ = false;
  std::string upstream_problem_;  // the last probe's answer
};

}  // namespace pgwarden::proxy
