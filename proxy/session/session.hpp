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
#include "policy/database_catalog.hpp"
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
#include "auth/scram.hpp"
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
  /// Never null: sessions built without the process's metrics count into a
  /// registry nobody scrapes.
  ProxyMetrics* metrics = &ProxyMetrics::detached();
};

class Session {
 public:
  Session(Stream client, tcp::endpoint peer, const SessionContext& ctx);
  ~Session();

  /// Serves the connection until either side closes; never throws.
  awaitable<void> run();

  /// Refuses the client once its startup packet is read (before any upstream
  /// connection), as PostgreSQL does for too many connections.
  void refuse_at_startup(std::string sqlstate, std::string message) {
    refusal_sqlstate_ = std::move(sqlstate);
    refusal_message_ = std::move(message);
  }

  /// Asks the session to end with FATAL 57P01, as PostgreSQL does on an
  /// administrator's shutdown: Graceful at its next transaction boundary
  /// (idle, outside a transaction, nothing in flight), so clients leave
  /// between transactions; Immediate at once. Call on the session's executor.
  void drain(DrainMode mode);

 private:
  // The per-statement state the audit encoder (session_audit.cpp) reads.
 public:
  /// A prepared statement: what Parse carried.
  struct Prepared {
    policy::ClassifiedTextPtr classified;
    std::string text;
    std::uint64_t denied_at = 0;  // the sync point whose Parse was denied; 0 if allowed
  };
  /// What the audit record keeps of an allow decision (its views would
  /// dangle after a reload).
  struct AuditedDecision {
    std::string_view rule;
    bool dry_run = false;
    bool alert = false;
  };
  /// A portal: the statement its Execute runs, the decision made at Bind and
  /// the parameters bound (kept only when audit.parameters records them).
  struct Portal {
    std::shared_ptr<const Prepared> statement;
    std::string statement_name;
    std::string rule;
    bool dry_run = false;
    bool alert = false;
    std::vector<std::string> params;
    std::vector<std::uint8_t> param_flags;  // bit 0 NULL, bit 1 binary
  };
  /// A statement forwarded whose outcome the server has yet to report.
  struct PendingStatement {
    std::uint64_t sync_point = 0;  // the Sync/Query whose ReadyForQuery ends it
    std::uint64_t id = 0;
    audit::Protocol protocol = audit::Protocol::Simple;
    policy::ClassifiedTextPtr classified;
    std::uint32_t index = 0;  // which statement of `classified`
    std::string text, statement_name, portal_name, rule;
    std::vector<std::string> params;
    std::vector<std::uint8_t> param_flags;
    bool dry_run = false, alert = false;
    bool logged = false;  // synced: the statement record is already written
    bool done = false;
    std::int64_t rows = -1;
    std::string sqlstate, message;
    std::chrono::steady_clock::time_point started;
  };
  /// The classification members of the statement recorded last, encoded:
  /// every run of a prepared statement repeats them.
  struct EncodedClassification {
    policy::ClassifiedTextPtr classified;  // held, so the address cannot be reused meanwhile
    std::uint32_t index = 0;
    audit::RecordBuffer json;
  };

 private:

  awaitable<CloseReason> serve();
  awaitable<CloseReason> negotiate();
  awaitable<CloseReason> start_tls(bool direct);
  /// A startup packet that is not one: answered as PostgreSQL answers it.
  CloseReason refuse_startup_packet(std::error_code ec);

  // auth: scram (authenticate.cpp).
  void prepare_upstream_startup(const protocol::StartupMessage& startup, std::string_view original);
  awaitable<CloseReason> authenticate_client();
  awaitable<CloseReason> authenticate_scram(class MessageReader& reader);
  awaitable<CloseReason> authenticate_md5(class MessageReader& reader);
  awaitable<std::optional<protocol::Frame>> read_password_message(class MessageReader& reader);
  awaitable<CloseReason> login_upstream(std::shared_ptr<X509> server_certificate);
  awaitable<CloseReason> admit_client();
  CloseReason fail_auth(const auth::AuthFailure& failure);

