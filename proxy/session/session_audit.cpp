// Outcomes are matched to statements the way the server produces them: in
// order, one CommandComplete (or EmptyQueryResponse, PortalSuspended) per
// statement run, an ErrorResponse for the statement that failed, and the
// rest of that Query or extended batch skipped up to its ReadyForQuery.
//
// Cost on the data path: the text is copied into a reused slot when the
// statement is forwarded; the record is encoded into a thread-local buffer
// and appended to the log's batch when the outcome arrives. Nothing is
// written or synced on the session's thread.

#include <charconv>

#include "protocol/parser.hpp"
#include "protocol/sqlstate.hpp"
#include "proxy/session/session_audit.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

namespace {

/// Where records are encoded before they are submitted: one per thread, reused.
audit::RecordBuffer& record_buffer() {
  thread_local audit::RecordBuffer buffer;
  return buffer;
}

/// The views a statement record needs besides its slot, reused.
struct RecordScratch {
  std::array<std::string_view, policy::statement_class_count> classes;
  std::vector<audit::ObjectName> objects;
  std::vector<audit::Parameter> params;
};

RecordScratch& record_scratch() {
  thread_local RecordScratch scratch;
  return scratch;
}

/// The classes and objects of `s` into `r`, through `scratch`.
void classify_record(const policy::StatementFacts& s, RecordScratch& scratch, audit::StatementRecord& r) {
  std::size_t nclasses = 0;
  for (std::size_t c = 0; c < policy::statement_class_count; ++c) {
    if (s.classes.contains(static_cast<policy::StatementClass>(c))) {
      scratch.classes[nclasses++] = policy::to_string(static_cast<policy::StatementClass>(c));
    }
  }
  scratch.objects.clear();
  for (const auto& o : s.objects) scratch.objects.push_back({o.schema, o.name, policy::to_string(o.access)});
  r.command_tags = s.effective_tags;
  r.unparseable = s.unparseable;
  r.classes = std::span(scratch.classes.data(), nclasses);
  r.objects = scratch.objects;
}

/// Rows from a CommandComplete tag: its last word when that is a number
/// ("SELECT 3", "INSERT 0 5", "COPY 10"); -1 for tags without one.
std::int64_t rows_of(std::string_view tag) {
  const auto space = tag.rfind(' ');
  if (space == std::string_view::npos) return -1;
  std::int64_t rows = -1;
  const auto digits = tag.substr(space + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), rows);
  return ec == std::errc() && end == digits.data() + digits.size() ? rows : -1;
}

/// The part of `sql` that is statement `s` (libpg_query's location/length;
/// a length of 0 runs to the end), without the white space around it: a
/// statement's location starts right after the previous semicolon.
std::string_view statement_text(std::string_view sql, const policy::StatementFacts& s) {
  if (s.location >= sql.size()) return sql;
  std::string_view text = s.length == 0 ? sql.substr(s.location) : sql.substr(s.location, s.length);
  constexpr std::string_view space = " \t\n\r\f\v";
  const std::size_t begin = text.find_first_not_of(space);
  if (begin == std::string_view::npos) return text;
  return text.substr(begin, text.find_last_not_of(space) - begin + 1);
}

/// `values` and `flags` (bit 0 NULL, bit 1 binary) as the encoder takes them.
void parameters_of(const std::vector<std::string>& values, const std::vector<std::uint8_t>& flags,
                   std::vector<audit::Parameter>& out) {
  out.clear();
  for (std::size_t i = 0; i < values.size(); ++i) out.push_back({values[i], (flags[i] & 1) != 0, (flags[i] & 2) != 0});
}

constexpr std::string_view not_executed = "not executed: an earlier statement of the same request failed";
constexpr std::string_view not_run =
    "not run: its audit record could not be written (audit.on_failure: block), so pgwarden did not forward it";

}  // namespace

SessionAudit::SessionAudit(AuditTrail* trail, ProxyMetrics& metrics, const policy::SessionFacts& facts, Peer peer)
    : trail_(trail), metrics_(metrics), facts_(facts), peer_(std::move(peer)) {}

audit::SessionFields SessionAudit::fields() const {
  audit::SessionFields f;
  f.session_id = peer_.session_id;
  f.user = facts_.user;
  f.database = facts_.database;
  f.application_name = facts_.application_name;
  f.client_addr = peer_.client_addr;
  f.client_port = peer_.client_port;
  f.tls = tls_;
  if (!facts_.person.empty()) {
    f.person = facts_.person;
    f.person_groups = facts_.person_groups;
    f.auth_method = policy::to_string(facts_.auth_method);
  }
  return f;
}

