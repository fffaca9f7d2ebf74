// A session's audit records: who connected and how it went (session.start,
// auth.ok/auth.fail, session.end), and one record per statement, refused or
// run, with its outcome.
//
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

#include <spdlog/spdlog.h>

#include "protocol/parser.hpp"
#include "protocol/sqlstate.hpp"
#include "proxy/session/audit_trail.hpp"
#include "proxy/session/session.hpp"

namespace pgwarden::proxy {

namespace pq = protocol;

namespace {

audit::RecordBuffer& record_buffer() {
  thread_local audit::RecordBuffer buffer;
  return buffer;
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

audit::SessionFields Session::audit_fields() const {
  audit::SessionFields f;
  f.session_id = session_id_;
  f.user = facts_.user;
  f.database = facts_.database;
  f.application_name = facts_.application_name;
  f.client_addr = client_addr_;
  f.client_port = peer_.port();
  f.tls = client_.is_tls();
  return f;
}

audit::SessionFields Session::audit_statement_fields() {
  if (audit_session_json_.empty()) audit::encode_members(audit_fields(), audit_session_json_);
  audit::SessionFields f;
  f.encoded = audit_session_json_.view();
  return f;
}

std::string_view Session::auth_method() const {
  if (scram_) return scram_->channel_bound() ? "scram-sha-256-plus" : "scram-sha-256";
  if (!md5_secret_.empty()) return "md5";
  switch (auth_request_) {
    case pq::AuthenticationOk::code: return "trust";
    case pq::AuthenticationMD5Password::code: return "md5";
    case pq::AuthenticationCleartextPassword::code: return "password";
    case pq::AuthenticationSASL::code:
    case pq::AuthenticationSASLContinue::code:
    case pq::AuthenticationSASLFinal::code: return "scram-sha-256";
    case -1: return "trust";  // the server asked for nothing
    default: return "other";
  }
}

void Session::audit_event(std::string_view event, std::string_view method, std::string_view sqlstate,
                          std::string_view message) {
  if (!ctx_.audit) return;
  if (event == audit::event::session_start) audit_started_ = true;
  audit::SessionEventRecord r;
  r.auth_method = method;
  r.sqlstate = sqlstate;
  r.message = message;
  audit::encode(audit_fields(), event, r, record_buffer());
  audit_submit(audit::Purpose::Fact);
}

void Session::audit_cancel(const CancelTarget* target) {
  if (!ctx_.audit) return;
  audit::SessionFields f;
  if (target) {
    f.session_id = target->session_id;
    f.user = target->user;
    f.database = target->database;
    f.application_name = target->application_name;
    f.client_addr = target->client_addr;
    f.client_port = target->client_port;
    f.tls = target->tls;
  }
  audit::CancelRecord r;
  r.requester_addr = client_addr_;
  r.requester_port = peer_.port();
  r.matched = target != nullptr;
  audit::encode(f, r, record_buffer());
  audit_submit(audit::Purpose::Fact);
}

void Session::audit_auth_failure(const pq::Frame& f) {
  if (!ctx_.audit) return;
  pq::ErrorResponse e;
  if (pq::parse(f.bytes, e)) return;
  audit_event(audit::event::auth_fail, auth_method(), e.field('C'), e.field('M'));
}

void Session::audit_submit(audit::Purpose purpose, audit::Ticket* ticket) {
  const audit::RecordBuffer& body = record_buffer();
  if (!audit_backlog_.empty()) {  // keep the order: nothing overtakes what waits
    audit_backlog_.emplace_back(body.view());
    return;
  }
  if (ctx_.audit->log().submit(body.view(), ticket, purpose) == audit::Admission::Full) {
    audit_backlog_.emplace_back(body.view());
  }
}

awaitable<CloseReason> Session::audit_settle() {
  // A full queue slows this session down; it never loses a record, and the
  // statements of this batch wait for room for theirs.
  while (!audit_backlog_.empty() || ungated_ > 0) {
    co_await ctx_.audit->space();
    std::size_t taken = 0;
    while (taken < audit_backlog_.size() &&
           ctx_.audit->log().submit(audit_backlog_[taken]) != audit::Admission::Full) {
      ++taken;
    }
    audit_backlog_.erase(audit_backlog_.begin(), audit_backlog_.begin() + static_cast<std::ptrdiff_t>(taken));
    if (audit_backlog_.empty() && ungated_ > 0 && !audit_submit_gates(pending_.size() - ungated_)) {
      gate_ticket_ = 0;
      co_return audit_not_forwarded(std::exchange(gated_, 0));
    }
  }
  const std::size_t gated = std::exchange(gated_, 0);
  if (gate_ticket_ != 0) {
    const audit::Ticket ticket = std::exchange(gate_ticket_, 0);
    const auto waited_from = std::chrono::steady_clock::now();
    // on_failure: continue lets the statements run without their records
    // (dropped, counted, declared in the file once it recovers).
    const bool durable = co_await ctx_.audit->durable(ticket);
    // duration_us runs from forwarding, not from before the wait for the disk.
    const auto now = std::chrono::steady_clock::now();
    ctx_.metrics->audit_durable_wait.observe(std::chrono::duration<double>(now - waited_from).count());
    if (!durable && ctx_.audit->blocks()) co_return audit_not_forwarded(gated);
    for (std::size_t i = pending_.size() - std::min(gated, pending_.size()); i < pending_.size(); ++i) {
      pending_[i]->started = now;
    }
  }
  co_return CloseReason::None;
}

CloseReason Session::audit_not_forwarded(std::size_t gated) {
  // The records of statements about to be forwarded did not reach the disk:
  // they must not run, and their results say so. Closing the connection
  // rolls back whatever the client had open, as a crash of the server would.
  audit_drop_unsent(pending_.size() - std::min(gated, pending_.size()), true);
  return fail(pq::sqlstate::io_error, "pgwarden could not write the audit records of these statements, so they were not run",
              CloseReason::AuditUnavailable);
}

void Session::audit_refused(const policy::ClassifiedText& text, std::string_view sql, audit::Protocol protocol,
                            const policy::Decision& d, std::string_view statement_name,
                            std::string_view portal_name, const Portal* portal) {
  if (!ctx_.audit) return;
  std::array<std::string_view, policy::statement_class_count> classes;
  std::vector<audit::ObjectName> objects;
  std::vector<audit::Parameter> params;
  if (portal) parameters_of(portal->params, portal->param_flags, params);
  audit::Outcome outcome;
  outcome.sqlstate = d.sqlstate.empty() ? pq::sqlstate::insufficient_privilege : d.sqlstate;
  outcome.message = d.message;
  const std::size_t n = std::max<std::size_t>(1, text.statements.size());
  statements_seen_ += n;
  for (std::size_t i = 0; i < n; ++i) {
    const policy::StatementFacts* s = i < text.statements.size() ? &text.statements[i] : nullptr;
    audit::StatementRecord r;
    r.statement_id = ++statement_ids_;
    r.protocol = protocol;
    r.text = s && n > 1 ? statement_text(sql, *s) : sql;
    r.statement_name = statement_name;
    r.portal_name = portal_name;
    r.parameters = params;
    std::size_t nclasses = 0;
    if (s) {
      for (std::size_t c = 0; c < policy::statement_class_count; ++c) {
        if (s->classes.contains(static_cast<policy::StatementClass>(c))) {
          classes[nclasses++] = policy::to_string(static_cast<policy::StatementClass>(c));
        }
      }
      objects.clear();
      for (const auto& o : s->objects) objects.push_back({o.schema, o.name, policy::to_string(o.access)});
      r.command_tags = s->effective_tags;
      r.objects = objects;
      r.unparseable = s->unparseable;
    }
    r.classes = std::span(classes.data(), nclasses);
    r.decision = audit::Decision::Deny;
    r.rule = d.rule_name();
    r.reason = d.sqlstate == pq::sqlstate::io_error ? std::string_view("audit_unavailable") : policy::to_string(d.reason);
    r.alert = d.alert;
    r.outcome = &outcome;
    audit::encode(audit_fields(), r, ctx_.audit->encode_options(), record_buffer());
    audit_submit(audit::Purpose::Fact);
  }
}

namespace {

/// The record of a forwarded statement, from its slot; the views point into
/// the slot and the thread-local scratch below.
struct RecordScratch {
  std::array<std::string_view, policy::statement_class_count> classes;
  std::vector<audit::ObjectName> objects;
  std::vector<audit::Parameter> params;
};

RecordScratch& record_scratch() {
  thread_local RecordScratch scratch;
  return scratch;
}

audit::StatementRecord record_of(const Session::PendingStatement& p, RecordScratch& scratch,
                                 Session::EncodedClassification& encoded) {
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
  if (encoded.classified != p.classified || encoded.index != p.index || encoded.json.empty()) {
    const policy::StatementFacts& s = p.classified->statements[p.index];
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
    audit::encode_classification(r, encoded.json);
    encoded.classified = p.classified;
    encoded.index = p.index;
  }
  r.encoded_classification = encoded.json.view();
  return r;
}

}  // namespace

bool Session::audit_forward(const policy::ClassifiedText& text, const policy::ClassifiedTextPtr& keep,
                            std::string_view sql, audit::Protocol protocol, const AuditedDecision& d,
                            std::string_view statement_name, std::string_view portal_name,
                            const Portal* portal) {
  AuditTrail& trail = *ctx_.audit;
  // Buffered and block: a statement runs only while its record can be written.
  if (!trail.synced() && trail.blocks() && !trail.log().writable()) return false;
  const std::size_t n = std::max<std::size_t>(1, text.statements.size());
  const std::size_t first = pending_.size();
  for (std::size_t i = 0; i < n; ++i) {
    std::unique_ptr<PendingStatement> p;
    if (spare_.empty()) {
      p = std::make_unique<PendingStatement>();
    } else {
      p = std::move(spare_.back());
      spare_.pop_back();
    }
    p->sync_point = sync_points_sent_;
    p->id = ++statement_ids_;
    p->protocol = protocol;
    p->classified = keep;
    p->index = static_cast<std::uint32_t>(i);
    const policy::StatementFacts* s = i < text.statements.size() ? &text.statements[i] : nullptr;
    p->text.assign(s && n > 1 ? statement_text(sql, *s) : sql);
    p->statement_name.assign(statement_name);
    p->portal_name.assign(portal_name);
    p->rule.assign(d.rule);
    p->dry_run = d.dry_run;
    p->alert = d.alert;
    p->params.clear();
    p->param_flags.clear();
    if (portal && ctx_.audit->encode_options().parameters != audit::ParameterMode::None) {
      p->params = portal->params;
      p->param_flags = portal->param_flags;
    }
    p->logged = p->done = false;
    p->rows = -1;
    p->sqlstate.clear();
    p->message.clear();
    p->started = batch_time_;
    pending_.push_back(std::move(p));
  }
  // Synced: each record must be on disk before the batch is forwarded.
  if (trail.synced() && !audit_gate(first)) return false;
  statements_seen_ += n;
  if (trail.synced()) gated_ += n;
  return true;
}

bool Session::audit_gate(std::size_t first) {
  // Nothing overtakes what waits for room in the queue: records of this
  // session, or the statements before these in the same batch.
  if (ungated_ > 0 || !audit_backlog_.empty()) {
    ungated_ += pending_.size() - first;
    return true;
  }
  if (audit_submit_gates(first)) return true;
  // Refused (the file fails, block mode): none of these statements will
  // run, and the refusal records them. Those logged already get a result
  // that says so; when none was, the refusal records take over their ids.
  if (!pending_[first]->logged) statement_ids_ = pending_[first]->id - 1;
  if (gated_ == 0) gate_ticket_ = 0;
  audit_drop_unsent(first, false);
  return false;
}

bool Session::audit_submit_gates(std::size_t first) {
  AuditTrail& trail = *ctx_.audit;
  ungated_ = 0;
  for (std::size_t i = first; i < pending_.size(); ++i) {
    PendingStatement& p = *pending_[i];
    audit::StatementRecord r = record_of(p, record_scratch(), audit_classification_);
    audit::encode(audit_statement_fields(), r, trail.encode_options(), record_buffer());
    audit::Ticket ticket = 0;
    switch (trail.log().submit(record_buffer().view(), &ticket, audit::Purpose::Gate)) {
      case audit::Admission::Accepted:
        p.logged = true;
        gate_ticket_ = ticket;
        break;
      case audit::Admission::Full:  // audit_settle() waits for room, then submits the rest
        ungated_ = pending_.size() - i;
        return true;
      case audit::Admission::Refused:
        return false;
    }
  }
  return true;
}

void Session::audit_drop_unsent(std::size_t from, bool all) {
  for (std::size_t i = from; i < pending_.size(); ++i) {
    PendingStatement& p = *pending_[i];
    if (!all && !p.logged) continue;
    p.rows = -1;
    p.sqlstate.assign(pq::sqlstate::io_error);
    p.message.assign(not_run);
    audit_write(p);
  }
  while (pending_.size() > from) {
    spare_.push_back(std::move(pending_.back()));
    pending_.pop_back();
  }
}

void Session::audit_write(PendingStatement& p) {
  audit::Outcome outcome;
  outcome.rows = p.rows;
  outcome.sqlstate = p.sqlstate;
  outcome.message = p.message;
  const auto elapsed = std::chrono::steady_clock::now() - p.started;
  outcome.duration_us =
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
  if (p.logged) {
    audit::StatementResultRecord r;
    r.statement_id = p.id;
    r.outcome = outcome;
    audit::encode(audit_statement_fields(), r, record_buffer());
  } else {
    audit::StatementRecord r = record_of(p, record_scratch(), audit_classification_);
    r.outcome = &outcome;
    audit::encode(audit_statement_fields(), r, ctx_.audit->encode_options(), record_buffer());
  }
  audit_submit(audit::Purpose::Fact);
  p.classified.reset();
}

void Session::audit_server_frame(const pq::Frame& f) {
  // Only the statements of the request the server is answering now.
  if (pending_.empty() || pending_.front()->sync_point != ready_seen_) return;
  PendingStatement& p = *pending_.front();
  switch (f.type) {
    case 'C': {  // CommandComplete: String tag
      const std::string_view body = f.body();
      p.rows = rows_of(body.substr(0, body.find('\0')));
      break;
    }
    case 'I':  // EmptyQueryResponse
    case 's':  // PortalSuspended: Execute's row limit reached, the portal stays open
      break;
    case 'E': {  // ErrorResponse: this statement failed; the rest of the request is skipped
      pq::ErrorResponse e;
      if (!pq::parse(f.bytes, e)) {
        p.sqlstate.assign(e.field('C'));
        p.message.assign(e.field('M'));
      }
      break;
    }
    default:
      return;
  }
  audit_write(p);
  spare_.push_back(std::move(pending_.front()));
  pending_.pop_front();
}

void Session::audit_ready() {
  // ReadyForQuery ended the request: what it did not run was skipped,
  // except a FunctionCall, whose result has no CommandComplete.
  while (!pending_.empty() && pending_.front()->sync_point < ready_seen_) {
    PendingStatement& p = *pending_.front();
    if (p.protocol != audit::Protocol::Function) {
      p.sqlstate.clear();
      p.message.assign(not_executed);
    }
    audit_write(p);
    spare_.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  if (spare_.size() > 16) spare_.resize(16);
}

void Session::audit_session_end(CloseReason reason) {
  if (!ctx_.audit || !audit_started_) return;
  for (auto& p : pending_) {
    p->message.assign("the connection closed before the statement completed");
    audit_write(*p);
  }
  pending_.clear();
  gated_ = ungated_ = 0;
  gate_ticket_ = 0;
  audit::SessionEndRecord r;
  const auto elapsed = std::chrono::steady_clock::now() - started_;
  r.duration_us = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(elapsed).count());
  r.bytes_from_client = bytes_from_client_;
  r.bytes_to_client = bytes_to_client_;
  r.statements = statements_seen_;
  r.close_reason = to_string(reason);
  audit::encode(audit_fields(), r, record_buffer());
  audit_submit(audit::Purpose::Fact);  // run() then settles what the queue could not take
}

}  // namespace pgwarden::proxy
