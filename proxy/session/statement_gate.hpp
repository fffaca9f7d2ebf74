#pragma once
/// The statement gate: every Query, Parse, Bind, Execute and FunctionCall a
/// client sends is read as the server will read it, decided, and either
/// forwarded as it is or replaced by a marker statement that makes the server
/// itself fail at the same point; on the way back the error carrying the
/// marker becomes the denial. Sans-I/O, with the shape of the codec: frames
/// and facts in, forwarded or substituted bytes (a Batch) and observer calls
/// out. It owns the session's protocol position (sync points sent and
/// answered), what the server holds (prepared statements, portals), and how
/// the server reads SQL text (client_encoding, standard_conforming_strings).

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "audit/record.hpp"
#include "policy/classify_cache.hpp"
#include "policy/client_encoding.hpp"
#include "policy/database_catalog.hpp"
#include "policy/evaluator.hpp"
#include "protocol/framer.hpp"
#include "protocol/messages.hpp"
#include "proxy/net/batch.hpp"
#include "proxy/session/session_policy.hpp"

namespace pgwarden::proxy {

/// A prepared statement: what Parse carried.
struct PreparedStatement {
  policy::ClassifiedTextPtr classified;
  std::string text;             ///< kept only when statements are audited
  std::uint64_t denied_at = 0;  ///< the sync point whose Parse was denied; 0 if allowed
};

/// What the audit record keeps of an allow decision (its views would dangle
/// after a reload, so a portal keeps copies).
struct AuditedDecision {
  std::string_view rule;
  bool dry_run = false;
  bool alert = false;
};

/// A bound portal: the statement its Execute runs, the decision made at
/// Bind and the parameters bound (kept only when audit.parameters records them).
struct Portal {
  std::shared_ptr<const PreparedStatement> statement;
  std::string statement_name;
  std::string rule;
  bool dry_run = false;
  bool alert = false;
  std::vector<std::string> params;
  std::vector<std::uint8_t> param_flags;  ///< bit 0 NULL, bit 1 binary
};

/// One statement (or one Query's statements) as its audit record names it.
struct GatedStatement {
  const policy::ClassifiedText& text;
  policy::ClassifiedTextPtr keep;  ///< `text` held for a record written later; may be null
  std::string_view sql;
  audit::Protocol protocol = audit::Protocol::Simple;
  std::string_view statement_name;
  std::string_view portal_name;
  const Portal* portal = nullptr;  ///< the Bind's parameters
  std::uint64_t sync_point = 0;    ///< the Sync/Query whose ReadyForQuery ends it
};

/// What the gate tells the session (audit records, metrics and log lines),
/// and the one thing it asks of it: the database's catalog.
class GateObserver {
 public:
  /// The catalog of the session's database as known now; null when none is
  /// (calls the built-in list does not know then stay FUNCTION).
  virtual policy::DatabaseCatalogPtr catalog() = 0;
  /// Every decision (the operational log notes denials and dry runs).
  virtual void decided(const policy::Decision& d) = 0;
  /// One run of `text`: a Query, a Bind or a FunctionCall.
  virtual void counted(const policy::ClassifiedText& text, const policy::Decision& d) = 0;
  /// The SQL of a Query or Parse as the server will read it (log.statements).
  virtual void read(std::string_view protocol, std::string_view sql, const policy::Decision& d) = 0;
  /// A statement refused; recorded at once.
  virtual void refused(const GatedStatement& s, const policy::Decision& d) = 0;
  /// A statement about to be forwarded. False when its record cannot be
  /// written (audit.on_failure: block): the gate refuses it instead.
  virtual bool forwarding(const GatedStatement& s, const AuditedDecision& d) = 0;
  /// A Sync, Query or FunctionCall was sent: sync point `n` began; `decided`
  /// is when its first statement was decided, if any was.
  virtual void sync_point_begun(std::uint64_t n,
                                std::optional<std::chrono::system_clock::time_point> decided) = 0;

