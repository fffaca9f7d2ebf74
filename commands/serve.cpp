#include "commands/serve.hpp"

#include <spdlog/spdlog.h>

#include <sched.h>

#include <csignal>
#include <functional>
#include <iostream>
#include <thread>

#include "alerts/dispatcher.hpp"
#include "audit/directory_lock.hpp"
#include "config/config.hpp"
#include "proxy/ops/admin_routes.hpp"
#include "proxy/session/alerts_holder.hpp"
#include "proxy/session/audit_trail.hpp"
#include "proxy/ops/build_info.hpp"
#include "proxy/ops/lifecycle.hpp"
#include "proxy/ops/log_setup.hpp"
#include "proxy/ops/readiness.hpp"
#include "proxy/session/secret_store.hpp"
#include "proxy/session/catalog_lookup.hpp"
#include "proxy/net/server.hpp"
#include "proxy/session/upstream_pool.hpp"
#include "proxy/session/session.hpp"
#include "protocol/sqlstate.hpp"

namespace pgwarden::commands {

using namespace proxy;

namespace {

awaitable<void> serve_client(tcp::socket socket, Connection& connection, const SessionContext& ctx,
                             bool over_limit) {
  error_code ec;
  const tcp::endpoint peer = socket.remote_endpoint(ec);
  if (ec) co_return;  // the client is already gone
  socket.set_option(tcp::no_delay(true), ec);
  Session session(Stream(std::move(socket)), peer, ctx);
  if (over_limit) session.refuse_at_startup(std::string(protocol::sqlstate::too_many_connections), "sorry, too many clients already");
  connection.on_drain([&session](DrainMode mode) { session.drain(mode); });
  co_await session.run();
  connection.on_drain(nullptr);
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

/// Configuration this build accepts but cannot honour yet: starting anyway
/// would quietly weaken what the operator asked for, so serve refuses (and
/// a reload is rejected) with a clear message instead.
std::vector<std::string> unsupported_settings(const config::Config& cfg) {
  std::vector<std::string> out;
  // Sessions do not yet log people in: with identity configured, logins
  // would still go through as the roles they name, ungranted.
  if (cfg.identity.enabled())
    out.push_back("identity: people logins (people_file, certificate, token) and their grants are checked by "
                  "`pgwarden check` but not yet enforced by this build's sessions; remove identity: to serve");
  return out;
}

/// Builds both TLS contexts for `cfg`; null and `error` set when a
/// certificate, key or CA file cannot be used.
struct TlsContexts {
  std::shared_ptr<ClientTls> client;
  std::shared_ptr<UpstreamTls> upstream;
};
bool load_tls(const config::Config& cfg, TlsContexts& out, std::string& error) {
  out.client = make_client_tls(cfg.tls, error);
  if (!error.empty()) return false;
  out.upstream = make_upstream_tls(cfg.upstream, error);
  return error.empty();
}

/// Reads the auth_file (when configured) and the auth_query settings; false
/// with every error (file:line:col) when the file has errors.
bool load_secrets(const config::Config& cfg, SecretStore::Settings& out, std::string& error) {
  if (!cfg.auth.auth_file.empty()) {
    auth::UserlistLoad loaded = auth::load_userlist_file(cfg.auth.auth_file);
    if (!loaded.ok()) {
      for (const auto& d : loaded.errors) error += (error.empty() ? "" : "; ") + d.to_string();
      return false;
    }
    out.userlist = std::move(loaded.userlist);
  }
  out.auth_query = cfg.auth.auth_query;
  out.auth_user = cfg.auth.auth_user;
  out.cache_ttl = cfg.auth.cache_ttl;
  return true;
}

/// On reload: certificates and auth secrets are read again, and applied
/// only if the whole configuration is accepted.
void add_reload_hooks(LifecycleHooks& hooks, TlsHolder& tls, SecretStore& secrets) {
  hooks.reload.push_back([&tls](const config::Config& next) -> ReloadStep {
    TlsContexts contexts;
    std::string error;
    if (!load_tls(next, contexts, error)) return {{}, error};
    return {[&tls, contexts] { tls.replace(contexts.client, contexts.upstream); }, {}};
  });
  hooks.reload.push_back([&secrets](const config::Config& next) -> ReloadStep {
    auto settings = std::make_shared<SecretStore::Settings>();
    std::string error;
    if (!load_secrets(next, *settings, error)) return {{}, "auth.auth_file: " + error};
    return {[&secrets, settings] { secrets.replace(std::move(*settings)); }, {}};
  });
}

/// What a sink could not deliver goes to the audit log as alert.undelivered
/// (and to the operational log), so that no alert is lost without a trace.
alerts::UndeliveredHandler record_undelivered(AuditTrail* audit) {
  return [audit](const alerts::Alert& a, std::string_view sink, std::string_view why) {
    spdlog::warn("alert not delivered to {}: {}: {}", sink, why, alerts::summary(a));
    if (!audit) return;
    audit::AlertUndeliveredRecord r;
    r.sink = sink;
    r.error = why;
    r.alert_kind = alerts::to_string(a.kind);
    r.alert_time = a.time;
    r.session_id = a.session_id;
    r.user = a.user;
    r.database = a.database;
    r.application_name = a.application_name;
    r.client_addr = a.client_addr;
    r.text = a.statement;
    r.rule = a.rule;
    if (a.kind == alerts::AlertKind::Rule) r.decision = alerts::decision(a);
    r.dry_run = a.dry_run;
    r.count = a.count;
    r.alert_record_hash = a.record_hash;
    audit::RecordBuffer body;
    audit::encode(r, body);
    audit->log().submit(body.view());
  };
}

/// Alert delivery: a Dispatcher for the alerts section, made again when a
/// reload is accepted; a rejected reload is itself an alert. False with
/// `error` set when a sink cannot be made (an unreadable key file).
bool attach_alerts(AlertsHolder& holder, alerts::AlertMetrics& metrics, LifecycleHooks& hooks, AuditTrail* audit,
                   const config::Config& cfg, std::string& error) {
  if (cfg.alerts.enabled()) {
    auto d = alerts::Dispatcher::create(cfg.alerts, &metrics, record_undelivered(audit), error);
    if (!d) return false;
    holder.replace(std::move(d));
  }
  hooks.reload.push_back([&holder, &metrics, audit](const config::Config& next) -> ReloadStep {
    std::shared_ptr<alerts::Dispatcher> d;
    if (next.alerts.enabled()) {
      std::string why;
      d = alerts::Dispatcher::create(next.alerts, &metrics, record_undelivered(audit), why);
      if (!d) return {{}, "alerts: " + why};
    }
    return {[&holder, d] {
              // The old dispatcher gets a moment to finish what it holds.
              if (auto old = holder.replace(d)) old->stop(std::chrono::seconds(1));
            },
            {}};
  });
  hooks.reloaded.push_back([&holder](bool ok, std::string_view message) {
    if (ok) return;
    alerts::Alert a;
    a.kind = alerts::AlertKind::ConfigRejected;
    a.detail = message;
    a.time = std::chrono::system_clock::now();
    holder.raise(std::move(a));
  });
  // Before the audit log closes, so what is left is recorded there.
  hooks.shutdown.push_back([&holder] {
    if (auto old = holder.replace(nullptr)) old->stop(std::chrono::seconds(2));
  });
  return true;
}

/// The audit log's part in operations: a config.reload record per reload,
/// readiness while it can write, its metrics, and a flush before exit.
void attach_audit(AuditTrail& audit, LifecycleHooks& hooks, Readiness& readiness, ProxyMetrics& metrics,
                  const std::string& config_path) {
  hooks.reloaded.push_back([&audit, config_path](bool ok, std::string_view message) {
    audit::ConfigReloadRecord r;
    r.config_file = config_path;
    r.ok = ok;
    r.message = message;
    audit::RecordBuffer body;
    audit::encode(r, body);
    audit.log().submit(body.view());
  });
  hooks.shutdown.push_back([&audit] { audit.log().close(); });
  readiness.add_check("audit", [&audit] {
    return audit.log().writable() ? std::string() : std::string("the audit log cannot be written");
  });
  const audit::Stats& stats = audit.log().stats();
  metrics.audit_records_total.add_callback({}, [&stats] {
    return static_cast<double>(stats.records_written.load(std::memory_order_relaxed));
  });
  metrics.audit_write_errors_total.add_callback({}, [&stats] {
    return static_cast<double>(stats.write_errors.load(std::memory_order_relaxed));
  });
  metrics.audit_queue_depth.add_callback({}, [&stats] {
    return static_cast<double>(stats.queue_depth.load(std::memory_order_relaxed));
  });
  metrics.audit_sync_seconds.add_callback({}, [&stats] {
    metrics::HistogramSnapshot snapshot;
    for (const auto& bucket : stats.sync_buckets) snapshot.buckets.push_back(bucket.load(std::memory_order_relaxed));
    snapshot.sum = static_cast<double>(stats.sync_sum_us.load(std::memory_order_relaxed)) / 1e6;
    return snapshot;
  });
}

/// The admin HTTP server on the main event loop, when admin.listen is set.
std::unique_ptr<AdminServer> start_admin(Server& server, const config::Config& cfg,
                                         const metrics::Registry& registry, Readiness& readiness) {
  if (!cfg.admin.listen) return nullptr;
  const auto endpoints = resolve_listen_address(cfg.admin.listen->to_string());
  auto admin = std::make_unique<AdminServer>(server.main_context(), endpoints.front());
  add_admin_routes(*admin, registry, readiness);
  admin->start();
  const auto ep = admin->local_endpoint();
  spdlog::info("admin endpoints on http://{}:{} (/metrics /healthz /readyz)", ep.address().to_string(), ep.port());
  return admin;
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
  configure_logging(cfg.log);
  // One owner per audit directory, settled before this process binds a
  // socket or touches a file of the log.
  std::unique_ptr<audit::DirectoryLock> audit_lock;
  if (cfg.audit.enabled()) {
    std::string error;
    if (!(audit_lock = audit::DirectoryLock::acquire(cfg.audit.file, error))) {
      std::cerr << cfg.source << ": audit.file: " << error << "\n";
      return 1;
    }
  }
  TlsHolder tls;
  SecretStore secrets;
  {
    TlsContexts contexts;
    SecretStore::Settings settings;
    std::string error;
    if (!load_tls(cfg, contexts, error) || !load_secrets(cfg, settings, error)) {
      std::cerr << cfg.source << ": " << error << "\n";
      return 2;
    }
    tls.replace(std::move(contexts.client), std::move(contexts.upstream));
    secrets.replace(std::move(settings));
  }

  // Each database's catalog, read as catalog_lookup.user; outlives the sessions.
  CatalogLookup catalogs(upstream_target(cfg), &tls);
  catalogs.replace(cfg.catalog_lookup);

  CancelRegistry cancels;
  ConfigHolder config_holder(loaded.config);
  policy::ClassifyCache classify_cache;
  SessionContext ctx;
  ctx.config = &config_holder;
  ctx.tls = &tls;
  ctx.secrets = &secrets;
  ctx.classify_cache = &classify_cache;
  ctx.catalogs = &catalogs;
  ctx.upstream = upstream_target(cfg);
  ctx.max_message_bytes = cfg.limits.max_message_bytes;
  ctx.startup_timeout = cfg.limits.startup_timeout;
  ctx.cancels = &cancels;

  // Operations: metrics, readiness, and the hooks other modules add (TLS
  // certificates on reload, the audit log's flush at exit).
  metrics::Registry registry;
  ProxyMetrics metrics(registry);
  metrics.add_rules(cfg.policy);
  metrics.note_config_loaded(std::chrono::system_clock::now());
  ctx.metrics = &metrics;
  Readiness readiness(ctx.upstream);
  LifecycleHooks hooks;
  add_reload_hooks(hooks, tls, secrets);
  hooks.reload.push_back([&catalogs](const config::Config& next) -> ReloadStep {
    return {[&catalogs, settings = next.catalog_lookup] { catalogs.replace(settings); }, {}};
  });

  std::unique_ptr<AuditTrail> audit;  // opened once every socket is bound; outlives the sessions
  std::unique_ptr<Server> server;
  std::unique_ptr<AdminServer> admin;  // destroyed before the server's event loops
  UpstreamPool pools;                  // likewise: pooled connections belong to those loops
  ctx.pools = &pools;
  metrics.pool_idle_connections.add_callback({}, [&pools] { return static_cast<double>(pools.idle()); });
  try {
    std::vector<tcp::endpoint> endpoints;
    for (const auto& l : cfg.listen) {
      for (const auto& ep : resolve_listen_address(l.to_string())) endpoints.push_back(ep);
    }
    const std::size_t limit = cfg.limits.max_client_connections;
    server = std::make_unique<Server>(
        endpoints, cfg.workers != 0 ? cfg.workers : usable_cpus(), [&ctx, &server, limit](tcp::socket s, Connection& c) {
          // The count includes this connection; the refused one still
          // negotiates so the client reads a proper FATAL 53300.
          return serve_client(std::move(s), c, ctx, server->connections() > limit);
        });
    admin = start_admin(*server, cfg, registry, readiness);
  } catch (const std::exception& e) {
    spdlog::critical("cannot listen: {}", e.what());
    return 1;
  }
  metrics.client_connections.add_callback({}, [&server] { return static_cast<double>(server->connections()); });

  // Every socket is bound: only now may the audit log move the previous
  // run's file aside and begin its own.
  {
    std::string error;
    if (audit = AuditTrail::open(cfg.audit, error); !error.empty()) {
      std::cerr << cfg.source << ": " << error << "\n";
      return 2;
    }
  }
  ctx.audit = audit.get();
  alerts::AlertMetrics alert_metrics(registry);
  AlertsHolder alerts_holder;  // outlives the sessions, stopped before the audit log closes
  {
    std::string error;
    if (!attach_alerts(alerts_holder, alert_metrics, hooks, audit.get(), cfg, error)) {
      std::cerr << cfg.source << ": alerts: " << error << "\n";
      return 2;
    }
  }
  ctx.alerts = &alerts_holder;
  if (audit) attach_audit(*audit, hooks, readiness, metrics, cfg.source);

  Lifecycle lifecycle(*server, config_holder, config_path, metrics, hooks, unsupported_settings);
  readiness.add_check("shutdown", [&lifecycle] { return lifecycle.stopping() ? "pgwarden is shutting down" : ""; });
  lifecycle.start();
  for (const auto& ep : server->local_endpoints()) {
    spdlog::info("pgwarden {} listening on {}:{}, upstream {}", version(), ep.address().to_string(),
                 ep.port(), ctx.upstream.describe());
  }
  server->run();
  pools.clear();
  if (auto d = alerts_holder.replace(nullptr)) d->stop(std::chrono::seconds(2));
  if (audit) audit->log().close();  // also when the drain gave up on sessions that would not end
  spdlog::info("pgwarden stopped");
  return 0;
}

}  // namespace pgwarden::commands
