#pragma once
/// One client connection and the upstream connection behind it (session
/// mode): startup negotiation, then one relay coroutine per direction that
/// forwards original bytes and inspects only the messages it must see.

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "protocol/framer.hpp"
#include "protocol/messages.hpp"
#include "policy/classify_cache.hpp"
#include "policy/client_encoding.hpp"
#include "policy/evaluator.hpp"
#include "audit/audit_log.hpp"
#include "audit/record.hpp"
#include "proxy/session/config_holder.hpp"
#include "proxy/net/asio.hpp"
#include "proxy/net/batch.hpp"
#include "proxy/net/byte_buffer.hpp"
#include "proxy/session/cancel_registry.hpp"
#include "proxy/session/close_reason.hpp"
#include "proxy/session/proxy_metrics.hpp"
#include "proxy/session/client_login.hpp"
#include "proxy/session/server_lease.hpp"
#include "proxy/session/session_audit.hpp"
#include "proxy/session/session_counters.hpp"
#include "proxy/session/session_policy.hpp"
#include "proxy/session/statement_gate.hpp"
#include "proxy/net/server.hpp"
#include "proxy/net/stream.hpp"
#include "proxy/net/tls.hpp"
#include "proxy/net/upstream.hpp"
#include "proxy/session/upstream_pool.hpp"

namespace pgwarden::proxy {

/// What every session of one server shares. Owned by the Server and
/// outliving every session.
struct SessionContext {
  UpstreamTarget upstream;
  std::size_t max_message_bytes = 64u << 20;
  std::chrono::milliseconds startup_timeout{15000};
  CancelRegistry* cancels = nullptr;
  ConfigHolder* config = nullptr;
  TlsHolder* tls = nullptr;
  class SecretStore* secrets = nullptr;  ///< for auth: scram
  class AuditTrail* audit = nullptr;     ///< null when the audit log is off
  class UpstreamPool* pools = nullptr;   ///< reuse of server connections (auth: scram)
  policy::ClassifyCache* classify_cache = nullptr;
  class CatalogLookup* catalogs = nullptr;  ///< each database's catalog; null: calls not known stay FUNCTION
  ProxyMetrics* metrics = nullptr;  ///< the process's; required
  class AlertsHolder* alerts = nullptr;  ///< null when alerts are off
};

/// One client and the server behind it. A thin coroutine shell that owns
/// the two streams and composes the objects that own the session's state:
/// SessionPolicy (configuration and facts), StatementGate (every statement
/// decided, the protocol position), SessionAudit (records), SessionCounters
/// (metrics), ClientLogin (authentication) and ServerLease (the backend).
class Session : private GateObserver {
 public:
  Session(Stream client, tcp::endpoint peer, const SessionContext& ctx);
  ~Session();

  /// Serves the connection until either side closes; never throws.
  awaitable<void> run();

  /// Refuses the client once its startup packet is read (before any upstream
  /// connection), as PostgreSQL does for too many connections.
  void refuse_at_startup(std::string sqlstate, std::string message) {
    refusal_ = Refusal{std::move(sqlstate), std::move(message)};
  }

  /// Asks the session to end with FATAL 57P01, as PostgreSQL does on an
  /// administrator's shutdown: Graceful at its next transaction boundary
  /// (idle, outside a transaction, nothing in flight), so clients leave
  /// between transactions; Immediate at once. Call on the session's executor.
  void drain(DrainMode mode);

 private:
  struct Refusal {
    std::string sqlstate, message;
  };

  awaitable<CloseReason> serve();
  awaitable<CloseReason> negotiate();
  awaitable<CloseReason> start_tls(bool direct);
  /// A startup packet that is not one: answered as PostgreSQL answers it.
  CloseReason refuse_startup_packet(std::error_code ec);
  CloseReason check_connect(const protocol::StartupMessage& startup);
  void refresh_config();

  // auth: scram (authenticate.cpp).
  void prepare_upstream_startup(const protocol::StartupMessage& startup, std::string_view original);
  awaitable<CloseReason> authenticate_client();
  awaitable<CloseReason> authenticate_scram(class MessageReader& reader);
  awaitable<CloseReason> authenticate_md5(class MessageReader& reader);
  awaitable<std::optional<protocol::Frame>> read_password_message(class MessageReader& reader);
  awaitable<CloseReason> login_upstream(std::shared_ptr<X509> server_certificate);
  awaitable<CloseReason> admit_client();
  CloseReason fail_auth(const auth::AuthFailure& failure);
  CloseReason upstream_login_failed(std::string_view why);

  // Session pooling (session_pool.cpp).
  bool pooling() const;
  bool poolable() const;
  awaitable<CloseReason> adopt_pooled(PooledServer pooled);
  void return_to_pool();
  std::string issue_backend_key(std::int32_t process_id, std::string_view secret_key);