  // Session pooling (session_pool.cpp).
  bool pooling() const;
  bool poolable() const;
  awaitable<CloseReason> adopt_pooled(PooledServer pooled);
  void return_to_pool();
  std::string issue_backend_key(std::int32_t process_id, std::string_view secret_key);
  CloseReason upstream_login_failed(std::string_view why);
  awaitable<bool> read_client(std::size_t min_free);
  awaitable<CloseReason> relay();
  awaitable<CloseReason> relay_client();
  awaitable<CloseReason> relay_server();
  awaitable<CloseReason> watchdog();
  bool arm_idle_timer();
  void poke_watchdog();
  awaitable<void> cancel_upstream(std::string_view packet);
  /// Records the FATAL error the client gets once both directions stopped.
  CloseReason fail(std::string_view sqlstate, std::string_view message,
                   CloseReason reason = CloseReason::ClientProtocolError);
  awaitable<void> send_fatal();

  // Policy on the data path (statement_gate.cpp).
  void refresh_config();
  policy::Decision decide(const policy::ClassifiedText& text, policy::ProtocolPath path);
  policy::Decision evaluate(const policy::ClassifiedText& text, policy::ProtocolPath path);
  void note_decision(const policy::Decision& d);
  /// The SQL of a Query or Parse as the server will read it, its facts, and
  /// the decision on it (noted).
  struct ReadSql {
    policy::ClassifiedTextPtr text;
    std::string_view sql;  ///< what was classified: the message's text, or its UTF-8 conversion
    policy::Decision decision;
  };
  ReadSql read_sql(std::string_view raw, policy::ProtocolPath path);
  policy::ClassifiedTextPtr classify_as_read(std::string_view sql, bool standard_conforming_strings);
  CloseReason gate_query(const protocol::Frame& f, std::size_t offset, Batch& out);
  CloseReason gate_parse(const protocol::Frame& f, std::size_t offset, Batch& out);
  CloseReason gate_bind(const protocol::Frame& f, std::size_t offset, Batch& out);
  /// What a Bind of a statement PREPAREd in SQL runs, as `EXECUTE "name"`.
  std::shared_ptr<const Prepared> sql_prepared(std::string_view name);
  CloseReason gate_function_call(const protocol::Frame& f, std::size_t offset, Batch& out);
  CloseReason gate_execute(const protocol::Frame& f, std::size_t offset, Batch& out);
  void substitute_marker_parse(Batch& out);
  void forget_portal(std::string_view name);
  void remember_portal(const std::shared_ptr<const Prepared>& statement, const policy::Decision& d);
  /// The current Bind's parameters into `portal`, as audit.parameters keeps them.
  void keep_bind_parameters(Portal& portal) const;
  CloseReason forward_or_deny_query(const policy::Decision& d, const protocol::Frame& f, std::size_t offset,
                                    Batch& out);
  void forget_statement(const protocol::Frame& f);