SessionIdentity SessionAudit::identity() const {
  SessionIdentity id;
  id.session_id = peer_.session_id;
  id.user = facts_.user;
  id.database = facts_.database;
  id.application_name = facts_.application_name;
  id.client_addr = peer_.client_addr;
  id.client_port = peer_.client_port;
  id.tls = tls_;
  return id;
}

GateOptions SessionAudit::gate_options() const {
  GateOptions o;
  o.keep_texts = trail_ != nullptr;
  o.keep_parameters = trail_ && trail_->encode_options().parameters != audit::ParameterMode::None;
  return o;
}

audit::SessionFields SessionAudit::statement_fields() {
  if (fields_json_.empty()) audit::encode_members(fields(), fields_json_);
  audit::SessionFields f;
  f.encoded = fields_json_.view();
  return f;
}

void SessionAudit::event(std::string_view event, std::string_view method, std::string_view sqlstate,
                         std::string_view message) {
  if (!trail_) return;
  if (event == audit::event::session_start) started_ = true;
  audit::SessionEventRecord r;
  r.auth_method = method;
  r.sqlstate = sqlstate;
  r.message = message;
  audit::RecordBuffer& body = record_buffer();
  audit::encode(fields(), event, r, body);
  submit(body, audit::Purpose::Fact);
}

void SessionAudit::cancel(const SessionIdentity* target) {
  if (!trail_) return;
  audit::CancelRecord r;
  r.requester_addr = peer_.client_addr;
  r.requester_port = peer_.client_port;
  r.matched = target != nullptr;
  audit::RecordBuffer& body = record_buffer();
  audit::encode(target ? target->fields() : audit::SessionFields{}, r, body);
  submit(body, audit::Purpose::Fact);
}

void SessionAudit::submit(const audit::RecordBuffer& body, audit::Purpose purpose, audit::Ticket* ticket) {
  if (!backlog_.empty()) {  // keep the order: nothing overtakes what waits
    backlog_.emplace_back(body.view());
    return;
  }
  if (trail_->log().submit(body.view(), ticket, purpose) == audit::Admission::Full) {
    backlog_.emplace_back(body.view());
  }
}

awaitable<bool> SessionAudit::settle() {
  // A full queue slows this session down; it never loses a record, and the
  // statements of this batch wait for room for theirs.
  while (!backlog_.empty() || ungated_ > 0) {
    co_await trail_->space();
    std::size_t taken = 0;
    while (taken < backlog_.size() && trail_->log().submit(backlog_[taken]) != audit::Admission::Full) ++taken;
    backlog_.erase(backlog_.begin(), backlog_.begin() + static_cast<std::ptrdiff_t>(taken));
    if (backlog_.empty() && ungated_ > 0 && !submit_gates(pending_.size() - ungated_)) {
      gate_ticket_ = 0;
      drop_unsent(pending_.size() - std::min(std::exchange(gated_, 0), pending_.size()), true);
      co_return false;
    }
  }
  const std::size_t gated = std::exchange(gated_, 0);
  if (gate_ticket_ != 0) {
    const audit::Ticket ticket = std::exchange(gate_ticket_, 0);
    const auto waited_from = std::chrono::steady_clock::now();
    // on_failure: continue lets the statements run without their records
    // (dropped, counted, declared in the file once it recovers).
    const bool durable = co_await trail_->durable(ticket);
    // duration_us runs from forwarding, not from before the wait for the disk.
    const auto now = std::chrono::steady_clock::now();
    metrics_.audit_durable_wait.observe(std::chrono::duration<double>(now - waited_from).count());
    if (!durable && trail_->blocks()) {
      // The records of statements about to be forwarded did not reach the
      // disk: they must not run, and their results say so.
      drop_unsent(pending_.size() - std::min(gated, pending_.size()), true);
      co_return false;
    }
    for (std::size_t i = pending_.size() - std::min(gated, pending_.size()); i < pending_.size(); ++i) {
      pending_[i]->started = now;
    }
  }
  co_return true;
}

