#include "proxy/ops/lifecycle.hpp"

#include <spdlog/spdlog.h>

#include <csignal>
#include <ctime>

#include "proxy/ops/log_setup.hpp"
#include "proxy/ops/sd_notify.hpp"

namespace pgwarden::proxy {

namespace {

/// After closing every session: how long they get to send their FATAL and
/// go before the process exits regardless.
constexpr std::chrono::seconds exit_grace{5};

/// Settings the running process read once at startup.
std::vector<std::string_view> restart_only_changes(const config::Config& was, const config::Config& now) {
  std::vector<std::string_view> out;
  if (was.listen != now.listen) out.push_back("listen");
  if (was.workers != now.workers) out.push_back("workers");
  if (was.admin.listen != now.admin.listen) out.push_back("admin.listen");
  if (was.upstream.host != now.upstream.host || was.upstream.port != now.upstream.port ||
      was.upstream.unix_socket != now.upstream.unix_socket ||
      was.upstream.connect_timeout != now.upstream.connect_timeout) {
    out.push_back("upstream");
  }
  if (was.audit.file != now.audit.file || was.audit.durability != now.audit.durability ||
      was.audit.on_failure != now.audit.on_failure || was.audit.hmac_key_file != now.audit.hmac_key_file ||
      was.audit.parameters != now.audit.parameters || was.audit.redact_literals != now.audit.redact_literals ||
      was.audit.rotate_bytes != now.audit.rotate_bytes || was.audit.rotate_interval != now.audit.rotate_interval ||
      was.audit.retention != now.audit.retention || was.audit.preallocate != now.audit.preallocate) {
    out.push_back("audit");
  }
  if (was.limits.max_client_connections != now.limits.max_client_connections ||
      was.limits.startup_timeout != now.limits.startup_timeout ||
      was.limits.max_message_bytes != now.limits.max_message_bytes) {
    out.push_back("limits (other than idle_timeout)");
  }
  return out;
}

/// sd_notify's RELOADING=1 carries the monotonic time (systemd's notify-reload).
void notify_reloading() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const auto usec = static_cast<std::uint64_t>(ts.tv_sec) * 1000000u + static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
  sd_notify("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec));
}

}  // namespace

Lifecycle::Lifecycle(Server& server, ConfigHolder& config, std::string config_path, ProxyMetrics& metrics,
                     LifecycleHooks& hooks, Validator validate)
    : server_(server),
      config_(config),
      config_path_(std::move(config_path)),
      metrics_(metrics),
      hooks_(hooks),
      validate_(std::move(validate)),
      stop_signals_(server.main_context(), SIGINT, SIGTERM),
      reload_signal_(server.main_context(), SIGHUP),
      drain_deadline_(server.main_context()),
      exit_deadline_(server.main_context()) {}

void Lifecycle::start() {
  wait_stop_signal();
  wait_reload_signal();
  sd_notify("READY=1");
}

void Lifecycle::wait_stop_signal() {
  stop_signals_.async_wait([this](const error_code& ec, int signo) {
    if (ec) return;
    if (signo == SIGTERM && !stopping_) {
      log_event(spdlog::level::info, "received SIGTERM", {});
      drain();
    } else {
      log_event(spdlog::level::info, signo == SIGINT ? "received SIGINT" : "received a second SIGTERM", {});
      shut_down_now();
    }
    wait_stop_signal();
  });
}

void Lifecycle::wait_reload_signal() {
  reload_signal_.async_wait([this](const error_code& ec, int) {
    if (ec) return;
    reload();
    wait_reload_signal();
  });
}

bool Lifecycle::reload() {
  notify_reloading();
  config::LoadResult loaded = config::load_config_file(config_path_);
  for (const auto& d : loaded.warnings) spdlog::warn("{}", d.to_string());
  if (!loaded.config) {
    for (const auto& d : loaded.errors) spdlog::error("reload rejected: {}", d.to_string());
    return reject_reload(loaded.errors.empty() ? "invalid configuration" : loaded.errors.front().to_string());
  }
  if (auto problems = validate_(*loaded.config); !problems.empty()) {
    for (const auto& p : problems) spdlog::error("reload rejected: {}", p);
    return reject_reload(problems.front());
  }
  std::vector<std::function<void()>> commits;
  for (const auto& hook : hooks_.reload) {
    ReloadStep step = hook(*loaded.config);
    if (!step.error.empty()) {
      spdlog::error("reload rejected: {}", step.error);
      return reject_reload(step.error);
    }
    if (step.commit) commits.push_back(std::move(step.commit));
  }
  const config::ConfigPtr previous = config_.current();
  config_.replace(loaded.config);
  for (auto& commit : commits) commit();
  configure_logging(loaded.config->log);
  metrics_.add_rules(loaded.config->policy);
  metrics_.count_config_reload(true, std::chrono::system_clock::now());
  for (std::string_view s : restart_only_changes(*previous, *loaded.config)) {
    spdlog::warn("{} changed: it takes effect when pgwarden restarts", s);
  }
  spdlog::info("configuration reloaded from {}", config_path_);
  const std::string summary = std::to_string(loaded.config->policy.rules().size()) + " rules in force";
  for (const auto& hook : hooks_.reloaded) hook(true, summary);
  sd_notify("READY=1");
  return true;
}

bool Lifecycle::reject_reload(std::string_view why) {
  for (const auto& hook : hooks_.reloaded) hook(false, why);
  metrics_.count_config_reload(false, {});
  spdlog::error("configuration reload failed; the previous configuration stays in force");
  sd_notify("READY=1");
  return false;
}

void Lifecycle::drain() {
  if (stopping_) return;
  stopping_ = true;
  const auto timeout = config_.current()->shutdown_timeout;
  log_event(spdlog::level::info, "draining: no new connections; sessions end at their next transaction boundary",
            {{"shutdown_timeout_ms", std::int64_t{timeout.count()}}});
  sd_notify("STOPPING=1");
  server_.drain(DrainMode::Graceful);
  drain_deadline_.expires_after(timeout);
  drain_deadline_.async_wait([this](const error_code& ec) {
    if (ec) return;
    log_event(spdlog::level::warn, "shutdown_timeout reached: closing the sessions still open", {});
    shut_down_now();
  });
  server_.when_idle([this] { finish(); });
}

void Lifecycle::shut_down_now() {
  if (immediate_) return;
  immediate_ = true;
  if (!stopping_) {
    stopping_ = true;
    sd_notify("STOPPING=1");
    server_.when_idle([this] { finish(); });
  }
  drain_deadline_.cancel();
  server_.drain(DrainMode::Immediate);
  exit_deadline_.expires_after(exit_grace);
  exit_deadline_.async_wait([this](const error_code& ec) {
    if (ec) return;
    log_event(spdlog::level::err, "sessions still open after being closed; exiting anyway",
              {{"connections", std::uint64_t{server_.connections()}}});
    finish();
  });
}

void Lifecycle::finish() {
  if (finished_) return;
  finished_ = true;
  drain_deadline_.cancel();
  exit_deadline_.cancel();
  error_code ignored;
  stop_signals_.cancel(ignored);
  reload_signal_.cancel(ignored);
  for (const auto& hook : hooks_.shutdown) hook();
  log_event(spdlog::level::info, "every session has ended", {});
  server_.stop();
}

}  // namespace pgwarden::proxy