  // The relay (relay.cpp).
  awaitable<bool> read_client(std::size_t min_free);
  awaitable<CloseReason> relay();
  awaitable<CloseReason> relay_client();
  awaitable<CloseReason> relay_server();
  CloseReason on_client_frame(const protocol::Frame& f, std::size_t offset, Batch& out);
  void on_server_frame(const protocol::Frame& f, std::size_t offset, Batch& out);
  void on_ready_for_query(char status);
  bool rewrite_backend_key(const protocol::Frame& f, Batch& out);
  void track_parameter(const protocol::Frame& f);
  /// A ParameterStatus the session follows: how the server reads SQL text
  /// (the gate's), application_name (the rules' and the records').
  void note_parameter(std::string_view name, std::string_view value);
  /// Notes the server's authentication request; an AuthenticationSASL is
  /// relayed without SCRAM-SHA-256-PLUS (substituted into `out`, true).
  bool note_auth_request(const protocol::Frame& f, Batch& out);
  /// An ErrorResponse before the first ReadyForQuery: the server refused the
  /// startup, and the connection is counted as such.
  void note_startup_refusal(const protocol::Frame& f);
  void audit_auth_failure(const protocol::Frame& f);
  /// Why the session ends when reading from the server failed with `ec`.
  CloseReason server_closed(error_code ec);
  CloseReason check_sasl_passthrough(const protocol::Frame& f);
  awaitable<void> cancel_upstream(std::string_view packet);
  /// Records the FATAL error the client gets once both directions stopped.
  CloseReason fail(std::string_view sqlstate, std::string_view message,
                   CloseReason reason = CloseReason::ClientProtocolError);
  awaitable<void> send_fatal();

  // The statement gate's observer (session_operations.cpp).
  void decided(const policy::Decision& d) override;
  void counted(const policy::ClassifiedText& text, const policy::Decision& d) override;
  void read(std::string_view protocol, std::string_view sql, const policy::Decision& d) override;
  void refused(const GatedStatement& s, const policy::Decision& d) override;
  bool forwarding(const GatedStatement& s, const AuditedDecision& d) override;
  void sync_point_begun(std::uint64_t n, std::optional<std::chrono::system_clock::time_point> decided) override;
  /// Raises an alert for a statement decided by a rule with alert: true
  /// (a connect refusal when `s` is null), its text redacted as the audit
  /// log redacts it.
  void raise_alert(const GatedStatement* s, std::string_view rule, bool denied, bool dry_run);
  policy::DatabaseCatalogPtr catalog() override;

  // The database's catalog (session_catalog.cpp): the first lookup waited
  // for, and DDL seen on the way back making it be read again.
  /// catalog_lookup is configured: only then does the session ask for a
  /// catalog or watch CommandComplete tags for DDL (no lock per statement otherwise).
  bool catalog_lookup_on() const { return ctx_.catalogs && policy_.config().catalog_lookup.enabled(); }
  awaitable<void> await_catalog();
  void note_command_complete(const protocol::Frame& f);
  void note_catalog_ready();

  // Operations (session_operations.cpp): drain, timeouts, the operational log.
  awaitable<CloseReason> watchdog();
  bool arm_idle_timer();
  void poke_watchdog();
  bool at_transaction_boundary() const;
  bool drain_now() const;  ///< draining, and nothing to wait for (immediate, or not logged in)
  bool drain_due();        ///< draining, and at a point where the session may end
  void stop_reading_client();
  CloseReason shut_down();
  void log_close(CloseReason reason) const;

  Stream client_;
  tcp::endpoint peer_;
  const SessionContext& ctx_;
  std::shared_ptr<ClientTls> client_tls_;      // taken at accept; kept while the stream lives
  std::shared_ptr<UpstreamTls> upstream_tls_;  // taken at upstream connect
  std::optional<Stream> server_;
  asio::steady_timer watchdog_timer_;  // startup timeout, then idle timeout
  bool watchdog_poked_ = false;

  /// One relay direction: what was read, how it is framed, and what the
  /// current step sends on (to the other side).
  struct Direction {
    ByteBuffer in;
    protocol::Framer framer;
    Batch out;
  };
  Direction from_client_;
  Direction from_server_;

  SessionPolicy policy_;
  SessionCounters counters_;
  SessionAudit audit_;
  StatementGate gate_;
  ClientLogin login_;
  ServerLease lease_;
  struct CatalogState {
    bool awaited = false;  ///< the first lookup was waited for
    bool changed = false;  ///< DDL ran in the open transaction: read again once it ends
  } catalog_;

  std::optional<Refusal> refusal_;  // refuse_at_startup()
  std::string fatal_;               // ErrorResponse to send before closing
  bool terminated_ = false;         // client sent Terminate
  /// When the session last became idle outside a transaction; max() while busy.
  std::chrono::steady_clock::time_point idle_since_ = std::chrono::steady_clock::time_point::max();
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  bool writing_to_client_ = false;  // a write to the client is under way, or failed part-way
  std::optional<DrainMode> drain_;
  /// Draining and at a boundary: the client read was cancelled, and ends the
  /// session unless it had already received something (see stop_reading_client).
  bool drain_stop_ = false;
};

}  // namespace pgwarden::proxy