  // The audit trail (session_audit.cpp). A statement's record is written
  // when its outcome is known (buffered) or before it is forwarded with a
  // statement.result to follow (synced); refusals are recorded at once.
  audit::SessionFields audit_fields() const;
  /// audit_fields() encoded once, for the statement records of the session.
  audit::SessionFields audit_statement_fields();
  void audit_event(std::string_view event, std::string_view method = {}, std::string_view sqlstate = {},
                   std::string_view message = {});
  void audit_refused(const policy::ClassifiedText& text, std::string_view sql, audit::Protocol protocol,
                     const policy::Decision& d, std::string_view statement_name = {},
                     std::string_view portal_name = {}, const Portal* portal = nullptr);
  bool audit_forward(const policy::ClassifiedText& text, const policy::ClassifiedTextPtr& keep, std::string_view sql,
                     audit::Protocol protocol, const AuditedDecision& d, std::string_view statement_name = {},
                     std::string_view portal_name = {}, const Portal* portal = nullptr);
  /// Synced: submits the records of pending_[first..] before they are
  /// forwarded, or leaves them to audit_settle() while the queue is full;
  /// false (none of them left pending) when the log refuses one.
  bool audit_gate(std::size_t first);
  /// Submits the records of pending_[first..] until the queue is full
  /// (ungated_ says how many are left); false when the log refuses one.
  bool audit_submit_gates(std::size_t first);
  /// Drops pending_[from..], which will never be forwarded; their outcome
  /// is written as not run (58030): for all, or only for those whose
  /// record was submitted already (a refusal records the others).
  void audit_drop_unsent(std::size_t from, bool all);
  /// Fails the session because the batch's records could not be written;
  /// `gated` statements at the end of pending_ are dropped as not run.
  CloseReason audit_not_forwarded(std::size_t gated);
  void audit_server_frame(const protocol::Frame& f);
  void audit_auth_failure(const protocol::Frame& f);
  void audit_cancel(const CancelTarget* target);
  void audit_ready();
  void audit_write(PendingStatement& p);
  void audit_submit(audit::Purpose purpose, audit::Ticket* ticket = nullptr);
  awaitable<CloseReason> audit_settle();
  void audit_session_end(CloseReason reason);
  std::string_view auth_method() const;
  void deny(const policy::Decision& d);
  bool rewrite_denial_error(const protocol::Frame& f, Batch& out);
  void on_ready_for_query();
  // The database's catalog (session_catalog.cpp).
  const policy::ClassifiedText& with_catalog(const policy::ClassifiedText& text, policy::ClassifiedText& scratch);
  awaitable<void> await_catalog();
  void note_command_complete(const protocol::Frame& f);
  void note_catalog_ready();
  CloseReason check_connect(const protocol::StartupMessage& startup);

  // Operations (session_operations.cpp): drain, metrics, the operational log.
  bool at_transaction_boundary() const;
  bool drain_now() const;  ///< draining, and nothing to wait for (immediate, or not logged in)
  bool drain_due();        ///< draining, and at a point where the session may end
  void stop_reading_client();
  CloseReason shut_down();
  void note_client_message(char type);
  void begin_sync_point();
  void observe_sync_point();
  void count_execution(const policy::ClassifiedText& text, const policy::Decision& d);
  void count_denial(const policy::Decision& d);
  metrics::Counter& rule_counter(const policy::Rule& rule, bool dry_run);
  void count_connection(ConnectionResult r);
  void count_close(CloseReason reason);
  void log_close(CloseReason reason) const;
  void log_statement(std::string_view protocol, std::string_view sql, const policy::Decision& d) const;

  CloseReason on_client_frame(const protocol::Frame& f, std::size_t offset, Batch& out);
  void on_server_frame(const protocol::Frame& f, std::size_t offset, Batch& out);
  bool rewrite_backend_key(const protocol::Frame& f, Batch& out);
  void track_parameter(const protocol::Frame& f);
  /// A ParameterStatus the session follows: client_encoding and
  /// standard_conforming_strings (how the server reads SQL text), application_name.
  void note_parameter(std::string_view name, std::string_view value);
  /// Notes the server's authentication request; an AuthenticationSASL is
  /// relayed without SCRAM-SHA-256-PLUS (substituted into `out`, true).
  bool note_auth_request(const protocol::Frame& f, Batch& out);
  /// An ErrorResponse before the first ReadyForQuery: the server refused the
  /// startup, and the connection is counted as such.
  void note_startup_refusal(const protocol::Frame& f);
  /// Why the session ends when reading from the server failed with `ec`.
  CloseReason server_closed(error_code ec);
  CloseReason check_sasl_passthrough(const protocol::Frame& f);

  Stream client_;
  tcp::endpoint peer_;
  const SessionContext& ctx_;
  std::shared_ptr<ClientTls> client_tls_;      // taken at accept; kept while the stream lives
  std::shared_ptr<UpstreamTls> upstream_tls_;  // taken at upstream connect
  std::optional<Stream> server_;
  asio::steady_timer watchdog_timer_;  // startup timeout, then idle timeout
  bool watchdog_poked_ = false;

