#include "proxy/ops/readiness.hpp"

namespace pgwarden::proxy {

Readiness::Readiness(UpstreamTarget upstream, std::chrono::milliseconds probe_timeout,
                     std::chrono::milliseconds cache_for)
    : upstream_(std::move(upstream)), cache_for_(cache_for) {
  upstream_.connect_timeout = std::min(upstream_.connect_timeout, probe_timeout);
}

void Readiness::add_check(std::string name, Check check) { checks_.emplace_back(std::move(name), std::move(check)); }

awaitable<std::string> Readiness::probe_upstream() {
  const auto now = std::chrono::steady_clock::now();
  if (probed_ && now - probed_at_ < cache_for_) co_return upstream_problem_;
  // Reachability is the question, so a plain connection (no TLS, no login).
  std::shared_ptr<UpstreamTls> no_tls;
  UpstreamConnection conn = co_await connect_upstream(upstream_, std::move(no_tls));
  if (conn.stream) conn.stream->close();
  upstream_problem_ = conn.stream ? "" : "upstream " + upstream_.describe() + " unreachable: " + conn.error;
  probed_at_ = std::chrono::steady_clock::now();
  probed_ = true;
  co_return upstream_problem_;
}

awaitable<std::string> Readiness::check() {
  std::string reasons = co_await probe_upstream();
  if (!reasons.empty()) reasons += '\n';
  for (const auto& [name, check] : checks_) {
    const std::string why = check();
    if (!why.empty()) reasons += name + ": " + why + "\n";
  }
  co_return reasons;
}

}  // namespace pgwarden::proxy
