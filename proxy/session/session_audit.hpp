#pragma once
/// A session's audit records: who connected and how it went (session.start,
/// auth.ok/auth.fail, session.end), and one record per statement, refused or
/// run, with its outcome.
///
/// Invariants:
/// - pending_ holds the statements forwarded (or about to be) whose outcome
///   the server has yet to report, in the order the server answers them.
/// - Synced durability: the last `gated_` of pending_ are in the batch being
///   read and are not forwarded until settle() says their records are on
///   disk; the last `ungated_` of those still wait for room in the queue.
/// - Nothing overtakes what waits in backlog_: records are submitted in the
///   order the session made them.

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "audit/record.hpp"
#include "policy/session_facts.hpp"
#include "protocol/framer.hpp"
#include "proxy/net/asio.hpp"
#include "proxy/session/audit_trail.hpp"
#include "proxy/session/proxy_metrics.hpp"
#include "proxy/session/session_identity.hpp"
#include "proxy/session/statement_gate.hpp"

namespace pgwarden::proxy {

class SessionAudit {
 public:
  /// Where the session comes from; who it is comes from its facts.
  struct Peer {
    std::string session_id;  ///< random, names the session in every record
    std::string client_addr;
    std::uint16_t client_port = 0;
  };

  /// `trail` null: the audit log is off and every call does nothing.
  /// `facts` (user, database, application_name, person) must outlive this.
  SessionAudit(AuditTrail* trail, ProxyMetrics& metrics, const policy::SessionFacts& facts, Peer peer);

  bool on() const { return trail_ != nullptr; }
  const std::string& client_addr() const { return peer_.client_addr; }
  /// The client hop is TLS (known once the startup packet is read).
  void set_tls(bool tls) {
    tls_ = tls;
    fields_json_.clear();
  }
  /// The facts changed (application_name): the records from now on name
  /// them as they are.
  void facts_changed() { fields_json_.clear(); }
  /// An owned copy of who the session is, for the record of a cancel
  /// request that names it after this session has moved on or gone.
  SessionIdentity identity() const;
  GateOptions gate_options() const;

  /// A session event (session.start, auth.ok, auth.fail).
  void event(std::string_view event, std::string_view method = {}, std::string_view sqlstate = {},
             std::string_view message = {});
  /// A cancel request, naming the session it stops (null: none matched).
  void cancel(const SessionIdentity* target);
  /// A refused statement: its record (one per statement of a Query) at once.
  void refused(const GatedStatement& s, const policy::Decision& d);
  /// A statement about to be forwarded. False when its record cannot be
  /// written and the log blocks: then nothing of it is left pending.
  bool forwarding(const GatedStatement& s, const AuditedDecision& d);
  /// When the client batch now being gated was read (a statement's duration starts there).
  void batch_read(std::chrono::steady_clock::time_point at) { batch_time_ = at; }

  /// Records wait for room or (synced) for the disk before the batch may go on.
  bool waiting() const { return gated_ != 0 || !backlog_.empty(); }
  /// Waits until the batch's records are submitted and, synced, durable.
  /// False when they could not be written: the statements were dropped as
  /// not run, and must not be forwarded.
  awaitable<bool> settle();
  /// Submits what the full queue could not take yet (at the session's end).
  bool has_backlog() const { return !backlog_.empty(); }

  /// A backend message that reports a statement's outcome (CommandComplete,
  /// EmptyQueryResponse, PortalSuspended, ErrorResponse); `ready_seen`
  /// ReadyForQuery messages came before it, so it answers that sync point.
  void server_message(const protocol::Frame& f, std::uint64_t ready_seen);
  /// The ReadyForQuery that made `ready_seen`: what the requests before it
  /// did not run was skipped.
  void ready(std::uint64_t ready_seen);
  /// Nothing is waiting for an outcome.
  bool idle() const { return pending_.empty(); }

  /// What session.end says besides the close reason.
  struct Totals {
    std::chrono::steady_clock::duration duration{};
    std::uint64_t bytes_from_client = 0;
    std::uint64_t bytes_to_client = 0;
  };
  void session_end(std::string_view close_reason, const Totals& totals);

 private:
  /// A statement forwarded whose outcome the server has yet to report.
  struct PendingStatement {
    std::uint64_t sync_point = 0;
    std::uint64_t id = 0;
    audit::Protocol protocol = audit::Protocol::Simple;
    policy::ClassifiedTextPtr classified;
    std::uint32_t index = 0;  ///< which statement of `classified`
    std::string text, statement_name, portal_name, rule;
    std::vector<std::string> params;
    std::vector<std::uint8_t> param_flags;
    bool dry_run = false, alert = false;
    bool logged = false;  ///< synced: the statement record is written already
    std::int64_t rows = -1;
    std::string sqlstate, message;
    std::chrono::steady_clock::time_point started;
  };
  /// The classification members of the statement recorded last, encoded:
  /// every run of a prepared statement repeats them.
  struct EncodedClassification {
    policy::ClassifiedTextPtr classified;  ///< held, so the address cannot be reused meanwhile
    std::uint32_t index = 0;
    audit::RecordBuffer json;
  };

  /// The members every record of the session repeats, as views.
  audit::SessionFields fields() const;
  /// fields(), encoded once for the statement records.
  audit::SessionFields statement_fields();
  audit::StatementRecord record_of(const PendingStatement& p);
  void submit(const audit::RecordBuffer& body, audit::Purpose purpose, audit::Ticket* ticket = nullptr);
  bool gate(std::size_t first);
  bool submit_gates(std::size_t first);
  void drop_unsent(std::size_t from, bool all);
  void write(PendingStatement& p);
  void finish_front();

  AuditTrail* trail_;
  ProxyMetrics& metrics_;
  const policy::SessionFacts& facts_;
  Peer peer_;
  bool tls_ = false;
  bool started_ = false;  ///< session.start written
  std::uint64_t statement_ids_ = 0;
  std::uint64_t statements_seen_ = 0;
  std::deque<std::unique_ptr<PendingStatement>> pending_;
  std::vector<std::unique_ptr<PendingStatement>> spare_;  ///< finished slots, reused
  std::vector<std::string> backlog_;  ///< records the full queue could not take yet
  audit::Ticket gate_ticket_ = 0;     ///< synced: the last record this batch waits for
  std::size_t gated_ = 0;
  std::size_t ungated_ = 0;
  audit::RecordBuffer fields_json_;  ///< fields() encoded; cleared when they change
  EncodedClassification classification_;
  std::chrono::steady_clock::time_point batch_time_;
};

}  // namespace pgwarden::proxy