  ByteBuffer client_in_{8 * 1024};
  ByteBuffer server_in_{16 * 1024};
  protocol::Framer client_framer_;
  protocol::Framer server_framer_;
  Batch client_out_;  // bytes going to the server
  Batch server_out_;  // bytes going to the client

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  /// A denial waiting for the server's marker error it replaces.
  struct PendingDenial {
    std::uint64_t sync_point = 0;  // the Sync/Query whose ReadyForQuery ends it
    std::string error;             // the ErrorResponse the client gets
  };

  config::ConfigPtr config_;
  std::uint64_t config_generation_ = 0;
  policy::SessionFacts facts_;
  /// Rules whose session-level conditions hold for this session; recomputed
  /// when the configuration or application_name changes.
  policy::SessionMask rule_mask_;
  /// Every prepared statement, by name ("" = unnamed): its classification
  /// and text (for its audit records).
  std::unordered_map<std::string, std::shared_ptr<const Prepared>, StringHash, std::equal_to<>> statements_;
  /// A Parse or Close forwarded and not yet answered. statements_ holds what
  /// the server will have once it has done them; an error before the answer
  /// means the server skipped or refused them, and `previous` goes back.
  struct StatementChange {
    std::uint64_t sync_point = 0;
    char answer = 0;  ///< '1' ParseComplete, '3' CloseComplete
    bool statement = false;  ///< a prepared statement (not a portal) by `name`
    std::string name;
    std::shared_ptr<const Prepared> previous;  ///< null: there was none
  };
  std::deque<StatementChange> statement_changes_;
  /// Statements PREPAREd in SQL, by name: the facts of every PREPARE of the
  /// name this session sent. A PREPARE of a name that exists fails, and
  /// DEALLOCATE may not run (an earlier error skips it), so the server holds
  /// one of them, and an EXECUTE is decided on each. Nullopt past the
  /// bounds (statement_gate.cpp): such an EXECUTE is decided only as dynamic SQL.
  /// A read-only session whose server reported default_transaction_read_only
  /// off (a function pgwarden could not see called set_config): nothing
  /// more runs in it.
  bool read_only_lost_ = false;
  using SqlPrepares = std::vector<policy::StatementFacts>;
  std::unordered_map<std::string, std::optional<SqlPrepares>, StringHash, std::equal_to<>> sql_prepared_;
  void note_sql_prepares(const policy::ClassifiedText& text);
  /// The PREPAREs whose statement `s` (an EXECUTE) runs, or null when untracked.
  const SqlPrepares* tracked_prepare(const policy::StatementFacts& s) const;
  /// `text`, or `copy` of it whose EXECUTEs of tracked PREPAREs are no dynamic SQL.
  const policy::ClassifiedText& without_known_executes(const policy::ClassifiedText& text,
                                                       policy::ClassifiedText& copy) const;
  void note_statement_change(char answer, bool statement, std::string_view name);
  void on_statement_answer(char answer);
  void undo_statement_changes();
  /// Bound portals, by name: what their Execute runs.
  std::unordered_map<std::string, std::unique_ptr<Portal>, StringHash, std::equal_to<>> portals_;
  // Audit state.
  std::string session_id_;         // random, names the session in every record
  std::string client_addr_;        // the peer's address as text
  bool audit_started_ = false;     // session.start written
  std::uint64_t statement_ids_ = 0;
  std::deque<std::unique_ptr<PendingStatement>> pending_;  // forwarded, outcome not yet known
  std::vector<std::unique_ptr<PendingStatement>> spare_;   // finished slots, reused
  std::vector<std::string> audit_backlog_;  // records the full queue could not take yet
  audit::Ticket gate_ticket_ = 0;           // synced: the last record this batch waits for
  std::size_t gated_ = 0;                   // synced: statements at the end of pending_ not yet forwarded
  std::size_t ungated_ = 0;                 // synced: the last of those, whose records wait for room in the queue
  std::uint64_t statements_seen_ = 0;
  audit::RecordBuffer audit_session_json_;  // audit_fields() encoded; cleared when they change
  EncodedClassification audit_classification_;
  std::chrono::steady_clock::time_point batch_time_;  // when the current client batch was read
  protocol::Execute execute_msg_;
  std::deque<PendingDenial> denials_;
  std::string marker_;            // random identifier, unique to this session
  std::string marker_statement_;  // "SELECT <marker>": fails at parse analysis
  std::uint64_t sync_points_sent_ = 1;  // the startup counts as the first
  std::uint64_t ready_seen_ = 0;
  // How the server reads SQL text, as its ParameterStatus messages say; while
  // requests are outstanding a change may be on its way (reading_settled_).
  std::optional<policy::ClientEncoding> client_encoding_{std::in_place};  // nullopt: a name pgwarden does not know
  bool standard_conforming_strings_ = true;
  bool reading_settled_ = false;  // every request forwarded so far is answered
  std::string sql_utf8_;          // read_sql()'s conversion
  protocol::Query query_msg_;  // parse targets reused so parsing does not allocate
  protocol::Parse parse_msg_;
  protocol::Bind bind_msg_;