 protected:
  ~GateObserver() = default;
};

struct GateOptions {
  bool keep_texts = false;       ///< statements are audited: keep texts and portals
  bool keep_parameters = false;  ///< audit.parameters records Bind's values
};

class StatementGate {
 public:
  /// `marker` is a random identifier unique to the session: the column name
  /// the marker statement fails on.
  StatementGate(SessionPolicy& policy, policy::ClassifyCache& cache, GateObserver& observer, std::string marker,
                GateOptions options = {});

  /// A whole frontend message after the startup (CopyData streams past the
  /// gate). Forwards or substitutes it into `out`; returns an error message
  /// when it is malformed, and the session must end with 08P01.
  std::optional<std::string> client_message(const protocol::Frame& f, std::size_t offset, Batch& out);

  /// Backend messages the gate follows. ReadyForQuery: a sync point is
  /// answered (`status` 'I', 'T' or 'E').
  void ready_for_query(char status);
  /// ParseComplete or CloseComplete: the server did what the gate assumed.
  void statement_answer(char type);
  /// An ErrorResponse after authentication: the server skips the rest of its
  /// batch. True when it carried the marker and the denial was substituted
  /// into `out` in its place.
  bool error_response(const protocol::Frame& f, Batch& out);
  /// A ParameterStatus: client_encoding, standard_conforming_strings or
  /// default_transaction_read_only. False for any other name.
  bool parameter_status(std::string_view name, std::string_view value);

  std::uint64_t sync_points_sent() const { return sync_points_sent_; }
  std::uint64_t ready_seen() const { return ready_seen_; }
  char transaction_status() const { return ready_status_; }
  /// Idle outside a transaction, every sync point answered, no extended batch open.
  bool at_boundary() const { return ready_status_ == 'I' && ready_seen_ == sync_points_sent_ && !unsynced_; }
  /// No denial waits for its marker error.
  bool no_denials_pending() const { return denials_.empty(); }
  /// The session was opened read-only and the server said it is no more.
  bool read_only_lost() const { return read_only_lost_; }

 private:
  /// Bounds of what a session keeps of the statements it PREPAREd in SQL.
  static constexpr std::size_t max_sql_prepared_names = 4096;
  static constexpr std::size_t max_prepares_per_name = 16;

  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
  };
  template <class T>
  using NameMap = std::unordered_map<std::string, T, StringHash, std::equal_to<>>;

  /// A denial waiting for the server's marker error it replaces.
  struct PendingDenial {
    std::uint64_t sync_point = 0;
    std::string error;  ///< the ErrorResponse the client gets
  };
  /// A Parse or Close forwarded and not yet answered. statements_ holds what
  /// the server will have once it has done them; an error before the answer
  /// means the server skipped or refused them, and `previous` goes back.
  struct StatementChange {
    std::uint64_t sync_point = 0;
    char answer = 0;         ///< ParseComplete or CloseComplete
    bool statement = false;  ///< a prepared statement (not a portal) by `name`
    std::string name;
    std::shared_ptr<const PreparedStatement> previous;  ///< null: there was none
  };
  /// The SQL of a Query or Parse as the server will read it, its facts and
  /// the decision on it.
  struct ReadSql {
    policy::ClassifiedTextPtr text;
    std::string_view sql;  ///< the message's text, or its UTF-8 conversion
    policy::Decision decision;
  };
  /// Parse targets, reused so that parsing does not allocate.
  struct Scratch {
    protocol::Query query;
    protocol::Parse parse;
    protocol::Bind bind;
    protocol::Execute execute;
    std::string utf8;  ///< read_sql()'s conversion
  };
  /// Statements PREPAREd in SQL by one name: the facts of every PREPARE of
  /// it this session sent. Nullopt past the bounds.
  using SqlPrepares = std::vector<policy::StatementFacts>;

