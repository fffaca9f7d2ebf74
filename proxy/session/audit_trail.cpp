#include "proxy/session/audit_trail.hpp"

#include <spdlog/spdlog.h>

#include "audit/key_file.hpp"

namespace pgwarden::proxy {

namespace {

void log_to_spdlog(audit::LogLevel level, std::string_view message) {
  switch (level) {
    case audit::LogLevel::Info: spdlog::info("audit: {}", message); break;
    case audit::LogLevel::Warning: spdlog::warn("audit: {}", message); break;
    case audit::LogLevel::Error: spdlog::error("audit: {}", message); break;
  }
}

/// Runs `handler(args...)` on `ex`: the log calls back on its writer thread,
/// and a session may only be resumed on its own.
template <class Handler, class... Args>
void resume_on(asio::any_io_executor ex, Handler&& handler, Args... args) {
  asio::post(ex, [h = std::forward<Handler>(handler), args...]() mutable { std::move(h)(args...); });
}

}  // namespace

std::unique_ptr<AuditTrail> AuditTrail::open(const config::AuditConfig& cfg, std::string& error) {
  if (!cfg.enabled()) return nullptr;
  audit::Options options;
  options.file = cfg.file;
  options.durability =
      cfg.durability == config::Durability::Synced ? audit::Durability::Synced : audit::Durability::Buffered;
  options.on_failure =
      cfg.on_failure == config::OnAuditFailure::Block ? audit::OnFailure::Block : audit::OnFailure::Continue;
  if (!cfg.hmac_key_file.empty() && !audit::read_hmac_key(cfg.hmac_key_file, options.hmac_key, error)) {
    error = "audit.hmac_key_file: " + error;
    return nullptr;
  }
  options.rotate_bytes = cfg.rotate_bytes;
  options.rotate_interval = cfg.rotate_interval;
  options.retention = cfg.retention;
  options.preallocate = cfg.preallocate;
  options.queue_records = cfg.queue_records;
  options.log = log_to_spdlog;
  auto log = audit::AuditLog::open(std::move(options), error);
  if (!log) {
    error = "audit.file: " + error;
    return nullptr;
  }
  std::unique_ptr<AuditTrail> trail(new AuditTrail());
  trail->log_ = std::move(log);
  trail->settings_ = cfg;
  trail->synced_ = cfg.durability == config::Durability::Synced;
  trail->blocks_ = cfg.on_failure == config::OnAuditFailure::Block;
  trail->encode_.parameters = cfg.parameters == config::AuditParameters::Full       ? audit::ParameterMode::Full
                              : cfg.parameters == config::AuditParameters::Redacted ? audit::ParameterMode::Redacted
                                                                                   : audit::ParameterMode::None;
  trail->encode_.redact_literals = cfg.redact_literals;
  return trail;
}

awaitable<bool> AuditTrail::durable(audit::Ticket ticket) {
  auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(bool)>(
      [this, ex, ticket](auto handler) {
        // std::function needs a copyable callable; the handler is move-only.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        log_->when_durable(ticket, [ex, shared](bool ok) { resume_on(ex, std::move(*shared), ok); });
      },
      asio::use_awaitable);
}

awaitable<void> AuditTrail::space() {
  auto ex = co_await asio::this_coro::executor;
  co_await asio::async_initiate<decltype(asio::use_awaitable), void()>(
      [this, ex](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        log_->when_space([ex, shared] { resume_on(ex, std::move(*shared)); });
      },
      asio::use_awaitable);
}

}  // namespace pgwarden::proxy