void SessionAudit::refused(const GatedStatement& s, const policy::Decision& d) {
  if (!trail_) return;
  RecordScratch& scratch = record_scratch();
  std::vector<audit::Parameter> params;
  if (s.portal) parameters_of(s.portal->params, s.portal->param_flags, params);
  audit::Outcome outcome;
  outcome.sqlstate = d.sqlstate.empty() ? pq::sqlstate::insufficient_privilege : d.sqlstate;
  outcome.message = d.message;
  const policy::ClassifiedText& text = s.text;
  const std::size_t n = std::max<std::size_t>(1, text.statements.size());
  statements_seen_ += n;
  for (std::size_t i = 0; i < n; ++i) {
    const policy::StatementFacts* f = i < text.statements.size() ? &text.statements[i] : nullptr;
    audit::StatementRecord r;
    r.statement_id = ++statement_ids_;
    r.protocol = s.protocol;
    r.text = f && n > 1 ? statement_text(s.sql, *f) : s.sql;
    r.statement_name = s.statement_name;
    r.portal_name = s.portal_name;
    r.parameters = params;
    if (f) classify_record(*f, scratch, r);
    r.decision = audit::Decision::Deny;
    r.rule = d.rule_name();
    r.reason = policy::to_string(d.reason);
    r.alert = d.alert;
    r.outcome = &outcome;
    audit::RecordBuffer& body = record_buffer();
    audit::encode(fields(), r, trail_->encode_options(), body);
    submit(body, audit::Purpose::Fact);
  }
}

audit::StatementRecord SessionAudit::record_of(const PendingStatement& p) {
  RecordScratch& scratch = record_scratch();
  audit::StatementRecord r;
  r.statement_id = p.id;
  r.protocol = p.protocol;
  r.text = p.text;
  r.statement_name = p.statement_name;
  r.portal_name = p.portal_name;
  r.rule = p.rule;
  r.dry_run = p.dry_run;
  r.alert = p.alert;
  r.decision = audit::Decision::Allow;
  parameters_of(p.params, p.param_flags, scratch.params);
  r.parameters = scratch.params;
  if (!p.classified || p.index >= p.classified->statements.size()) return r;
  EncodedClassification& encoded = classification_;
  if (encoded.classified != p.classified || encoded.index != p.index || encoded.json.empty()) {
    classify_record(p.classified->statements[p.index], scratch, r);
    audit::encode_classification(r, encoded.json);
    encoded.classified = p.classified;
    encoded.index = p.index;
  }
  r.encoded_classification = encoded.json.view();
  return r;
}

bool SessionAudit::forwarding(const GatedStatement& s, const AuditedDecision& d) {
  if (!trail_) return true;
  AuditTrail& trail = *trail_;
  // Buffered and block: a statement runs only while its record can be written.
  if (!trail.synced() && trail.blocks() && !trail.log().writable()) return false;
  const policy::ClassifiedText& text = s.text;
  const std::size_t n = std::max<std::size_t>(1, text.statements.size());
  const std::size_t first = pending_.size();
  const bool keep_parameters = s.portal && trail.encode_options().parameters != audit::ParameterMode::None;
  for (std::size_t i = 0; i < n; ++i) {
    std::unique_ptr<PendingStatement> p;
    if (spare_.empty()) {
      p = std::make_unique<PendingStatement>();
    } else {
      p = std::move(spare_.back());
      spare_.pop_back();
    }
    p->sync_point = s.sync_point;
    p->id = ++statement_ids_;
    p->protocol = s.protocol;
    p->classified = s.keep;
    p->index = static_cast<std::uint32_t>(i);
    const policy::StatementFacts* f = i < text.statements.size() ? &text.statements[i] : nullptr;
    p->text.assign(f && n > 1 ? statement_text(s.sql, *f) : s.sql);
    p->statement_name.assign(s.statement_name);
    p->portal_name.assign(s.portal_name);
    p->rule.assign(d.rule);
    p->dry_run = d.dry_run;
    p->alert = d.alert;
    p->params.clear();
    p->param_flags.clear();
    if (keep_parameters) {
      p->params = s.portal->params;
      p->param_flags = s.portal->param_flags;
    }
    p->logged = false;
    p->rows = -1;
    p->sqlstate.clear();
    p->message.clear();
    p->started = batch_time_;
    pending_.push_back(std::move(p));
  }
  // Synced: each record must be on disk before the batch is forwarded.
  if (trail.synced() && !gate(first)) return false;
  statements_seen_ += n;
  if (trail.synced()) gated_ += n;
  return true;
}

bool SessionAudit::gate(std::size_t first) {
  // Nothing overtakes what waits for room in the queue: records of this
  // session, or the statements before these in the same batch.
  if (ungated_ > 0 || !backlog_.empty()) {
    ungated_ += pending_.size() - first;
    return true;
  }
  if (submit_gates(first)) return true;
  // Refused (the file fails, block mode): none of these statements will
  // run, and the refusal records them. Those logged already get a result
  // that says so; when none was, the refusal records take over their ids.
  if (!pending_[first]->logged) statement_ids_ = pending_[first]->id - 1;
  if (gated_ == 0) gate_ticket_ = 0;
  drop_unsent(first, false);
  return false;
}