  std::optional<std::string> query(const protocol::Frame& f, std::size_t offset, Batch& out);
  std::optional<std::string> parse(const protocol::Frame& f, std::size_t offset, Batch& out);
  std::optional<std::string> bind(const protocol::Frame& f, std::size_t offset, Batch& out);
  std::optional<std::string> execute(const protocol::Frame& f, std::size_t offset, Batch& out);
  void function_call(const protocol::Frame& f, std::size_t offset, Batch& out);
  void close(const protocol::Frame& f);
  void begin_sync_point();

  policy::Decision decide(const policy::ClassifiedText& text, policy::ProtocolPath path);
  policy::Decision evaluate(const policy::ClassifiedText& text, policy::ProtocolPath path);
  ReadSql read_sql(std::string_view raw, policy::ProtocolPath path);
  /// `text` as the database's catalog sees it (see policy::apply_catalog).
  const policy::ClassifiedText& with_catalog(const policy::ClassifiedText& text, policy::ClassifiedText& scratch);
  policy::ClassifiedTextPtr classify_as_read(std::string_view sql, bool standard_conforming_strings);
  GatedStatement gated(const policy::ClassifiedText& text, std::string_view sql, audit::Protocol protocol) const;
  /// For messages the server answers with ReadyForQuery on their own (Query,
  /// FunctionCall): forward as is, or send the marker Query in their place.
  void forward_or_deny_query(const policy::Decision& d, const protocol::Frame& f, std::size_t offset, Batch& out);
  void substitute_marker_parse(Batch& out);
  void deny(const policy::Decision& d);
  /// What a Bind of a statement PREPAREd in SQL runs, as `EXECUTE "name"`.
  std::shared_ptr<const PreparedStatement> sql_prepared(std::string_view name);
  void remember_portal(const std::shared_ptr<const PreparedStatement>& statement, const policy::Decision& d);
  void keep_bind_parameters(Portal& portal) const;
  void forget_portal(std::string_view name);
  void note_sql_prepares(const policy::ClassifiedText& text);
  const SqlPrepares* tracked_prepare(const policy::StatementFacts& s) const;
  const policy::ClassifiedText& without_known_executes(const policy::ClassifiedText& text,
                                                       policy::ClassifiedText& copy) const;
  void note_statement_change(char answer, bool statement, std::string_view name);
  void undo_statement_changes();

  SessionPolicy& policy_;
  policy::ClassifyCache& cache_;
  GateObserver& observer_;
  GateOptions options_;
  std::string marker_;            ///< unique to this session
  std::string marker_statement_;  ///< "SELECT <marker>": fails at parse analysis

  // The protocol position. The startup counts as the first sync point.
  std::uint64_t sync_points_sent_ = 1;
  std::uint64_t ready_seen_ = 0;
  char ready_status_ = 0;  ///< transaction status of the last ReadyForQuery
  bool unsynced_ = false;  ///< extended-protocol messages sent since the last Sync
  /// When the statements of the current sync point were first decided, for
  /// its duration; nullopt while none was.
  std::optional<std::chrono::system_clock::time_point> decided_at_;

  // What the server holds.
  NameMap<std::shared_ptr<const PreparedStatement>> statements_;  ///< by name, "" the unnamed
  std::deque<StatementChange> statement_changes_;
  NameMap<std::optional<SqlPrepares>> sql_prepared_;
  NameMap<std::unique_ptr<Portal>> portals_;  ///< kept only when statements are audited
  std::deque<PendingDenial> denials_;

  // How the server reads SQL text, as its ParameterStatus messages say;
  // while requests are outstanding a change may be on its way (reading_settled_).
  std::optional<policy::ClientEncoding> client_encoding_{std::in_place};  ///< nullopt: a name pgwarden does not know
  bool standard_conforming_strings_ = true;
  bool reading_settled_ = false;  ///< every request forwarded so far is answered
  bool read_only_lost_ = false;   ///< opened read-only, and the server reported it off

  policy::DatabaseCatalogPtr catalog_;  ///< held while a decision uses it
  Scratch scratch_;
};

}  // namespace pgwarden::proxy
