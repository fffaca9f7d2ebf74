#pragma once
/// The process around the server: SIGHUP reloads the configuration; SIGTERM
/// drains (stop accepting at once, each session ends at its next transaction
/// boundary, the rest at shutdown_timeout), then runs the shutdown hooks and
/// stops; a second SIGTERM, or SIGINT, closes every session at once.
/// Sessions are closed with FATAL 57P01, as PostgreSQL does on shutdown.
///
/// Modules that must act on a reload (TLS certificates) or before exit (the
/// audit log's flush) register hooks in LifecycleHooks, so this file need not
/// know them.

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "config/config.hpp"
#include "proxy/net/asio.hpp"
#include "proxy/session/config_holder.hpp"
#include "proxy/session/proxy_metrics.hpp"
#include "proxy/net/server.hpp"

namespace pgwarden::proxy {

/// What a reload hook prepared: `commit` puts it in force, or `error` says
/// why the new configuration cannot be used.
struct ReloadStep {
  std::function<void()> commit;
  std::string error;
};

/// Hooks other modules add before the server starts.
struct LifecycleHooks {
  /// Called with a new, valid configuration before it is put in force. A
  /// hook prepares what it needs (reads new certificates) without applying
  /// it and returns the step that does. If any hook fails, no step runs and
  /// the reload fails; otherwise every commit runs right after the swap.
  std::vector<std::function<ReloadStep(const config::Config& next)>> reload;
  /// Called after every reload attempt: whether it took effect, and why not
  /// (or a summary of what is in force). The audit log records it.
  std::vector<std::function<void(bool ok, std::string_view message)>> reloaded;
  /// Called once on the main context after every session has ended, before
  /// the process exits (flush and close the audit log).
  std::vector<std::function<void()>> shutdown;
};

class Lifecycle {
 public:
  /// Problems that keep a loaded configuration from being served (empty: none).
  using Validator = std::function<std::vector<std::string>(const config::Config&)>;

  /// Everything referenced must outlive the Lifecycle.
  Lifecycle(Server& server, ConfigHolder& config, std::string config_path, ProxyMetrics& metrics,
            LifecycleHooks& hooks, Validator validate);

  /// Arms the signal handlers on the server's main context and tells a
  /// systemd service manager that the proxy is ready.
  void start();
  /// Loads the configuration file again and puts it in force if it is valid
  /// and every hook accepts it; what SIGHUP does. Returns whether it did.
  bool reload();
  /// Begins the drain (what the first SIGTERM does).
  void drain();
  /// Closes every session now and stops (a second SIGTERM, SIGINT).
  void shut_down_now();
  /// True once a drain or shutdown has begun.
  bool stopping() const { return stopping_; }

 private:
  void wait_stop_signal();
  void wait_reload_signal();
  bool reject_reload(std::string_view why);
  void finish();

  Server& server_;
  ConfigHolder& config_;
  std::string config_path_;
  ProxyMetrics& metrics_;
  LifecycleHooks& hooks_;
  Validator validate_;
  asio::signal_set stop_signals_;
  asio::signal_set reload_signal_;
  asio::steady_timer drain_deadline_;
  asio::steady_timer exit_deadline_;
  bool stopping_ = false;
  bool immediate_ = false;
  bool finished_ = false;
};

}  // namespace pgwarden::proxy
