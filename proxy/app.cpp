#include "proxy/app.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <sched.h>

#include <csignal>
#include <functional>
#include <iostream>
#include <thread>

#include "config/config.hpp"
#include "proxy/build_info.hpp"
#include "proxy/audit_trail.hpp"
#include "proxy/secret_store.hpp"
#include "proxy/server.hpp"
#include "proxy/session.hpp"

namespace pgwarden::proxy {

namespace {

awaitable<void> serve_client(tcp::socket socket, const SessionContext& ctx, bool over_limit) {
  error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) co_return;  // the client is already gone
  socket.set_option(tcp::no_delay(true), ec);
  Session session(Stream(std::move(socket)), peer, ctx);
  if (over_limit) session.refuse_at_startup("53300", "sorry, too many clients already");
  co_await session.run();
}

UpstreamTarget upstream_target(const config::Config& cfg) {
  UpstreamTarget t;
  t.host = cfg.upstream.host;
  t.port = cfg.upstream.port;
  t.unix_socket_dir = cfg.upstream.unix_socket;
  t.connect_timeout = cfg.upstream.connect_timeout;
  return t;
}

/// CPUs this process may run on (its affinity mask), which is what a
/// `taskset` or a container's cpuset allows, unlike hardware_concurrency().
unsigned usable_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) {
    return static_cast<unsigned>(CPU_COUNT(&set));
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

void setup_logging() {
  auto logger = spdlog::stderr_color_mt("pgwarden");
  spdlog::set_default_logger(logger);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
}

/// Configuration this build accepts but cannot honour yet. Starting anyway
/// would quietly weaken what the operator asked for (plaintext where TLS was
/// configured, statements run without the audit record they require), so
/// serve refuses with a clear message instead.
std::vector<std::string> unsupported_settings(const config::Config& cfg) {
  std::vector<std::string> out;
  if (cfg.admin.listen) out.push_back("admin.listen: the admin HTTP server is not available in this build yet");
  if (cfg.log.format == config::LogFormat::Json) out.push_back("log.format: json is not available in this build yet");
  return out;
}

spdlog::level::level_enum log_level(config::LogLevel l) {
  switch (l) {
    case config::LogLevel::Trace: return spdlog::level::trace;
    case config::LogLevel::Debug: return spdlog::level::debug;
    case config::LogLevel::Info: return spdlog::level::info;
    case config::LogLevel::Warn: return spdlog::level::warn;
    case config::LogLevel::Error: return spdlog::level::err;
    case config::LogLevel::Critical: return spdlog::level::critical;
    case config::LogLevel::Off: return spdlog::level::off;
  }
  return spdlog::level::info;
}

/// Builds both TLS contexts from `cfg` into `holder`; false with `error`
/// when a certificate, key or CA file cannot be used.
bool load_tls(const config::Config& cfg, TlsHolder& holder, std::string& error) {
  auto client = make_client_tls(cfg.tls, error);
  if (!error.empty()) return false;
  auto upstream = make_upstream_tls(cfg.upstream, error);
  if (!error.empty()) return false;
  holder.replace(std::move(client), std::move(upstream));
  return true;
}

/// Loads the auth_file (when configured) and the auth_query settings into
/// `store`; false with `error` when the file has errors.
bool load_secrets(const config::Config& cfg, SecretStore& store, std::string& error) {
  SecretStore::Settings settings;
  if (!cfg.auth.auth_file.empty()) {
    UserlistLoad loaded = load_userlist_file(cfg.auth.auth_file);
    if (!loaded.ok()) {
      for (const auto& d : loaded.errors) error += (error.empty() ? "" : "\n") + d.to_string();
      return false;
    }
    settings.userlist = std::move(loaded.userlist);
  }
  settings.auth_query = cfg.auth.auth_query;
  settings.auth_user = cfg.auth.auth_user;
  settings.cache_ttl = cfg.auth.cache_ttl;
  store.replace(std::move(settings));
  return true;
}

/// Loads the file again; a valid configuration replaces the one in force
/// (sessions pick it up from their next statement, new connections use the
/// certificates read now), an invalid one is reported and changes nothing.
/// Writes a config.reload record (when the audit log is on).
void audit_reload(AuditTrail* audit, const std::string& path, bool ok, std::string_view message) {
  if (!audit) return;
  audit::ConfigReloadRecord r;
  r.config_file = path;
  r.ok = ok;
  r.message = message;
  audit::RecordBuffer body;
  audit::encode(r, body);
  audit->log().submit(body.view());
}

void reload(const std::string& path, ConfigHolder& holder, TlsHolder& tls, SecretStore& secrets, AuditTrail* audit) {
  config::LoadResult loaded = config::load_config_file(path);
  for (const auto& d : loaded.warnings) spdlog::warn("{}", d.to_string());
  if (!loaded.config) {
    for (const auto& d : loaded.errors) spdlog::error("reload rejected: {}", d.to_string());
    spdlog::error("configuration reload failed; the previous configuration stays in force");
    audit_reload(audit, path, false, loaded.errors.empty() ? "invalid configuration" : loaded.errors[0].to_string());
    return;
  }
  if (auto missing = unsupported_settings(*loaded.config); !missing.empty()) {
    for (const auto& m : missing) spdlog::error("reload rejected: {}", m);
    return;
  }
  std::string error;
  if (!load_tls(*loaded.config, tls, error) || !load_secrets(*loaded.config, secrets, error)) {
    spdlog::error("reload rejected: {}", error);
    spdlog::error("configuration reload failed; the previous configuration stays in force");
    audit_reload(audit, path, false, error);
    return;
  }
  const auto& was = audit ? audit->settings() : config::AuditConfig{};
  const auto& now = loaded.config->audit;
  if (was.file != now.file || was.durability != now.durability || was.on_failure != now.on_failure ||
      was.hmac_key_file != now.hmac_key_file || was.parameters != now.parameters ||
      was.redact_literals != now.redact_literals) {
    spdlog::warn("audit settings changed; they take effect when pgwarden restarts");
  }
  holder.replace(loaded.config);
  spdlog::info("configuration reloaded from {}", path);
  audit_reload(audit, path, true, std::to_string(loaded.config->policy.rules().size()) + " rules in force");
}

}  // namespace

