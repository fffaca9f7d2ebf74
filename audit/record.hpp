#pragma once
/// The audit record schema (docs/audit-format.md, docs/audit-record.schema.json)
/// as plain structs of views and numbers, and the encoders that turn one into
/// a record body: a JSON object without `seq`, `prev_hash`, `hash` and `hmac`,
/// which the writer thread adds when it chains the record. The structs
/// borrow everything they name, so filling one copies nothing; the encoders
/// write to a caller-owned RecordBuffer reused for every record.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "audit/record_buffer.hpp"
#include "audit/time_format.hpp"

namespace pgwarden::audit {

/// Version of the record schema written into every record.
inline constexpr int schema_version = 1;

/// Who a record is about: the session's identity, repeated in each of its
/// records so a single line answers "who, from where".
struct SessionFields {
  std::string_view session_id;
  std::string_view user;      ///< the database role, as authenticated (claimed, in session.start)
  /// Who is connected, once authenticated: the person a certificate, token
  /// or people file names, or the role itself (auth: passthrough, scram).
  /// "" = not yet known: person, person_groups, auth_method and grant are
  /// then not written.
  std::string_view person;
  std::span<const std::string> person_groups;  ///< as the credential states them
  /// How the person authenticated: passthrough, scram, md5, certificate,
  /// token or people (policy::AuthMethod). Written with the person.
  std::string_view auth_method;
  std::string_view grant;  ///< the grant that gave a person the role; "" = none needed
  std::string_view database;
  std::string_view application_name;
  std::string_view client_addr;  ///< IP address, or "local" for a Unix-socket client
  std::uint16_t client_port = 0;  ///< 0 = not written
  bool tls = false;               ///< client connection uses TLS
  /// The members of this struct as encode_members() wrote them: a session
  /// encodes them once, not for each of its records. When set, the encoders
  /// copy it and ignore the other fields.
  std::string_view encoded;
};

/// The members of `s` that every record of a session repeats
/// (`"session_id":...,"tls":false`), for SessionFields::encoded.
void encode_members(const SessionFields& s, RecordBuffer& out);

/// What the session saw on the wire.
enum class Protocol : std::uint8_t { Simple, Extended, Function, Copy };
std::string_view to_string(Protocol p) noexcept;

enum class Decision : std::uint8_t { Allow, Deny };
std::string_view to_string(Decision d) noexcept;

/// audit.parameters: how bound parameter values are recorded.
enum class ParameterMode : std::uint8_t { None, Redacted, Full };

/// One bound parameter of an extended-protocol statement.
struct Parameter {
  std::string_view value;  ///< the bytes as sent
  bool is_null = false;
  bool binary = false;     ///< format code 1: written as hex
};

/// A relation (or other object) a statement touches.
struct ObjectName {
  std::string_view schema;  ///< empty when not qualified in the text
  std::string_view name;
  std::string_view access;  ///< "read", "write" or "ddl"
};

/// The outcome of a statement, from the server's reply.
struct Outcome {
  std::int64_t rows = -1;           ///< from CommandComplete; -1 = none
  std::string_view sqlstate;        ///< empty = success
  std::string_view message;         ///< the server's (or pgwarden's) error message
  std::uint64_t duration_us = 0;    ///< from forwarding to completion
};

/// How a record body is encoded (the session's share of the audit settings).
struct EncodeOptions {
  ParameterMode parameters = ParameterMode::None;
  bool redact_literals = false;  ///< constants in statement text become `?`
};

/// Event `statement`: one per statement, allowed or denied.
struct StatementRecord {
  Clock::time_point time{};       ///< when decided; default = now
  std::uint64_t statement_id = 0;  ///< per session, links a statement.result
  Protocol protocol = Protocol::Simple;
  /// The statement text as received. Passwords are always redacted by the
  /// encoder; constants too when EncodeOptions::redact_literals is set.
  std::string_view text;
  std::string_view statement_name;  ///< extended protocol: prepared statement ("" = unnamed)
  std::string_view portal_name;     ///< extended protocol: portal ("" = unnamed)
  std::span<const Parameter> parameters;
  std::span<const std::string> command_tags;  ///< effective tags ("EXPLAIN", "DELETE")
  std::span<const std::string_view> classes;  ///< "READ", "WRITE", ...
  std::span<const ObjectName> objects;
  std::string_view fingerprint;  ///< literal-free key of the text; "" = not written
  bool unparseable = false;      ///< the classifier could not parse the text
  /// command_tags ... unparseable above as encode_classification() wrote
  /// them (the same for every run of a prepared statement); when set, the
  /// encoder copies it and ignores those five.
  std::string_view encoded_classification;
  Decision decision = Decision::Allow;
  std::string_view rule;    ///< the deciding rule; "" = the default
  std::string_view reason;  ///< why, for a denial
  bool dry_run = false;     ///< the rule only records what it would have done
  bool alert = false;
  /// Set when the outcome is known (buffered durability, or a denial). When
  /// null the record says `result_follows`: a statement.result record with the
  /// same session_id and statement_id carries the outcome.
  const Outcome* outcome = nullptr;
};

/// Event `statement.result`: the outcome of a statement logged before it ran.
struct StatementResultRecord {
  Clock::time_point time{};
  std::uint64_t statement_id = 0;
  Outcome outcome;
};

/// Events `session.start`, `auth.ok` and `auth.fail`.
struct SessionEventRecord {
  Clock::time_point time{};
  /// The mechanism on the wire: "trust", "password", "md5", "scram-sha-256",
  /// "scram-sha-256-plus" ("" = not written). Written as `auth_method`
  /// while the session's own SessionFields::auth_method is unset, else as
  /// `auth_mechanism` beside it.
  std::string_view auth_method;
  std::string_view sqlstate;     ///< auth.fail: the server's SQLSTATE
  std::string_view message;      ///< auth.fail: the server's message
};

/// Event `session.end`.
struct SessionEndRecord {
  Clock::time_point time{};
  std::uint64_t duration_us = 0;
  std::uint64_t bytes_from_client = 0;
  std::uint64_t bytes_to_client = 0;
  std::uint64_t statements = 0;
  std::string_view close_reason;  ///< the connection's close reason (metric label)
};

/// Event `cancel`: a CancelRequest, logged with the identity of the session
/// it targets (empty fields when the key matched no session).
struct CancelRecord {
  Clock::time_point time{};
  std::string_view requester_addr;
  std::uint16_t requester_port = 0;
  bool matched = false;  ///< the key belonged to a live session and was forwarded
};

/// Event `config.reload`.
struct ConfigReloadRecord {
  Clock::time_point time{};
  std::string_view config_file;
  bool ok = false;
  std::string_view message;  ///< the error, or a summary of what is now in force
};

/// Event `statement.refusals`: statements of one session denied for one
/// rule and reason, counted in one record instead of written one by one,
/// while the audit file could not be written (on_failure: block). Bounded:
/// one record per session, rule and reason for each stretch of the failure.
struct RefusalCountRecord {
  Clock::time_point time{};        ///< the last refusal counted
  Clock::time_point first_time{};  ///< the first refusal counted
  std::uint64_t count = 0;
  std::uint64_t first_statement_id = 0;  ///< statement_ids they had, from ... to
  std::uint64_t last_statement_id = 0;
  std::string_view rule;      ///< "" = the default or pgwarden itself decided
  std::string_view reason;    ///< as in a statement record (`audit_unavailable`, `rule`, ...)
  std::string_view sqlstate;  ///< what the client was told
};

/// Event `alert.undelivered`: an alert that a sink could not deliver (every
/// attempt failed, its queue was full, or pgwarden stopped first), so that
/// no alert is lost without a trace. The alert's own fields, by their
/// record names; empty ones are left out.
struct AlertUndeliveredRecord {
  Clock::time_point time{};
  std::string_view sink;
  std::string_view error;       ///< why it was not delivered
  std::string_view alert_kind;  ///< rule, connect_refused, auth_failures, audit_failing, config_rejected
  Clock::time_point alert_time{};
  std::string_view session_id, user, database, application_name, client_addr;
  std::string_view text;  ///< the statement, redacted as the alert carried it
  std::string_view rule;
  std::string_view decision;  ///< "allow", "deny" or "" (not a statement)
  bool dry_run = false;
  std::uint64_t count = 1;
  std::string_view alert_record_hash;  ///< the hash of the record the alert is about, when known
};

/// Why a file begins (event `checkpoint`, the first record of every file).
enum class CheckpointReason : std::uint8_t { Start, Restart, RotateSize, RotateTime, Recover };
std::string_view to_string(CheckpointReason r) noexcept;

/// Event `checkpoint`: links a file to the end of the previous one; written by
/// the log itself, never by a session.
struct CheckpointRecord {
  Clock::time_point time{};
  CheckpointReason reason = CheckpointReason::Start;
  std::string_view previous_file;  ///< file name (no directory) that holds previous_seq
  std::uint64_t previous_seq = 0;  ///< 0 = the chain starts here
  std::string_view previous_hash;  ///< hex
  /// Recover only: the failure that ended the previous file, when it began,
  /// and how many records were lost meanwhile (on_failure: continue).
  std::string_view error;
  Clock::time_point failed_since{};
  std::uint64_t records_lost = 0;
};

/// Each encoder replaces the contents of `out` with the record body.
void encode(const SessionFields& s, std::string_view event, const SessionEventRecord& r, RecordBuffer& out);
void encode(const SessionFields& s, const StatementRecord& r, const EncodeOptions& o, RecordBuffer& out);
/// The members of `r` from command_tags to unparseable, for
/// StatementRecord::encoded_classification.
void encode_classification(const StatementRecord& r, RecordBuffer& out);
void encode(const SessionFields& s, const StatementResultRecord& r, RecordBuffer& out);
void encode(const SessionFields& s, const SessionEndRecord& r, RecordBuffer& out);
void encode(const SessionFields& target, const CancelRecord& r, RecordBuffer& out);
void encode(const ConfigReloadRecord& r, RecordBuffer& out);
void encode(const SessionFields& s, const RefusalCountRecord& r, RecordBuffer& out);
void encode(const CheckpointRecord& r, RecordBuffer& out);
void encode(const AlertUndeliveredRecord& r, RecordBuffer& out);

/// Event names, as written.
namespace event {
inline constexpr std::string_view session_start = "session.start";
inline constexpr std::string_view auth_ok = "auth.ok";
inline constexpr std::string_view auth_fail = "auth.fail";
inline constexpr std::string_view statement = "statement";
inline constexpr std::string_view statement_result = "statement.result";
inline constexpr std::string_view session_end = "session.end";
inline constexpr std::string_view cancel = "cancel";
inline constexpr std::string_view config_reload = "config.reload";
inline constexpr std::string_view checkpoint = "checkpoint";
inline constexpr std::string_view statement_refusals = "statement.refusals";
inline constexpr std::string_view alert_undelivered = "alert.undelivered";
}  // namespace event

}  // namespace pgwarden::audit
