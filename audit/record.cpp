#include "audit/record.hpp"

#include "audit/json_writer.hpp"
#include "audit/redact.hpp"

namespace pgwarden::audit {
namespace {

Clock::time_point or_now(Clock::time_point t) { return t == Clock::time_point{} ? Clock::now() : t; }

/// `{"schema_version":1,"time":"...","event":"..."` (the object stays open).
void begin(JsonWriter& w, std::string_view event, Clock::time_point time) {
  w.buffer().clear();
  w.begin_object();
  w.member("schema_version", schema_version);
  w.key("time");
  w.plain_fill([t = or_now(time)](RecordBuffer& out) { out.commit_to(write_rfc3339(out.prepare(rfc3339_size), t)); });
  w.key("event");
  w.plain_value(event);
}

void string_array(JsonWriter& w, std::string_view name, auto const& items) {
  w.key(name);
  w.begin_array();
  for (const auto& s : items) w.value(std::string_view(s));
  w.end_array();
}

/// The session's members from its fields (encode_members() keeps the result).
void write_session_members(JsonWriter& w, const SessionFields& s) {
  w.member("session_id", s.session_id);
  w.member("user", s.user);
  if (!s.person.empty()) {
    w.member("person", s.person);
    string_array(w, "person_groups", s.person_groups);
    w.optional("auth_method", s.auth_method);
    w.optional("grant", s.grant);
  }
  w.member("database", s.database);
  w.member("application_name", s.application_name);
  w.member("client_addr", s.client_addr);
  if (s.client_port != 0) w.member("client_port", std::uint64_t{s.client_port});
  w.member("tls", s.tls);
}

void session_members(JsonWriter& w, const SessionFields& s) {
  if (s.encoded.empty()) write_session_members(w, s);
  else w.raw_members(s.encoded);
}

void outcome_members(JsonWriter& w, const Outcome& o) {
  if (o.rows >= 0) w.member("rows", o.rows);
  w.optional("sqlstate", o.sqlstate);
  w.optional("message", o.message);
  w.member("duration_us", o.duration_us);
}

void parameter_members(JsonWriter& w, std::span<const Parameter> params, ParameterMode mode) {
  if (mode == ParameterMode::None || params.empty()) return;
  w.member("parameter_count", std::uint64_t{params.size()});
  if (mode != ParameterMode::Full) return;
  w.key("parameters");
  w.begin_array();
  for (const Parameter& p : params) {
    if (p.is_null) {
      w.null();
    } else if (p.binary) {
      w.begin_object();
      w.key("binary");
      w.plain_fill([&p](RecordBuffer& out) { append_hex(out, p.value); });
      w.end_object();
    } else {
      w.value(p.value);
    }
  }
  w.end_array();
}

void object_array(JsonWriter& w, std::span<const ObjectName> objects) {
  w.key("objects");
  w.begin_array();
  for (const ObjectName& o : objects) {
    w.begin_object();
    w.optional("schema", o.schema);
    w.member("name", o.name);
    w.member("access", o.access);
    w.end_object();
  }
  w.end_array();
}

/// command_tags ... unparseable from their fields (encode_classification() keeps the result).
void write_classification_members(JsonWriter& w, const StatementRecord& r) {
  string_array(w, "command_tags", r.command_tags);
  string_array(w, "classes", r.classes);
  object_array(w, r.objects);
  w.optional("fingerprint", r.fingerprint);
  if (r.unparseable) w.member("unparseable", true);
}

void classification_members(JsonWriter& w, const StatementRecord& r) {
  if (r.encoded_classification.empty()) write_classification_members(w, r);
  else w.raw_members(r.encoded_classification);
}

/// The statement text with passwords (and, on request, constants) redacted.
void text_member(JsonWriter& w, std::string_view text, bool redact_literals) {
  thread_local std::string scratch;  // reused: no allocation per statement once grown
  w.member("text", redact_sql(text, redact_literals, scratch));
}

}  // namespace

std::string_view to_string(Protocol p) noexcept {
  switch (p) {
    case Protocol::Simple: return "simple";
    case Protocol::Extended: return "extended";
    case Protocol::Function: return "function";
    case Protocol::Copy: return "copy";
  }
  return "simple";
}

std::string_view to_string(Decision d) noexcept { return d == Decision::Deny ? "deny" : "allow"; }

std::string_view to_string(CheckpointReason r) noexcept {
  switch (r) {
    case CheckpointReason::Start: return "start";
    case CheckpointReason::Restart: return "restart";
    case CheckpointReason::RotateSize: return "rotate_size";
    case CheckpointReason::RotateTime: return "rotate_time";
    case CheckpointReason::Recover: return "recover";
  }
  return "start";
}

void encode(const SessionFields& s, std::string_view event, const SessionEventRecord& r, RecordBuffer& out) {
  JsonWriter w(out);
  begin(w, event, r.time);
  session_members(w, s);
  // One auth_method per record: the session's (how the person logged in)
  // when known, with the wire mechanism beside it. Inside encoded members a
  // quote that ends a key is never escaped, so the search cannot hit a value.
  const bool session_method = s.encoded.empty() ? !s.person.empty() && !s.auth_method.empty()
                                                : s.encoded.find("\"auth_method\":") != std::string_view::npos;
  w.optional(session_method ? "auth_mechanism" : "auth_method", r.auth_method);
  w.optional("sqlstate", r.sqlstate);
  w.optional("message", r.message);
  w.end_object();
}

void encode(const SessionFields& s, const StatementRecord& r, const EncodeOptions& o, RecordBuffer& out) {
  JsonWriter w(out);
  begin(w, event::statement, r.time);
  session_members(w, s);
  w.member("statement_id", r.statement_id);
  w.member("protocol", to_string(r.protocol));
  text_member(w, r.text, o.redact_literals);
  if (r.protocol == Protocol::Extended) {
    w.member("statement_name", r.statement_name);
    w.member("portal_name", r.portal_name);
  }
  parameter_members(w, r.parameters, o.parameters);
  classification_members(w, r);
  w.key("decision");
  w.plain_value(to_string(r.decision));
  w.optional("rule", r.rule);
  w.optional("reason", r.reason);
  w.member("dry_run", r.dry_run);
  w.member("alert", r.alert);
  if (r.outcome) outcome_members(w, *r.outcome);
  else w.member("result_follows", true);
  w.end_object();
}

void encode_members(const SessionFields& s, RecordBuffer& out) {
  out.clear();
  JsonWriter w(out);
  write_session_members(w, s);
}

void encode_classification(const StatementRecord& r, RecordBuffer& out) {
  out.clear();
  JsonWriter w(out);
  write_classification_members(w, r);
}

void encode(const SessionFields& s, const StatementResultRecord& r, RecordBuffer& out) {
  JsonWriter w(out);
  begin(w, event::statement_result, r.time);
  session_members(w, s);
  w.member("statement_id", r.statement_id);
  outcome_members(w, r.outcome);
  w.end_object();
}

void encode(const SessionFields& s, const SessionEndRecord& r, RecordBuffer& out) {
  JsonWriter w(out);
  begin(w, event::session_end, r.time);
  session_members(w, s);
  w.member("duration_us", r.duration_us);
  w.member("bytes_from_client", r.bytes_from_client);
  w.member("bytes_to_client", r.bytes_to_client);
  w.member("statements", r.statements);
  w.member("close_reason", r.close_reason);
  w.end_object();
}

void encode(const SessionFields& target, const CancelRecord& r, RecordBuffer& out) {
  JsonWriter w(out);
  begin(w, event::cancel, r.time);
  session_members(w, target);
  w.member("requester_addr", r.requester_addr);
  if (r.requester_port != 0) w.member("requester_port", std::uint64_t{r.requester_port});
  w.member("matched", r.matched);
  w.end_object();
}

void encode(const ConfigReloadRecord& r, RecordBuffer& out) {
  JsonWriter w(out);
  begin(w, event::config_reload, r.time);
  w.member("config_file", r.config_file);
  w.member("ok", r.ok);
  w.optional("message", r.message);
  w.end_object();
}

void encode(const AlertUndeliveredRecord& r, RecordBuffer& out) {
  JsonWriter w(out);
  begin(w, event::alert_undelivered, r.time);
  w.member("sink", r.sink);
  w.member("error", r.error);
  w.member("alert_kind", r.alert_kind);
  w.key("alert_time");
  w.plain_fill([&r](RecordBuffer& out) { out.commit_to(write_rfc3339(out.prepare(rfc3339_size), or_now(r.alert_time))); });
  w.optional("session_id", r.session_id);
  w.optional("user", r.user);
  w.optional("database", r.database);
  w.optional("application_name", r.application_name);
  w.optional("client_addr", r.client_addr);
  w.optional("text", r.text);
  w.optional("rule", r.rule);
  if (!r.decision.empty()) {
    w.key("decision");
    w.plain_value(r.decision);
    w.member("dry_run", r.dry_run);
  }
  w.member("count", r.count);
  w.optional("alert_record_hash", r.alert_record_hash);
  w.end_object();
}

void encode(const SessionFields& s, const RefusalCountRecord& r, RecordBuffer& out) {
  JsonWriter w(out);
  begin(w, event::statement_refusals, r.time);
  session_members(w, s);
  w.key("decision");
  w.plain_value(to_string(Decision::Deny));
  w.optional("rule", r.rule);
  w.optional("reason", r.reason);
  w.optional("sqlstate", r.sqlstate);
  w.member("count", r.count);
  w.member("first_statement_id", r.first_statement_id);
  w.member("last_statement_id", r.last_statement_id);
  w.key("first_time");
  w.plain_fill([&r](RecordBuffer& out) { out.commit_to(write_rfc3339(out.prepare(rfc3339_size), r.first_time)); });
  w.end_object();
}

void encode(const CheckpointRecord& r, RecordBuffer& out) {
  JsonWriter w(out);
  begin(w, event::checkpoint, r.time);
  w.member("reason", to_string(r.reason));
  w.member("previous_file", r.previous_file);
  w.member("previous_seq", r.previous_seq);
  w.member("previous_hash", r.previous_hash);
  if (r.reason == CheckpointReason::Recover) {
    w.member("error", r.error);
    w.key("failed_since");
    w.plain_fill([&r](RecordBuffer& out) { out.commit_to(write_rfc3339(out.prepare(rfc3339_size), r.failed_since)); });
    w.member("records_lost", r.records_lost);
  }
  w.end_object();
}

}  // namespace pgwarden::audit