  std::string refusal_sqlstate_, refusal_message_;
  std::string fatal_;  // ErrorResponse to send before closing
  CancelRegistry::ClientKey client_key_;  // the BackendKeyData the client got; empty key until issued
  bool authenticated_ = false;  // AuthenticationOk seen
  bool proxy_auth_ = false;            // auth: scram (pgwarden authenticates the client)
  std::string startup_packet_;        // what the upstream gets as StartupMessage
  std::string negotiate_reply_;       // NegotiateProtocolVersion pgwarden owes the client
  std::unique_ptr<auth::ScramServer> scram_;  // the client's verified SCRAM exchange
  std::string md5_secret_;            // or the md5 secret it proved
  std::string server_final_;          // SASLFinal the client gets once the server let us in
  // What a pooled connection's next client must be told (session pooling).
  ServerParameters server_params_;      // ParameterStatus, current
  std::string pool_key_;                // the StartupMessage the server connection was logged in with
  bool held_for_pool_ = false;          // the client's Terminate was kept from the server
  std::int32_t server_process_id_ = 0;  // the backend's own BackendKeyData
  std::string server_secret_key_;
  std::int32_t auth_request_ = -1;    // the server's last Authentication* code
  bool server_offered_plus_ = false;  // its AuthenticationSASL listed SCRAM-SHA-256-PLUS
  bool terminated_ = false;     // client sent Terminate
  /// When the session last became idle outside a transaction; max() while busy.
  std::chrono::steady_clock::time_point idle_since_ = std::chrono::steady_clock::time_point::max();
  std::uint64_t bytes_from_client_ = 0;
  std::uint64_t bytes_from_server_ = 0;
  std::uint64_t bytes_to_client_ = 0;  // what the client received: rewritten and pgwarden's own messages included
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  // Operations state (session_operations.cpp).
  /// When a sync point's statements were decided, for statement_duration.
  struct SyncStart {
    std::uint64_t sync_point = 0;  // 0: slot unused
    std::chrono::system_clock::time_point at;
  };
  std::array<SyncStart, 16> sync_starts_{};
  std::chrono::system_clock::time_point decided_at_{};  // the clock read decide() takes anyway
  bool decided_since_sync_ = false;
  /// denials_total / dry_run_denials_total children by rule index, resolved
  /// at a rule's first denial in this session; cleared when the rules change.
  std::vector<std::pair<metrics::Counter*, metrics::Counter*>> rule_counters_;
  std::optional<ConnectionResult> startup_result_;  // known before the session ends
  bool connection_counted_ = false;
  char ready_status_ = 0;    // transaction status of the last ReadyForQuery
  bool unsynced_ = false;    // extended-protocol messages forwarded since the last Sync
  bool writing_to_client_ = false;  // a write to the client is under way, or failed part-way
  std::optional<DrainMode> drain_;
  /// Draining and at a boundary: the client read was cancelled, and ends the
  /// session unless it had already received something (see stop_reading_client).
  bool drain_stop_ = false;

  // The database's catalog (session_catalog.cpp).
  std::shared_ptr<const policy::DatabaseCatalog> catalog_;  // held while a decision uses it
  bool catalog_awaited_ = false;  // the first lookup was waited for
  bool catalog_changed_ = false;  // DDL ran in the open transaction: read again once it ends
};

}  // namespace pgwarden::proxy