int serve(const std::string& config_path) {
  std::signal(SIGPIPE, SIG_IGN);  // a closed peer is an error code, not a signal
  setup_logging();
  config::LoadResult loaded = config::load_config_file(config_path);
  for (const auto& d : loaded.warnings) spdlog::warn("{}", d.to_string());
  if (!loaded.config) {
    for (const auto& d : loaded.errors) std::cerr << d.to_string() << "\n";
    return 2;
  }
  const config::Config& cfg = *loaded.config;
  if (auto missing = unsupported_settings(cfg); !missing.empty()) {
    for (const auto& m : missing) std::cerr << cfg.source << ": " << m << "\n";
    return 2;
  }
  spdlog::set_level(log_level(cfg.log.level));
  TlsHolder tls;
  SecretStore secrets;
  std::unique_ptr<AuditTrail> audit;
  if (std::string error; !load_tls(cfg, tls, error) || !load_secrets(cfg, secrets, error) ||
                         !(audit = AuditTrail::open(cfg.audit, error), error.empty())) {
    std::cerr << cfg.source << ": " << error << "\n";
    return 2;
  }

  CancelRegistry cancels;
  ConfigHolder config_holder(loaded.config);
  policy::ClassifyCache classify_cache;
  SessionContext ctx;
  ctx.config = &config_holder;
  ctx.tls = &tls;
  ctx.secrets = &secrets;
  ctx.audit = audit.get();
  ctx.classify_cache = &classify_cache;
  ctx.upstream = upstream_target(cfg);
  ctx.max_message_bytes = cfg.limits.max_message_bytes;
  ctx.startup_timeout = cfg.limits.startup_timeout;
  ctx.cancels = &cancels;

  std::unique_ptr<Server> server;
  try {
    std::vector<tcp::endpoint> endpoints;
    for (const auto& l : cfg.listen) {
      for (const auto& ep : resolve_listen_address(l.to_string())) endpoints.push_back(ep);
    }
    const std::size_t limit = cfg.limits.max_client_connections;
    server = std::make_unique<Server>(
        endpoints, usable_cpus(), [&ctx, &server, limit](tcp::socket s) {
          // The count includes this connection; the refused one still
          // negotiates so the client reads a proper FATAL 53300.
          return serve_client(std::move(s), ctx, server->connections() > limit);
        });
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen: {}", e.what());
    return 1;
  }

  asio::signal_set signals(server->main_context(), SIGINT, SIGTERM);
  signals.async_wait([&](const error_code& ec, int signo) {
    if (ec) return;
    spdlog::info("received signal {}, stopping", signo);
    server->stop();
  });
  asio::signal_set reload_signal(server->main_context(), SIGHUP);
  std::function<void()> wait_reload = [&] {
    reload_signal.async_wait([&](const error_code& ec, int) {
      if (ec) return;
      reload(config_path, config_holder, tls, secrets, audit.get());
      wait_reload();
    });
  };
  wait_reload();
  for (const auto& ep : server->local_endpoints()) {
    spdlog::info("pgwarden {} listening on {}:{}, upstream {}", version(), ep.address().to_string(),
                 ep.port(), ctx.upstream.describe());
  }
  server->run();
  if (audit) audit->log().close();  // everything accepted is written and synced
  spdlog::info("pgwarden stopped");
  return 0;
}

}  // namespace pgwarden::proxy