bool SessionAudit::submit_gates(std::size_t first) {
  ungated_ = 0;
  for (std::size_t i = first; i < pending_.size(); ++i) {
    PendingStatement& p = *pending_[i];
    audit::StatementRecord r = record_of(p);
    audit::RecordBuffer& body = record_buffer();
    audit::encode(statement_fields(), r, trail_->encode_options(), body);
    audit::Ticket ticket = 0;
    switch (trail_->log().submit(body.view(), &ticket, audit::Purpose::Gate)) {
      case audit::Admission::Accepted:
        p.logged = true;
        gate_ticket_ = ticket;
        break;
      case audit::Admission::Full:  // settle() waits for room, then submits the rest
        ungated_ = pending_.size() - i;
        return true;
      case audit::Admission::Refused:
        return false;
    }
  }
  return true;
}

void SessionAudit::drop_unsent(std::size_t from, bool all) {
  for (std::size_t i = from; i < pending_.size(); ++i) {
    PendingStatement& p = *pending_[i];
    if (!all && !p.logged) continue;
    p.rows = -1;
    p.sqlstate.assign(pq::sqlstate::io_error);
    p.message.assign(not_run);
    write(p);
  }
  while (pending_.size() > from) {
    spare_.push_back(std::move(pending_.back()));
    pending_.pop_back();
  }
}

void SessionAudit::write(PendingStatement& p) {
  audit::Outcome outcome;
  outcome.rows = p.rows;
  outcome.sqlstate = p.sqlstate;
  outcome.message = p.message;
  const auto elapsed = std::chrono::steady_clock::now() - p.started;
  outcome.duration_us =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
  audit::RecordBuffer& body = record_buffer();
  if (p.logged) {
    audit::StatementResultRecord r;
    r.statement_id = p.id;
    r.outcome = outcome;
    audit::encode(statement_fields(), r, body);
  } else {
    audit::StatementRecord r = record_of(p);
    r.outcome = &outcome;
    audit::encode(statement_fields(), r, trail_->encode_options(), body);
  }
  submit(body, audit::Purpose::Fact);
  p.classified.reset();
}

void SessionAudit::finish_front() {
  write(*pending_.front());
  spare_.push_back(std::move(pending_.front()));
  pending_.pop_front();
}

void SessionAudit::server_message(const pq::Frame& f, std::uint64_t ready_seen) {
  // Only the statements of the request the server is answering now.
  if (pending_.empty() || pending_.front()->sync_point != ready_seen) return;
  PendingStatement& p = *pending_.front();
  namespace backend = pq::backend_type;
  switch (f.type) {
    case backend::CommandComplete: {  // String tag
      const std::string_view body = f.body();
      p.rows = rows_of(body.substr(0, body.find('\0')));
      break;
    }
    case backend::EmptyQueryResponse:
    case backend::PortalSuspended:  // Execute's row limit reached, the portal stays open
      break;
    case backend::ErrorResponse: {  // this statement failed; the rest of the request is skipped
      pq::ErrorResponse e;
      if (!pq::parse(f.bytes, e)) {
        p.sqlstate.assign(e.field(pq::pg_diag_sqlstate));
        p.message.assign(e.field(pq::pg_diag_message_primary));
      }
      break;
    }
    default:
      return;
  }
  finish_front();
}

void SessionAudit::ready(std::uint64_t ready_seen) {
  // ReadyForQuery ended the request: what it did not run was skipped,
  // except a FunctionCall, whose result has no CommandComplete.
  while (!pending_.empty() && pending_.front()->sync_point < ready_seen) {
    PendingStatement& p = *pending_.front();
    if (p.protocol != audit::Protocol::Function) {
      p.sqlstate.clear();
      p.message.assign(not_executed);
    }
    finish_front();
  }
  if (spare_.size() > 16) spare_.resize(16);
}

void SessionAudit::session_end(std::string_view close_reason, const Totals& totals) {
  if (!trail_ || !started_) return;
  for (auto& p : pending_) {
    p->message.assign("the connection closed before the statement completed");
    write(*p);
  }
  pending_.clear();
  gated_ = ungated_ = 0;
  gate_ticket_ = 0;
  audit::SessionEndRecord r;
  r.duration_us =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(totals.duration).count());
  r.bytes_from_client = totals.bytes_from_client;
  r.bytes_to_client = totals.bytes_to_client;
  r.statements = statements_seen_;
  r.close_reason = close_reason;
  audit::RecordBuffer& body = record_buffer();
  audit::encode(fields(), r, body);
  submit(body, audit::Purpose::Fact);  // the session then settles what the queue could not take
}

}  // namespace pgwarden::proxy
